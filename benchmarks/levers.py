"""Issue 12: which settings make a DiffAug embedding worth using on single cells? One lever at a time, paired seeds.

Tuning data only (the protocol of issue 12): pbmc68k_reduced scored on bulk_labels, and scikit-learn's digits as
64-d vectors. Held-out data (wine, breast_cancer, the scale benchmark's synthetic atlas) are never run here; they are
reported, untouched, by `benchmarks/contrastive.py` once defaults are chosen.

Every variant changes one thing against `base` (the package defaults) and runs with the same seeds, so differences are
paired. `--augment knnmix` screens the encoder-side levers (representation, input, latent size, kernel, batch size,
learning rate, length) at a fraction of the cost, since DiffAug's E phases share them; `--augment diffaug` checks the
generator-side ones (lam, rounds) and confirms. Baselines per seed: PCA-50 of the z-scored features ('pca'), the
z-scored features themselves ('raw'), and for pbmc the `X_pca` that ships with the data.
Scores: the six classic ones (`diffaug.metrics.evaluate_embedding`) and scib-metrics' bio-conservation total
(`diffaug.metrics.bio_conservation`), all in points (x100).

    python benchmarks/levers.py --augment knnmix --seeds 0 1 --tag screen
    python benchmarks/levers.py --augment diffaug --variants base lam05 --seeds 0 1 2 3 4 --tag confirm

Fitting and scoring can be split, e.g. fitting on a machine with many cores and scoring where scib-metrics is installed:

    python benchmarks/levers.py --augment diffaug --fit-only --emb /tmp/emb --jobs 16   # one .npz per fit, resumable
    python benchmarks/levers.py --augment diffaug --emb /tmp/emb --tag screen           # scores what is there

The report alone can be rewritten from the CSV (the --note of the run must be given again; --no-figure keeps the .png):

    python benchmarks/levers.py --augment diffaug --tag confirm --report-only --no-figure --note '...'
"""
from __future__ import annotations
import argparse, os, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch

from diffaug.contrastive import DiffAug, auto_epochs, group_settings, DEFAULT_BS
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_text_atomic, machine_line, paired_test, paired_words, ns_note
from diffaug.report import md_table, savefig
from contrastive import load, zscore, pca

SCORES = ['knn', 'linear', 'svc', 'kmeans', 'ari', 'nmi', 'bio']
# one lever per variant: DiffAug keyword arguments, plus 'input' ('x': the data's features, 'pca': PCA-50 of them)
# and 'rep' (which representation is scored: 'z' the encoder output, 'h' the 2-d projection head)
VARIANTS = {
    'base': {},  # also scored on its 2-d projection head as 'base:h' (the representation lever, no extra fit)
    'input_pca': dict(input='pca'),
    'latent10': dict(n_latent=10),
    'nu_latent_1': dict(loss_kw={'nu_latent': 1.0}),
    'nu_input_10': dict(loss_kw={'nu_input': 10.0}),
    'bs128': dict(bs=128),  # the default since issue 12 (then a lever against batches of min(500, N/2)); kept to rerun the grid
    'lr3e-3': dict(lr=3e-3),
    'epochs0.5x': dict(epochs_scale=0.5),
    'k15': dict(k=15),
    'epochs2x': dict(epochs_scale=2),
    'epochs4x': dict(epochs_scale=4),
    'head10': dict(encoder_kw={'head_dim': 10}),
    'clip10': dict(scaler_kw={'clip': 10.}),
    'ntxent': dict(loss='ntxent'),
    'bs128+lr3e-3': dict(bs=128, lr=3e-3),  # the two best pbmc levers of the grid, combined
    'lam05': dict(lam=0.5),
    'rounds2': dict(rounds=2),
}
DIFFAUG_ONLY = ('lam05', 'rounds2')

SMOKE = os.environ.get('LEVERS_SMOKE') == '1'  # one epoch per phase: checks the pipeline, not the method

def embed(x, seed, augment, spec, device='cpu'):
    "Fit one DiffAug run; returns the encoder output z, the head output h and the seconds it took."
    spec = dict(spec)
    inp, scale = spec.pop('input', 'x'), spec.pop('epochs_scale', None)
    xin = pca(x, seed=seed).astype(np.float32) if inp == 'pca' else x
    if scale is not None:  # the default schedule (auto_epochs), every phase scaled
        bs = spec.get('bs') or min(DEFAULT_BS, -(-len(xin) // 2))
        spec['epochs'] = tuple(max(1, round(v * scale)) for v in auto_epochs(len(xin), bs))
    if SMOKE: spec['epochs'] = (1, 1, 1)
    t0 = time.time()
    m = DiffAug(augment=augment, random_state=seed, progress=False, device=device, **group_settings(spec)).fit(xin)  # the variants are written flat
    z = m.transform(xin)
    with torch.no_grad(): h = m.model.eval().head(torch.as_tensor(z, device=m.device)).cpu().numpy()
    return z, h, time.time() - t0

_DATA = {}
def data(ds):
    "`(x, y)` of a tuning data set, cached per process."
    if ds not in _DATA:
        x, labels = load(ds); _DATA[ds] = x, labels['bulk_labels' if ds == 'pbmc' else 'digit']
    return _DATA[ds]

def emb_path(folder, ds, augment, variant, seed): return Path(folder) / f"{ds}-{augment}-{variant}-{seed}.npz"

def fit_task(task):
    "One fit of the grid, saved atomically to its .npz (skipped when the file exists): `(name, seconds or None)`."
    folder, ds, augment, variant, seed, device = task
    f = emb_path(folder, ds, augment, variant, seed)
    if f.exists(): return f.name, None
    torch.set_num_threads(1)
    z, h, sec = embed(data(ds)[0], seed, augment, VARIANTS[variant], device)
    tmp = f.with_suffix('.tmp.npz'); np.savez(tmp, z=z, h=h, seconds=sec); os.replace(tmp, f)
    return f.name, sec

def score(z, y, seed):
    from diffaug.metrics import evaluate_embedding, bio_conservation
    r = evaluate_embedding(z, y, random_state=seed)
    r['bio'] = bio_conservation(z, y)['bio_conservation']
    return {k: 100 * v for k, v in r.items()}

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--datasets', nargs='+', default=['pbmc', 'digits'], choices=['pbmc', 'digits'])
    p.add_argument('--augment', default='knnmix', choices=['knnmix', 'diffaug'])
    p.add_argument('--variants', nargs='+', default=None, choices=list(VARIANTS), help='default: all (knnmix: all but ' + ', '.join(DIFFAUG_ONLY) + ')')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--tag', default='screen')
    p.add_argument('--emb', default=None, help='folder of one .npz per fit: written by --fit-only, read (instead of fitting) otherwise')
    p.add_argument('--fit-only', action='store_true', help='fit and save the embeddings to --emb, score nothing')
    p.add_argument('--jobs', type=int, default=1, help='fits in parallel (one torch thread each)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--report-only', action='store_true', help='rewrite the .md and .png from the existing CSV')
    p.add_argument('--no-figure', action='store_true', help='with --report-only: rewrite the .md only, leave the .png as it is')
    p.add_argument('--note', default='', help='a sentence on where and how the fits ran, printed in the report')
    a = p.parse_args()
    if a.fit_only and not a.emb: p.error('--fit-only needs --emb')
    if a.jobs < 1: p.error('--jobs must be at least 1')
    variants = a.variants or [v for v in VARIANTS if a.augment == 'diffaug' or v not in DIFFAUG_ONLY]
    torch.set_num_threads(1)
    if a.fit_only:  # seed by seed, the longest fits first, so that a time limit leaves whole seeds
        Path(a.emb).mkdir(parents=True, exist_ok=True)
        cost = lambda v: VARIANTS[v].get('epochs_scale', 1) * VARIANTS[v].get('rounds', 1)
        tasks = [(a.emb, ds, a.augment, v, seed, a.device) for seed in a.seeds for v in sorted(variants, key=cost, reverse=True) for ds in a.datasets]
        t0 = time.time()
        if a.jobs == 1: done = map(fit_task, tasks)
        else:
            import multiprocessing as mp
            done = mp.get_context('spawn').Pool(a.jobs, maxtasksperchild=4).imap_unordered(fit_task, tasks)
        for i, (name, sec) in enumerate(done, 1):
            print(f"[{time.time() - t0:.0f}s {i}/{len(tasks)}] {name}: " + ('exists' if sec is None else f"{sec:.0f}s"), flush=True)
        return
    out = Path(__file__).parent / 'results' / f'levers-{a.tag}'
    rows = []
    if a.report_only:
        df = pd.read_csv(out.with_suffix('.csv')); write_text_atomic(out.with_suffix('.md'), report(df, a))
        if not a.no_figure: plot(df, out.with_suffix('.png'))
        return
    for ds in a.datasets:
        x, y = data(ds)
        for seed in a.seeds:
            base = {'pca': pca(x, seed=seed), 'raw': zscore(x)}
            if ds == 'pbmc':
                from diffaug.datasets import pbmc68k_reduced
                base['X_pca (shipped)'] = np.asarray(pbmc68k_reduced().obsm['X_pca'])
            for name, z in base.items():
                rows.append(dict(dataset=ds, variant=name, kind='baseline', seed=seed, seconds=0., **score(z, y, seed)))
            for v in variants:
                if a.emb:
                    f = emb_path(a.emb, ds, a.augment, v, seed)
                    if not f.exists(): continue
                    e = np.load(f); z, h, sec = e['z'], e['h'], float(e['seconds'])
                else: z, h, sec = embed(x, seed, a.augment, VARIANTS[v], a.device)
                rows.append(dict(dataset=ds, variant=v, kind=a.augment, seed=seed, seconds=sec, **score(z, y, seed)))
                print(f"[{ds} seed {seed}] {v}: {sec:.0f}s " + ' '.join(f"{k} {rows[-1][k]:.1f}" for k in SCORES), flush=True)
                if v == 'base': rows.append(dict(dataset=ds, variant='base:h', kind=a.augment, seed=seed, seconds=sec, **score(h, y, seed)))
            df = pd.DataFrame(rows)
            write_text_atomic(out.with_suffix('.csv'), df.to_csv(index=False))
            write_text_atomic(out.with_suffix('.md'), report(df, a))
    plot(df, out.with_suffix('.png'))

def plot(df, path, max_rows=8):
    "Grouped bars per data set: mean ± std over seeds of every score, for the baselines and (at most `max_rows`) variants."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    dss = list(df.dataset.unique())
    fig, axs = plt.subplots(len(dss), 1, figsize=(8, 3.2 * len(dss)), squeeze=False)  # page width; one legend below
    colour = {v: plt.cm.tab10(i % 10) for i, v in enumerate(dict.fromkeys(df.variant))}  # one colour per row in every panel
    for ax, ds in zip(axs[:, 0], dss):
        d = df[df.dataset == ds]
        names = list(dict.fromkeys(d.variant))[:max_rows]
        w = 0.8 / len(names)
        for i, v in enumerate(names):
            g = d[d.variant == v][SCORES]
            ax.bar(np.arange(len(SCORES)) + (i - (len(names) - 1) / 2) * w, g.mean(), w, yerr=g.std(ddof=1).fillna(0), capsize=2, label=v, color=colour[v])
        ax.set_xticks(range(len(SCORES)), ['5-NN', 'linear', 'SVC', 'K-means', 'ARI', 'NMI', 'scib bio'])
        ax.set_ylabel('score (points)'); ax.set_title(f"{ds}: mean ± std over {d.seed.nunique()} seeds")
        ax.set_ylim(max(0, float(d[SCORES].min().min()) - 10), 100)
    fig.tight_layout()
    seen = {}
    for ax in axs[:, 0]:
        for h, l in zip(*ax.get_legend_handles_labels()): seen.setdefault(l, h)
    fig.legend(list(seen.values()), list(seen), loc='upper center', bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize=9, frameon=False)
    savefig(fig, path, dpi=110)

def report(df, a) -> str:
    "Mean per variant, and the paired difference of every variant against `base` and against PCA, per data set."
    lines = [f"# Levers of the DiffAug embedding ({a.augment}; tuning data only)", '', machine_line(1) +
             f" Seeds {sorted(df.seed.unique().tolist())}; scores in points; 'bio' is scib-metrics' bio-conservation total. {a.note}", '']
    for ds, d in df.groupby('dataset', sort=False):
        m = d.groupby('variant', sort=False)[SCORES + ['seconds']].mean()
        lines += [f"## {ds}: mean over seeds", '', md_table(m.reset_index(), floatfmt='.1f'), '']
        if 'base' in set(d.variant):
            b = d[d.variant == 'base'].set_index('seed')[SCORES]
            pc = d[d.variant == 'pca'].set_index('seed')[SCORES]
            diff, ns = [], []
            for v, g in d[d.kind != 'baseline'].groupby('variant', sort=False):
                g = g.set_index('seed')[SCORES]
                bg, dp = b.loc[g.index], (g - pc.loc[g.index])  # base on the variant's seeds, in its order
                diff.append(dict(variant=v, **{f'{k} vs base': paired_words(paired_test(g[k], bg[k]), scale=1, mark=True) for k in SCORES},
                                 beats_pca=f"{int((dp.mean() > 0).sum())}/{len(SCORES)}"))
                ns.append(len(g))
            lines += [f"## {ds}: paired differences against base (mean ± std over seeds); beats_pca counts scores where the variant's mean is above PCA's", '',
                      md_table(pd.DataFrame(diff)), '', ns_note(max(ns)), '']
    return '\n'.join(lines) + '\n'

if __name__ == '__main__': main()
