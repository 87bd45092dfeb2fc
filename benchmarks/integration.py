"""Batch integration on semi-synthetic atlases (issue 24): DiffAug with `batch` against the methods single-cell users run.

Data with known truth (`diffaug.datasets.simulate_batches`): the 700 real cells of pbmc68k_reduced (their counts,
`pbmc68k_counts`) split into batches of unequal cell-type make-up (Dirichlet 2), each measured with its own gene-wise
gain and offset, depth and noise at a given strength. Every seed draws new batches and new effects. The same cells
at strength 0 (same batches, no batch effect) give the reference for bio conservation. All methods see the
log-normalised, scaled counts (normalize_total 1e4, log1p, scale clipped at 10) except scVI, which models the counts.

Rows (labels are never used by any method):
  pca_nobatch     PCA-50 of the same cells simulated without batch effects (the reference, not a competitor)
  pca             PCA-50, uncorrected
  harmony         harmonypy on PCA-50 (key = batch)
  scanorama       Scanorama's integrated 50-d space (per-batch log-normalised data)
  scvi            scVI with batch_key, its default model (10-d latent) and its own epoch rule
  knnmix          DiffAug(augment='knnmix'): kNN-mix views, no batch
  knnmix_mnn      DiffAug(augment='knnmix').fit(x, batch=b): views mixing mutual nearest neighbours across batches
  diffaug         DiffAug(): no batch
  diffaug_batch   DiffAug().fit(x, batch=b): cross-batch neighbours and generated cross-batch positives
  diffaug_refmap  DiffAug().fit on the reference batches only, the held-out batch embedded by `transform` (reference
                  mapping without retraining; scored for label transfer only)

Scores: scib-metrics' Benchmarker (bio conservation, batch correction, total = 0.6 bio + 0.4 batch; unscaled values,
so numbers compare across seeds), and label transfer: a 15-NN classifier trained on the reference batches' cells
predicts the cell types of the held-out batch (the last one), accuracy and macro F1. Paired over seeds.

    python benchmarks/integration.py run --n-batches 3 --strength 1.0 --seeds 0 1 2 3 4     # results/integration-b3-s1.0.csv
    python benchmarks/integration.py run --data atlas --cells 10000 --scvi-epochs 100         # results/integration-atlas10000-b3-s1.0.csv
    python benchmarks/integration.py run --data atlas --cells 100000 --scvi-epochs 20 --eval-cells 20000 --seeds K --suffix=-seedK \
        --only pca_nobatch harmony scanorama scvi knnmix_mnn diffaug diffaug_batch                 # 100k cells, one process per seed
    python benchmarks/integration.py report                                                   # results/integration.md, figures

`--data atlas --cells N`: the synthetic atlas of `scale.py` (N cells x 2,000 genes, 10 cell types, negative-binomial
counts, seed 0) in place of the pbmc cells, with the same simulated batches on top.

Design choices of the method (MNN views, generated views in a uniformly drawn other batch, lam and rounds at their
defaults) were made on one configuration, 3 batches at strength 1.0, seed 0, before this script ran; every other
configuration and seed is held out.
"""
from __future__ import annotations
import argparse, sys, time, logging, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_text_atomic, machine_line, positive_int, paired_test
from diffaug.report import md_table, savefig
from diffaug.datasets import pbmc68k_counts, simulate_batches
from diffaug.contrastive import DiffAug

OUT = Path(__file__).resolve().parent / 'results'
LABEL, BATCH = 'bulk_labels', 'batch'
SMOKE = False
METHODS = ['pca_nobatch', 'pca', 'harmony', 'scanorama', 'scvi', 'knnmix', 'knnmix_mnn', 'diffaug', 'diffaug_batch', 'diffaug_offset', 'diffaug_refmap']
OFFSET = dict(gen=dict(cross='offset'), views=dict(lam=0.5))  # diffaug_offset: offset views at lam 0.5, chosen on 3 batches, strength 1.0, seeds 0-2

def prep(a):
    "Log-normalised, scaled dense matrix of a counts AnnData (and the unscaled log-normalised copy, for Scanorama)."
    import scanpy as sc
    a = a.copy(); sc.pp.normalize_total(a, target_sum=1e4); sc.pp.log1p(a)
    lognorm = a.copy()
    sc.pp.scale(a, max_value=10)
    return np.asarray(a.X, dtype=np.float32), lognorm

def pca50(x, seed):
    from sklearn.decomposition import PCA
    return PCA(50, random_state=seed).fit_transform(x).astype(np.float32)

def run_harmony(zpca, obs, seed):
    import harmonypy
    ho = harmonypy.run_harmony(zpca, obs, [BATCH], random_state=seed, verbose=False)
    z = np.asarray(ho.Z_corr)
    return (z.T if z.shape[0] != len(obs) else z).astype(np.float32)

def run_scanorama(lognorm, seed):
    import scanorama
    np.random.seed(seed)
    cats = list(lognorm.obs[BATCH].cat.categories)
    parts = [lognorm[lognorm.obs[BATCH] == c].copy() for c in cats]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        scanorama.integrate_scanpy(parts, dimred=50, verbose=0, seed=seed)
    z = np.zeros((lognorm.n_obs, 50), np.float32)
    for c, p in zip(cats, parts): z[(lognorm.obs[BATCH] == c).to_numpy()] = p.obsm['X_scanorama']
    return z

def run_scvi(counts, seed, max_epochs=None):
    import anndata, scvi
    scvi.settings.seed = seed; scvi.settings.verbosity = logging.ERROR
    a = anndata.AnnData(counts.X.copy(), obs=counts.obs[[BATCH]].copy())
    scvi.model.SCVI.setup_anndata(a, batch_key=BATCH)
    m = scvi.model.SCVI(a)
    m.train(max_epochs=1 if SMOKE else max_epochs, accelerator='cpu', enable_progress_bar=False)
    return m.get_latent_representation().astype(np.float32), m.history['elbo_train'].shape[0]

def run_diffaug(x, seed, batch=None, **kw):
    if SMOKE: kw['epochs'] = 1 if kw.get('augment') == 'knnmix' else (1, 1, 1)
    m = DiffAug(random_state=seed, progress=False, device='cpu', **kw).fit(x, batch=batch)
    return m.transform(x), m

def label_transfer(z, y, query):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.metrics import accuracy_score, f1_score
    clf = KNeighborsClassifier(15).fit(z[~query], y[~query])
    p = clf.predict(z[query])
    return accuracy_score(y[query], p), f1_score(y[query], p, average='macro')

def scib_scores(embs:dict, obs:pd.DataFrame, pre:str):
    "scib-metrics' Benchmarker on the embeddings `embs` (unscaled results, one row per embedding)."
    import anndata
    from scib_metrics.benchmark import Benchmarker
    a = anndata.AnnData(np.zeros((len(obs), 1), np.float32), obs=obs[[LABEL, BATCH]].copy())
    for k, z in embs.items(): a.obsm[k] = z
    logging.getLogger('scib_metrics').setLevel(logging.WARNING)
    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            bm = Benchmarker(a, batch_key=BATCH, label_key=LABEL, embedding_obsm_keys=list(embs), pre_integrated_embedding_obsm_key=pre,
                             n_jobs=1, progress_bar=False)
            bm.benchmark()
            res = bm.get_results(min_max_scale=False)
    finally: torch.set_num_threads(threads)
    return res.drop(index='Metric Type').astype(float)

def umap2(z, seed):
    import umap
    return umap.UMAP(random_state=seed, n_jobs=1).fit_transform(z).astype(np.float32)

def atlas_counts(n:int):
    "Counts AnnData of `scale.py`'s synthetic atlas (n cells x 2,000 genes), cell types in obs[LABEL]."
    import anndata, scipy.sparse as sp
    from scale import atlas_chunks
    t, c = zip(*[(t, c) for t, c, _ in atlas_chunks(n, 2000, chunk=10000, seed=0)])
    return anndata.AnnData(sp.csr_matrix(np.concatenate(c)), obs=pd.DataFrame({LABEL: pd.Categorical([f'type{k}' for k in np.concatenate(t)])}))

def run(a):
    torch.set_num_threads(1)
    counts0 = pbmc68k_counts() if a.data == 'pbmc' else atlas_counts(a.cells)
    tag = ('' if a.data == 'pbmc' else f'atlas{a.cells}-') + f"b{a.n_batches}-s{a.strength}"
    rows, maps = [], {}
    for seed in a.seeds:
        sim = simulate_batches(counts0, LABEL, n_batches=a.n_batches, strength=a.strength, random_state=seed)
        ref = simulate_batches(counts0, LABEL, n_batches=a.n_batches, strength=0., random_state=seed)
        x, lognorm = prep(sim); x0, _ = prep(ref)
        y = sim.obs[LABEL].astype(str).to_numpy(); b = sim.obs[BATCH].astype(str).to_numpy()
        held = sim.obs[BATCH].cat.categories[-1]; query = b == held
        embs, secs, extra = {}, {}, {}
        def timed(name, f):
            if a.only and name not in a.only and name != 'pca': return
            t0 = time.time(); embs[name] = f(); secs[name] = time.time() - t0
            print(f"[{tag} seed {seed}] {name}: {secs[name]:.0f}s", flush=True)
        timed('pca', lambda: pca50(x, seed))
        timed('pca_nobatch', lambda: pca50(x0, seed))
        timed('harmony', lambda: run_harmony(pca50(x, seed), sim.obs, seed))
        timed('scanorama', lambda: run_scanorama(lognorm, seed))
        if not a.no_scvi:
            def f():
                z, ep = run_scvi(sim, seed, a.scvi_epochs); extra['scvi_epochs'] = ep; return z
            timed('scvi', f)
        timed('knnmix', lambda: run_diffaug(x, seed, augment='knnmix')[0])
        timed('knnmix_mnn', lambda: run_diffaug(x, seed, batch=b, augment='knnmix')[0])
        timed('diffaug', lambda: run_diffaug(x, seed)[0])
        timed('diffaug_batch', lambda: run_diffaug(x, seed, batch=b)[0])
        timed('diffaug_offset', lambda: run_diffaug(x, seed, batch=b, **OFFSET)[0])
        def refmap():
            _, m = run_diffaug(x[~query], seed, batch=b[~query])
            return m.transform(x)  # the held-out batch was never seen, and needs no batch label to be embedded
        if not a.only or 'diffaug_refmap' in a.only: timed('diffaug_refmap', refmap)
        integ = {k: v for k, v in embs.items() if k not in ('pca_nobatch', 'diffaug_refmap')}
        ev = np.arange(len(y))
        if a.eval_cells and a.eval_cells < len(y):  # scib on one random subset of cells, the same for every method
            ev = np.sort(np.random.default_rng(seed).choice(len(y), a.eval_cells, replace=False))
        sub = lambda e: {k: v[ev] for k, v in e.items()}
        sc_main = scib_scores(sub(integ), sim.obs.iloc[ev], 'pca')
        sc_all = pd.concat([sc_main, scib_scores(sub({'pca_nobatch': embs['pca_nobatch']}), ref.obs.iloc[ev], 'pca_nobatch')]) if 'pca_nobatch' in embs else sc_main
        for name, z in embs.items():
            acc, f1 = label_transfer(z, y, query)
            r = dict(data='pbmc' if a.data == 'pbmc' else f'atlas{a.cells}', n_batches=a.n_batches, strength=a.strength, seed=seed, method=name, seconds=secs[name],
                     transfer_acc=acc, transfer_f1=f1, held_out=held, n_query=int(query.sum()))
            if len(ev) < len(y): r['scib_cells'] = len(ev)
            if name in sc_all.index: r.update({k.lower().replace(' ', '_'): float(v) for k, v in sc_all.loc[name].items()})
            if name == 'scvi': r['scvi_epochs'] = extra.get('scvi_epochs')
            rows.append(r)
        print(pd.DataFrame(rows[-len(embs):]).set_index('method')[['total', 'bio_conservation', 'batch_correction', 'transfer_acc']].round(3), flush=True)
        if seed == a.seeds[0] and not a.no_umap and not a.only:
            for name in ('pca', 'harmony', 'scvi', 'diffaug', 'diffaug_batch', 'pca_nobatch'):
                if name in embs: maps[name] = umap2(embs[name], seed)
            um = pd.DataFrame({'cell_type': y, 'batch': b})
            for name, u in maps.items(): um[f'{name}_1'], um[f'{name}_2'] = u[:, 0], u[:, 1]
            write_text_atomic(OUT / f'integration-{tag}-umap.csv', um.to_csv(index=False, float_format='%.4f'))
        df = pd.DataFrame(rows)
        path = OUT / f'integration-{tag}{a.suffix}.csv'
        if a.only and path.exists():  # added rows: the same cells (checked on PCA's scores), other rows kept as they were
            old = pd.read_csv(path)
            new_pca, old_pca = df[df.method == 'pca'].set_index('seed'), old[old.method == 'pca'].set_index('seed')
            both = new_pca.index.intersection(old_pca.index)
            if not (np.allclose(new_pca.loc[both, 'transfer_acc'], old_pca.loc[both, 'transfer_acc'], atol=1e-9) and (new_pca.loc[both, 'n_query'] == old_pca.loc[both, 'n_query']).all()):
                raise SystemExit(f"PCA's label transfer differs from {path.name}'s: not the same cells; refusing to merge")  # scib's own scores vary a little from run to run
            df = df[df.method != 'pca']
            keep = ~old.set_index(['seed', 'method']).index.isin(df.set_index(['seed', 'method']).index)
            df = pd.concat([old[keep], df], ignore_index=True)
        write_text_atomic(path, df.to_csv(index=False))
    return df

# --- the report ---------------------------------------------------------------------------------------------------

SHOW = [('total', 'scib total'), ('bio_conservation', 'bio conservation'), ('batch_correction', 'batch correction'),
        ('transfer_acc', 'label transfer acc.'), ('transfer_f1', 'label transfer F1')]

def paired(d, m1, m2, col):
    "Paired differences m1 - m2 over seeds: mean, sd, sign count, n and the exact two-sided sign-flip permutation p (`_report.paired_test`)."
    p = d.pivot(index='seed', columns='method', values=col)[[m1, m2]].dropna()
    t = paired_test(p[m1], p[m2])
    return t['mean'], t['sd'], t['wins'], t['n'], t['p']

NICE = {'pca': 'PCA (uncorrected)', 'harmony': 'Harmony', 'scanorama': 'Scanorama', 'scvi': 'scVI', 'knnmix': 'kNN-mix',
        'knnmix_mnn': 'kNN-mix, cross-batch neighbours', 'diffaug': 'DiffAug (no batch)', 'diffaug_batch': 'DiffAug with batch', 'diffaug_offset': 'DiffAug with batch, offset views',
        'pca_nobatch': 'PCA, no batch effect (reference)'}

def scib_figure(s:pd.DataFrame, path):
    """The scib table as the field draws it, at page width: one circle per metric (size and colour = value, read on the
    colour bar), bars with their values for the aggregate scores."""
    import matplotlib.pyplot as plt
    metrics = [c for c in s.columns if c not in ('total', 'bio_conservation', 'batch_correction')]
    aggs = ['bio_conservation', 'batch_correction', 'total']
    s = s.sort_values('total', ascending=True)
    step, bw = 0.62, 1.25  # circle spacing and bar width, in data units
    fig, ax = plt.subplots(figsize=(8.5, 0.34 * len(s) + 2.2))
    cmap = plt.get_cmap('viridis')
    x_bar = [len(metrics) * step + 0.3 + (bw + 0.35) * k for k in range(3)]
    for i, (name, r) in enumerate(s.iterrows()):
        for j, m in enumerate(metrics):
            ax.scatter(j * step, i, s=25 + 170 * max(r[m], 0), color=cmap(max(min(r[m], 1), 0)), edgecolor='k', lw=0.3)
        for k, m in enumerate(aggs):
            ax.barh(i, bw * r[m], left=x_bar[k], height=0.6, color=cmap(r[m]))
            inside = r[m] >= 0.5  # a long bar holds its value; a short one gets it beside it (black on white either way)
            ax.text(x_bar[k] + 0.04 + (0 if inside else bw * max(r[m], 0)), i, f"{r[m]:.2f}", va='center', fontsize=8.5,
                    color='w' if inside and r[m] < 0.6 else 'k')
    labels = [m.replace('_', ' ') for m in metrics] + ['bio cons.', 'batch corr.', 'total']
    ax.set_xticks([j * step for j in range(len(metrics))] + [x + bw / 2 for x in x_bar], labels, rotation=40, ha='right', fontsize=9)
    ax.set_yticks(range(len(s)), [NICE.get(m, m) for m in s.index], fontsize=9)
    ax.set_xlim(-0.4, x_bar[-1] + bw + 0.1); ax.set_ylim(-0.7, len(s) - 0.3)
    for sp in ('top', 'right'): ax.spines[sp].set_visible(False)
    ax.set_xlabel('scib-metrics score, 0-1 (circles: one metric each; bars: the aggregates)', fontsize=9)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1)); cb = fig.colorbar(sm, ax=ax, fraction=0.025, pad=0.01)
    cb.set_label('score', fontsize=9); cb.ax.tick_params(labelsize=8)
    fig.tight_layout()
    return savefig(fig, path)

def umap_figure(um:pd.DataFrame, path, title):
    "UMAPs of each method at page width: coloured by batch (top row) and by cell type (bottom row), legends below."
    import matplotlib.pyplot as plt
    names = [c[:-2] for c in um.columns if c.endswith('_1')]
    w = 8.5 / len(names)
    fig, axs = plt.subplots(2, len(names), figsize=(8.5, 2 * w + 3.2), squeeze=False)
    types, batches = sorted(um.cell_type.unique()), sorted(um.batch.unique())
    tc = {t: plt.get_cmap('tab10')(i % 10) for i, t in enumerate(types)}; bc = {t: plt.get_cmap('Set1')(i % 9) for i, t in enumerate(batches)}
    for j, n in enumerate(names):
        for i, (col, cmap) in enumerate((('batch', bc), ('cell_type', tc))):
            ax = axs[i, j]
            ax.scatter(um[f'{n}_1'], um[f'{n}_2'], s=2, c=[cmap[v] for v in um[col]], lw=0)
            ax.set_xticks([]); ax.set_yticks([])
            if i == 1: ax.set_xlabel('UMAP 1', fontsize=9)
            if j == 0: ax.set_ylabel(f"UMAP 2\n(by {col.replace('_', ' ')})", fontsize=9)
            if i == 0: ax.set_title(NICE.get(n, n).replace(', ', ',\n').replace(' (', '\n('), fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.3, 1, 1))
    for cmap, what, y0, nc in ((bc, 'batch', 0.2, 6), (tc, 'cell type', 0.0, 4)):
        h = [plt.Line2D([], [], marker='o', ls='', color=c, label=k) for k, c in cmap.items()]
        fig.legend(handles=h, title=what, loc='lower center', bbox_to_anchor=(0.5, y0), ncol=nc, fontsize=8.5,
                   title_fontsize=9, frameon=False, columnspacing=1.0, handletextpad=0.2)
    return savefig(fig, path, bbox_inches='tight')

def report(a):
    parts = sorted(p for p in OUT.glob('integration-*.csv') if not p.name.endswith('-umap.csv'))
    if not parts: raise SystemExit('no results/integration-b*-s*.csv yet; run `integration.py run` first')
    df = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    if 'data' not in df: df['data'] = 'pbmc'
    df['data'] = df['data'].fillna('pbmc')
    lines = ['# Batch integration on semi-synthetic atlases (pbmc68k_reduced cells, simulated batches)', '',
             f"Written by `benchmarks/integration.py` ({machine_line(1)[:-1]}, under the load of other jobs). Within a configuration every method "
             f"sees the same cells: 700 real PBMCs of pbmc68k_reduced, or a synthetic atlas (sections named so), split into batches whose "
             f"make-up and batch effects are drawn anew per seed by `diffaug.datasets.simulate_batches`. "
             f"scib-metrics' Benchmarker, unscaled (total = 0.6 bio conservation + 0.4 batch correction); label transfer: 15-NN from the "
             f"reference batches to the held-out last batch. Mean ± sd over seeds; `pca_nobatch` is PCA of the same cells without batch "
             f"effects, the reference for bio conservation, not a competitor. `diffaug_refmap` was trained without the held-out batch "
             f"(scored for label transfer only). The design of DiffAug's batch path was chosen on 3 batches, strength 1.0, seed 0; "
             f"everything else is held out.", '',
             'Rows: ' + '; '.join(f"`{k}`: {v}" for k, v in NICE.items()) + '.', '']
    figs = []
    for (ds, nb, st), d in df.groupby(['data', 'n_batches', 'strength'], sort=True):
        seeds = sorted(d.seed.unique())
        where = 'pbmc68k_reduced cells, ' if ds == 'pbmc' else f"synthetic atlas of {int(ds[5:]):,} cells, "
        lines += [f"## {where}{nb} batches, strength {st} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}: {', '.join(map(str, seeds))})", '']
        notes = []
        if 'scib_cells' in d and d['scib_cells'].notna().any():
            notes.append(f"scib-metrics scored on {int(d['scib_cells'].dropna().iloc[0]):,} randomly chosen cells per seed (the same cells for every method; "
                         f"label transfer on all cells)")
        if 'scvi_epochs' in d and d['scvi_epochs'].notna().any():
            notes.append(f"scVI trained for {int(d['scvi_epochs'].dropna().iloc[0])} epochs")
        missing = [m for m in METHODS if m not in set(d.method) and m not in ('diffaug_refmap',)]
        if missing: notes.append("not run at this size: " + ', '.join(f"`{m}`" for m in missing))
        if notes: lines += ['Settings: ' + '; '.join(notes) + '.', '']
        g = d.groupby('method', sort=False)
        tab = pd.DataFrame(index=[m for m in METHODS if m in g.groups])
        for col, nm in SHOW:
            mu, sd = g[col].mean(), g[col].std(ddof=1)
            tab[nm] = [('' if pd.isna(mu.get(m)) else f"{100 * mu[m]:.1f}" if pd.isna(sd.get(m)) else f"{100 * mu[m]:.1f} ± {100 * sd[m]:.1f}") for m in tab.index]
        tab['fit seconds'] = [f"{g['seconds'].mean()[m]:.0f}" for m in tab.index]
        lines += [md_table(tab.reset_index(names='method')), '']
        comp = d[~d.method.isin(['pca_nobatch', 'diffaug_refmap'])]
        mean = comp.groupby('method').mean(numeric_only=True)
        best_total = mean['total'].idxmax(); best_tr = mean['transfer_acc'].idxmax()
        ref = d[d.method == 'pca_nobatch']['bio_conservation'].mean()
        db = mean.loc['diffaug_batch'] if 'diffaug_batch' in mean.index else None
        words = [f"Highest scib total: **{best_total}** ({100 * mean.loc[best_total, 'total']:.1f}); highest label-transfer accuracy: "
                 f"**{best_tr}** ({100 * mean.loc[best_tr, 'transfer_acc']:.1f})."]
        if db is not None:
            words.append(f"DiffAug with batch: total {100 * db['total']:.1f}, batch correction {100 * db['batch_correction']:.1f} "
                         f"(uncorrected PCA {100 * mean.loc['pca', 'batch_correction']:.1f}), bio conservation {100 * db['bio_conservation']:.1f} "
                         f"against {100 * ref:.1f} for PCA without batch effects ({100 * (db['bio_conservation'] - ref):+.1f} points).")
        lines += [' '.join(words), '']
        if d.seed.nunique() < 2:
            lines += ['One seed: the differences between rows are single values, with no paired test; more seeds are needed to '
                      'say which differences hold.', '']
        for subj in [m for m in ('diffaug_batch', 'diffaug_offset') if m in g.groups and d.seed.nunique() >= 2]:
            lines += [f"Paired differences, {NICE[subj]} minus each row (points; sign count = seeds where it is higher; "
                      f'p = exact two-sided sign-flip permutation test over seeds, whose smallest possible value at {d.seed.nunique()} seeds is {2 / 2 ** d.seed.nunique():g}):', '']
            pr = []
            for other in [m for m in METHODS if m in g.groups and m not in (subj, 'pca_nobatch', 'diffaug_refmap')]:
                row = {'against': other}
                for col, nm in SHOW[:4]:
                    mdiff, sdd, pos, n, pv = paired(d, subj, other, col)
                    row[nm] = f"{100 * mdiff:+.1f} ± {100 * sdd:.1f} ({pos}/{n}, p={pv:.2f})"
                pr.append(row)
            lines += [md_table(pd.DataFrame(pr)), '']
        # the scib table figure and the UMAPs of the first seed
        tag = ('' if ds == 'pbmc' else f'{ds}-') + f"b{nb}-s{st}"
        mcols = [c for c in d.columns if c not in ('data', 'n_batches', 'strength', 'seed', 'method', 'seconds', 'transfer_acc', 'transfer_f1', 'held_out', 'n_query', 'scvi_epochs', 'scib_cells')]
        s = d[~d.method.isin(['diffaug_refmap'])].groupby('method')[mcols].mean().dropna(how='all')
        f1 = scib_figure(s, OUT / f'integration-{tag}-scib.png'); figs.append(f1)
        lines += [f"![scib-metrics scores, {nb} batches at strength {st}, mean over seeds]({f1})", '']
        ump = OUT / f'integration-{tag}-umap.csv'
        if ump.exists():
            f2 = umap_figure(pd.read_csv(ump), OUT / f'integration-{tag}-umap.png', f"UMAPs, {nb} batches at strength {st}, seed {seeds[0]}: by batch (top) and cell type (bottom)")
            lines += [f"![UMAPs coloured by batch and by cell type]({f2})", '']
    write_text_atomic(OUT / 'integration.md', '\n'.join(lines) + '\n')
    print('\n'.join(lines))

def main():
    global SMOKE
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('run'); r.add_argument('--n-batches', type=positive_int, default=3); r.add_argument('--strength', type=float, default=1.0)
    r.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4]); r.add_argument('--no-scvi', action='store_true')
    r.add_argument('--suffix', default='', help="added to the CSV's name, e.g. '-seed1' when seeds of one configuration run in parallel processes (the report reads every CSV)")
    r.add_argument('--data', choices=['pbmc', 'atlas'], default='pbmc'); r.add_argument('--cells', type=positive_int, default=10000, help='atlas cells (--data atlas)')
    r.add_argument('--scvi-epochs', type=positive_int, default=None, help="scVI epochs (default: scVI's own rule, 400 at up to 20,000 cells)")
    r.add_argument('--only', nargs='+', choices=METHODS, help="run only these methods (and PCA, to check the cells) and merge their rows into the existing CSV")
    r.add_argument('--eval-cells', type=positive_int, default=None,
                   help="score scib-metrics on this many randomly chosen cells (the same cells for every method; default: all); label transfer always uses all")
    r.add_argument('--no-umap', action='store_true'); r.add_argument('--smoke', action='store_true', help='one epoch everywhere: checks the script, numbers mean nothing')
    sub.add_parser('report')
    a = p.parse_args()
    if a.cmd == 'run':
        SMOKE = a.smoke
        run(a)
    else: report(a)

if __name__ == '__main__': main()
