"""Leiden clusters of a DiffAug embedding against those of PCA, over a sweep of resolutions.

A clustering compared at one resolution can mislead: Leiden's resolution sets how many clusters it finds, and the same
resolution gives different numbers of clusters on different neighbour graphs. So the two representations are compared
over a sweep of resolutions, by the number of clusters and by the agreement with the cell types (ARI), and at matched
numbers of clusters. The question it answers for the bring-your-own-data guide: does DiffAug's embedding over-split
at scanpy's default resolution (1.0), and which resolution gives as many clusters as PCA's at 1.0?

Data (both log-normalised, highly variable genes, z-scored as in scanpy's usual pipeline, then embedded):
  pbmc    the 700 cells of pbmc68k_reduced (its `X`, 765 genes), scored on `bulk_labels` (the tuning data)
  sim4    a synthetic atlas of 2,000 cells x 2,000 genes with 4 cell types (`scale.py`'s generator), held out
Rows: PCA-50 and DiffAug at the package defaults, the same seed for both; neighbours: scanpy's defaults (15, on the
representation); Leiden: igraph's flavour as scanpy recommends it (`flavor='igraph', n_iterations=2,
directed=False`), `random_state` = seed.

    python benchmarks/leiden.py                      # results/leiden-resolution.{csv,md,png}, 3 seeds
    python benchmarks/leiden.py --report-only        # the Markdown and figure from the CSV
"""
from __future__ import annotations
import argparse, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_text_atomic, machine_line, positive_int, paired_test, verdict
from diffaug.report import md_table, savefig

OUT = Path(__file__).resolve().parent / 'results'
RESOLUTIONS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
NICE = {'pbmc': 'pbmc68k_reduced (700 cells, tuning data)', 'sim4': 'synthetic, 4 cell types (2,000 cells, held out)'}

def load(name:str):
    "(X to embed, cell-type labels) of one data set."
    import scanpy as sc
    if name == 'pbmc':
        a = sc.datasets.pbmc68k_reduced()
        return np.asarray(a.X, np.float32), a.obs['bulk_labels'].astype(str).to_numpy()
    from scale import atlas_chunks
    t, _, x = (np.concatenate(p) for p in zip(*atlas_chunks(2000, 2000, n_types=4, chunk=2000, seed=0)))
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-6)
    return np.clip(x, -10, 10).astype(np.float32), t.astype(str)

def sweep(z, y, seed):
    "Clusters and ARI at every resolution, on scanpy's neighbour graph of `z`."
    import anndata, scanpy as sc
    from sklearn.metrics import adjusted_rand_score
    a = anndata.AnnData(np.zeros((len(z), 1), np.float32)); a.obsm['rep'] = z
    sc.pp.neighbors(a, use_rep='rep', random_state=seed)
    rows = []
    for r in RESOLUTIONS:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            sc.tl.leiden(a, resolution=r, random_state=seed, key_added='c', flavor='igraph', n_iterations=2, directed=False)
        rows.append(dict(resolution=r, clusters=a.obs['c'].nunique(), ari=adjusted_rand_score(y, a.obs['c'])))
    return rows

def run(a):
    from sklearn.decomposition import PCA
    from diffaug.contrastive import DiffAug
    torch.set_num_threads(1)
    path = OUT / 'leiden-resolution.csv'
    old = pd.read_csv(path) if (a.resume and path.exists()) else None
    rows = [] if old is None else old.to_dict('records')
    for ds in a.datasets:
        x, y = load(ds)
        for seed in range(a.seeds):
            if old is not None and ((old.data == ds) & (old.seed == seed)).any(): continue  # --resume: done before
            t0 = time.time()
            reps = {'PCA-50': PCA(50, random_state=seed).fit_transform(x).astype(np.float32),
                    'DiffAug': DiffAug(random_state=seed, progress=False, device='cpu').fit(x).transform(x)}
            for m, z in reps.items():
                rows += [dict(data=ds, seed=seed, method=m, **r) for r in sweep(z, y, seed)]
            print(f"[{ds} seed {seed}] {time.time() - t0:.0f} s", flush=True)
            write_text_atomic(path, pd.DataFrame(rows).to_csv(index=False))  # after every seed: a stopped run resumes
    return pd.DataFrame(rows)

def matched(d:pd.DataFrame) -> pd.DataFrame:
    "Per seed: each method's ARI at the resolution whose number of clusters is nearest the number of cell types."
    k = d.attrs.get('n_types')
    out = []
    for (seed, m), g in d.groupby(['seed', 'method']):
        g = g.assign(gap=(g.clusters - k).abs()).sort_values(['gap', 'resolution'])
        out.append(dict(seed=seed, method=m, resolution=g.resolution.iloc[0], clusters=g.clusters.iloc[0], ari=g.ari.iloc[0]))
    return pd.DataFrame(out)

def report(df:pd.DataFrame):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    n_types = {'pbmc': 10, 'sim4': 4}
    lines = ['# Leiden clusters over a sweep of resolutions: DiffAug against PCA', '',
             f"Written by `benchmarks/leiden.py` ({machine_line(1)}). Leiden (igraph's flavour, 2 iterations) on scanpy's default "
             f"neighbour graph (15 neighbours) of each representation; DiffAug at the package defaults; mean ± sd over "
             f"{df.seed.nunique()} seeds. ARI against the cell types, in points.", '']
    fig, axs = plt.subplots(1, len(df.data.unique()), figsize=(8.5, 3.6), squeeze=False)
    for ax, (ds, d) in zip(axs[0], df.groupby('data', sort=False)):
        d = d.copy(); d.attrs['n_types'] = n_types[ds]
        g = d.groupby(['resolution', 'method'])
        tab = g.agg(clusters=('clusters', 'mean'), clusters_sd=('clusters', 'std'), ari=('ari', 'mean'), ari_sd=('ari', 'std')).reset_index()
        wide = pd.DataFrame({'resolution': RESOLUTIONS})
        for m in ('PCA-50', 'DiffAug'):
            t = tab[tab.method == m].set_index('resolution')
            wide[f'{m} clusters'] = [f"{t.clusters[r]:.1f} ± {t.clusters_sd[r]:.1f}" for r in RESOLUTIONS]
            wide[f'{m} ARI'] = [f"{100 * t.ari[r]:.1f} ± {100 * t.ari_sd[r]:.1f}" for r in RESOLUTIONS]
        lines += [f"## {NICE.get(ds, ds)}: {n_types[ds]} cell types", '', md_table(wide), '']
        at1 = d[d.resolution == 1.0].pivot(index='seed', columns='method', values='clusters')
        best = d.groupby(['seed', 'method']).ari.max().unstack()
        mt = matched(d).pivot(index='seed', columns='method', values='ari')
        tb, tm = paired_test(best['DiffAug'], best['PCA-50']), paired_test(mt['DiffAug'], mt['PCA-50'])
        pca1 = at1['PCA-50'].mean()
        da_mean = d[d.method == 'DiffAug'].groupby('resolution').clusters.mean()
        near = min(RESOLUTIONS, key=lambda r: (abs(da_mean[r] - pca1), -r))
        lines += [f"At resolution 1.0 PCA-50 gives {pca1:.1f} clusters and DiffAug {at1['DiffAug'].mean():.1f} "
                  f"({'DiffAug splits more' if at1['DiffAug'].mean() > pca1 + 0.5 else 'about as many' if abs(at1['DiffAug'].mean() - pca1) <= 0.5 else 'DiffAug splits less'}); "
                  f"DiffAug gives about as many clusters as PCA's 1.0 at resolution {near} ({da_mean[near]:.1f}).", '',
                  f"Best ARI over the sweep (the best resolution of each seed, averaged over seeds): DiffAug {100 * best['DiffAug'].mean():.1f}, PCA-50 {100 * best['PCA-50'].mean():.1f} "
                  f"(DiffAug - PCA {100 * tb['mean']:+.1f} ± {100 * tb['sd']:.1f}, {tb['wins']}/{tb['n']} seeds, p = {tb['p']:.2f}: {verdict(tb, False)}). "
                  f"At the resolution whose number of clusters is nearest the {n_types[ds]} cell types (chosen in each seed): DiffAug {100 * mt['DiffAug'].mean():.1f}, "
                  f"PCA-50 {100 * mt['PCA-50'].mean():.1f} ({100 * tm['mean']:+.1f} ± {100 * tm['sd']:.1f}, {tm['wins']}/{tm['n']} seeds).", '']
        for m, c in (('PCA-50', 'tab:blue'), ('DiffAug', 'tab:orange')):
            t = tab[tab.method == m]
            ax.errorbar(t.clusters, 100 * t.ari, xerr=t.clusters_sd, yerr=100 * t.ari_sd, marker='o', ms=4, color=c, label=m, capsize=2)
            for _, r in t.iterrows():
                if r.resolution in (0.2, 1.0, 2.0): ax.annotate(f"{r.resolution:g}", (r.clusters, 100 * r.ari), fontsize=8, xytext=(3, 3), textcoords='offset points')
        ax.axvline(n_types[ds], color='grey', ls=':', lw=1)
        ax.set_title(NICE.get(ds, ds).split(' (')[0], fontsize=10)
        ax.set_xlabel('Leiden clusters (mean over seeds)', fontsize=9); ax.set_ylabel('ARI with cell types (points)', fontsize=9)
    axs[0, 0].legend(fontsize=9, title='representation', title_fontsize=9)
    fig.suptitle('Leiden over resolutions 0.1-2.0 (labels: resolution; dotted: number of cell types)', fontsize=10)
    fig.tight_layout()
    f = savefig(fig, OUT / 'leiden-resolution.png')
    lines += [f"![ARI against the number of Leiden clusters, PCA-50 and DiffAug]({f})", '']
    write_text_atomic(OUT / 'leiden-resolution.md', '\n'.join(lines) + '\n')
    print('\n'.join(lines))

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--datasets', nargs='+', default=['pbmc', 'sim4'], choices=['pbmc', 'sim4'])
    p.add_argument('--seeds', type=positive_int, default=3)
    p.add_argument('--report-only', action='store_true')
    p.add_argument('--resume', action='store_true', help='keep the seeds already in the CSV and run the others')
    a = p.parse_args()
    df = pd.read_csv(OUT / 'leiden-resolution.csv') if a.report_only else run(a)
    report(df)

if __name__ == '__main__':
    main()
