"""Issue 12's held-out report: DiffAug's defaults on data that no tuning run ever saw, against the rows to beat.

Tuning (`benchmarks/levers.py`) used pbmc68k_reduced and digits only. This script runs once the defaults are chosen and
is not used to change them. Data:
  wine, breast_cancer   scikit-learn's tables, scored on their classes
  atlas                 a synthetic single-cell atlas from `scale.py`'s generator (3,000 cells x 2,000 genes, 10 cell
                        types, negative-binomial counts; log-normalised X), scored on its cell types
Rows, all with the same seed per row:
  pca, raw       PCA-50 of the z-scored features (fewer components when there are fewer features); the z-scores
  knnmix         DiffAug(augment='knnmix'): the soft contrastive loss with kNN-mix views only (package defaults)
  diffaug        DiffAug(): the package defaults
  diffaug_v0     DiffAug with the defaults before issue 12 (`--v0`, a JSON of keyword arguments); omitted when empty
  scvi           scVI's latent space (scvi-tools, the [bench] extra), atlas only: it models the counts
Scores: the six classic ones and scib-metrics' bio-conservation total, in points, mean ± std over seeds, and the paired
difference of diffaug against every other row.

    python benchmarks/heldout.py --datasets wine breast_cancer --v0 '{"bs": "v0"}' --tag tables   # results/heldout-tables.*
    python benchmarks/heldout.py --datasets atlas --v0 '{"bs": "v0"}' --tag atlas                 # results/heldout-atlas.*
    python benchmarks/heldout.py --v0 '{"bs": "v0"}' --tag atlas --report-only   # rewrite the .md from the CSV (same --v0, --scvi-epochs)
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_text_atomic, machine_line, positive_int, paired_test, paired_words, ns_note
from diffaug.report import md_table
from contrastive import load, zscore, pca
from levers import score, SCORES, SMOKE
from scale import atlas_chunks
from diffaug.contrastive import DiffAug, group_settings

def load_atlas(n_cells=3000, n_genes=2000, seed=0):
    "`(log-normalised X, counts, cell types)` of the synthetic atlas."
    parts = list(atlas_chunks(n_cells, n_genes, chunk=n_cells, seed=seed))
    t, counts, x = (np.concatenate(p) for p in zip(*parts))
    return x, counts, t

def v0_kw(v0:dict, n:int) -> dict:
    "Keyword arguments of the pre-issue-12 row; `{'bs': 'v0'}` means the old batch rule min(500, ceil(N/2))."
    kw = dict(v0)
    if kw.get('bs') == 'v0': kw['bs'] = min(500, -(-n // 2))
    return kw

def fit_diffaug(x, seed, **kw):
    if SMOKE: kw['epochs'] = (1, 1, 1)
    t0 = time.time()
    m = DiffAug(random_state=seed, progress=False, device='cpu', **group_settings(kw)).fit(x)  # `--v0` settings are written flat
    return m.transform(x), time.time() - t0

def fit_scvi(counts, seed, max_epochs):
    "scVI (default model, 10-d latent) on the counts; returns its latent mean and the seconds it took."
    import anndata, scvi, logging
    scvi.settings.seed = seed; scvi.settings.verbosity = logging.ERROR
    a = anndata.AnnData(counts.copy())
    t0 = time.time()
    scvi.model.SCVI.setup_anndata(a)
    m = scvi.model.SCVI(a)
    m.train(max_epochs=1 if SMOKE else max_epochs, accelerator='cpu', enable_progress_bar=False)
    return m.get_latent_representation(), time.time() - t0

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--datasets', nargs='+', default=['wine', 'breast_cancer', 'atlas'], choices=['wine', 'breast_cancer', 'atlas'])
    p.add_argument('--seeds', type=positive_int, default=5)
    p.add_argument('--v0', default='{}', help="JSON keyword arguments of the pre-issue-12 defaults ({} to skip the row)")
    p.add_argument('--scvi-epochs', type=positive_int, default=100, help='scVI training epochs (its own rule would give 400 at 3,000 cells)')
    p.add_argument('--no-scvi', action='store_true')
    p.add_argument('--tag', default='heldout')
    p.add_argument('--report-only', action='store_true', help='rewrite the .md from the existing CSV (no fitting); give the run\'s --v0 and --scvi-epochs again')
    a = p.parse_args()
    torch.set_num_threads(1)
    v0 = json.loads(a.v0)
    out = Path(__file__).parent / 'results' / f'heldout-{a.tag}'
    if a.report_only:
        write_text_atomic(out.with_suffix('.md'), report(pd.read_csv(out.with_suffix('.csv')), a)); return
    rows = []
    for ds in a.datasets:
        if ds == 'atlas': x, counts, y = load_atlas()
        else:
            x, labels = load(ds); y, counts = labels['class'], None
        for seed in range(a.seeds):
            embs = {'pca': (pca(x, seed=seed), 0.), 'raw': (zscore(x), 0.),
                    'knnmix': fit_diffaug(x, seed, augment='knnmix'), 'diffaug': fit_diffaug(x, seed)}
            if v0: embs['diffaug_v0'] = fit_diffaug(x, seed, **v0_kw(v0, len(x)))
            if counts is not None and not a.no_scvi: embs['scvi'] = fit_scvi(counts, seed, a.scvi_epochs)
            for name, (z, sec) in embs.items():
                rows.append(dict(dataset=ds, method=name, seed=seed, seconds=sec, **score(z, y, seed)))
                print(f"[{ds} seed {seed}] {name}: {sec:.0f}s " + ' '.join(f"{k} {rows[-1][k]:.1f}" for k in SCORES), flush=True)
            df = pd.DataFrame(rows)
            write_text_atomic(out.with_suffix('.csv'), df.to_csv(index=False))
            write_text_atomic(out.with_suffix('.md'), report(df, a))

def report(df, a) -> str:
    lines = [f"# DiffAug on held-out data (never used for tuning)", '', machine_line(1) +
             f" Seeds 0..{df.seed.max()}; scores in points (mean ± std over seeds); 'bio' is scib-metrics' bio-conservation total;"
             f" scVI trained {a.scvi_epochs} epochs; diffaug_v0 = {a.v0}.", '']
    for ds, d in df.groupby('dataset', sort=False):
        g = d.groupby('method', sort=False)
        tab = pd.DataFrame({k: g[k].mean().map('{:.1f}'.format) + ' ± ' + g[k].std(ddof=1).fillna(0).map('{:.1f}'.format) for k in SCORES})
        tab['seconds'] = g['seconds'].mean().map('{:.0f}'.format)
        lines += [f"## {ds}", '', md_table(tab.reset_index()), '']
        da = d[d.method == 'diffaug'].set_index('seed')[SCORES]
        diff = []
        for m, s in g:
            if m == 'diffaug': continue
            o = s.set_index('seed')[SCORES].loc[da.index]  # the row on diffaug's seeds, in its order
            wins = int(((da - o).mean() > 0).sum())
            diff.append(dict(vs=m, **{k: paired_words(paired_test(da[k], o[k]), scale=1, mark=True) for k in SCORES}, diffaug_ahead=f"{wins}/{len(SCORES)}"))
        lines += [f"Paired differences, diffaug minus each row (mean ± std over seeds; positive: diffaug ahead):", '', md_table(pd.DataFrame(diff)), '',
                  ns_note(len(da)), '']
        best = {k: g[k].mean().idxmax() for k in SCORES}
        lines += ["Best row per score: " + ', '.join(f"{k} {v}" for k, v in best.items()) + '.', '']
    return '\n'.join(lines) + '\n'

if __name__ == '__main__': main()
