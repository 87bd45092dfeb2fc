"""Digits benchmark of the second method (denoising-assisted classifiers, DiffAug, DiffAug Ensemble, guidance, semi-supervised).

The experiment is the library's `diffaug.report.digits_experiment` (the demo runs it with one seed; this script runs it
over several and writes the tables). On scikit-learn's digits (1797 8x8 images, a stratified 70/30 split per seed) it
trains per seed one denoiser and plain, noisy, DA and DiffAug classifiers, then runs five parts:
  1  accuracy on diffused test digits x_t (the same x_t for every classifier): clean, clean on x0_hat, noisy, DA
  2  classifier-guided DDIM samples of the noisy and DA classifiers: class consistency and feature FID by a judge
  3  DiffAug training and the DiffAug Ensemble (DE) on corrupted test digits
  4  semi-supervised: noisy and DA classifiers on 5/10/20% of the labels, with and without temporal consistency
  5  cost: seconds per training epoch and per prediction
Every seed a part uses is a named child of the run's seed (`diffaug.core.Seeds(seed).seed('judge')`, ...).
It writes into --out classify_*.csv (one row per seed and setting), classify.md (mean ± std tables),
classify_config.json, acc_vs_t.png, guided_samples.png and gradient_maps.png, every file atomically, the CSVs and
classify.md again after every seed (a run cut short keeps its results).

    OMP_NUM_THREADS=1 python benchmarks/classify.py --quick          # a few minutes on one CPU thread
    OMP_NUM_THREADS=1 python benchmarks/classify.py                  # full settings (tens of minutes)
    python benchmarks/classify.py --report-only                      # rebuild classify.md from the CSVs
    python benchmarks/classify.py --quick --seeds 1 --parts 1 --set den_epochs=1 cls_epochs=1 --out /tmp/cls
"""
from __future__ import annotations
import argparse, json, sys, time
from contextlib import contextmanager
from pathlib import Path
import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import summarise, pm, machine_line, write_text_atomic, positive_int, setting_arg, paired_test, paired_words, ns_note

from diffaug.core import Seeds
from diffaug.corruptions import TENSOR_CORRUPTIONS, CORRUPTIONS
from diffaug.guidance import plot_gradient_maps
from diffaug.report import md_table, savefig, DIGITS_DEFAULTS, DIGITS_PARTS, digits_experiments

RESULTS = Path(__file__).resolve().parent / 'results'
PARTS = DIGITS_PARTS  # CSV names `classify_<part>.csv`, in the order of the parts (--parts 1..5)

QUICK = dict(DIGITS_DEFAULTS, den_epochs=10, cls_epochs=10, t_grid=(0, 100, 300, 500, 700), n_per_class=10, scales=(5.,),
             ddim_steps=25, kinds=None, suite='tensor', severities=(3, 5), semi_fracs=(0.05, 0.1, 0.2), semi_steps=100,
             semi_t=(0, 300), diffaug_full=False, bs=128)
FULL = dict(DIGITS_DEFAULTS, den_epochs=30, cls_epochs=30, t_grid=(0, 100, 200, 300, 400, 500, 600, 700, 800), n_per_class=20,
            scales=(2., 5., 10.), ddim_steps=50, kinds=None, suite='tensor', severities=(1, 2, 3, 4, 5), semi_fracs=(0.05, 0.1, 0.2),
            semi_steps=300, semi_t=(0, 300, 500), diffaug_full=True, bs=128)

def _log(progress, t0, msg):
    if progress: print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)

def _logged(progress, T0):
    "A `stage` for `digits_experiment`: one line when each step is done."
    @contextmanager
    def stage(key, what):
        yield
        _log(progress, T0, f"{what}: done")
    return stage

def _figures(run, cfg, out):
    "The figures drawn from one seed's run: guided samples at the middle scale, gradient maps of the noisy and DA classifiers."
    if run.samples:
        mid = float(cfg['scales'][len(cfg['scales']) // 2])
        plot_grids({c: xs for (c, s), (xs, _) in run.samples.items() if s in (0., mid)}, cfg['n_per_class'], out/'guided_samples.png')
        xte, yte = run.data[2], run.data[3]
        fig = plot_gradient_maps({'noisy': run.models['noisy'], 'DA': run.models['da']}, xte[:10], yte[:10], t=300,
                                 generator=Seeds(run.seed).seed('gradient maps'))
        savefig(fig, out/'gradient_maps.png', dpi=120)

# ---------------------------------------------------------------------------------------------------- the run

def run_benchmark(out=RESULTS, # folder for the CSV, markdown and figure files
                  quick:bool=False, # shorter training and fewer settings (minutes, not tens of minutes)
                  seeds=3, # number of seeds, or a list of seeds
                  progress:bool=True, # print progress lines
                  parts=(1, 2, 3, 4, 5), # which parts to run
                  **overrides, # settings that replace those of `QUICK` / `FULL` (e.g. `den_epochs=5`)
                 ) -> dict:
    "Run `diffaug.report.digits_experiments` over the seeds; write `classify_*.csv`, `classify.md`, the config and the figures into `out`."
    cfg = dict(QUICK if quick else FULL)
    bad = set(overrides) - set(cfg)
    if bad: raise ValueError(f"unknown settings {sorted(bad)}; known: {sorted(cfg)}")
    cfg.update(overrides)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    config = dict(cfg, quick=quick, seeds=seeds, parts=list(parts), threads=torch.get_num_threads())
    write_text_atomic(out/'classify_config.json', json.dumps(config, indent=1))
    T0, done = time.time(), []
    def after_seed(run, rows):  # files written after every seed, so a cut-short run keeps its results
        done.append(run.seed)
        if run.seed == seeds[0]: _figures(run, cfg, out)
        dfs = {k: df for k, df in rows.items() if len(df)}
        for k, df in dfs.items(): write_text_atomic(out/f'classify_{k}.csv', df.to_csv(index=False))
        _write_md(dfs, cfg, list(done), quick, time.time() - T0, out)
        _log(progress, T0, f"seed {run.seed} done; wrote {out/'classify.md'} ({len(done)} of {len(seeds)} seeds)")
    rows = digits_experiments(seeds, cfg, [PARTS[p - 1] for p in sorted(set(parts))], after_seed=after_seed, stage=_logged(progress, T0))
    return {k: df for k, df in rows.items() if len(df)}

# ---------------------------------------------------------------------------------------------------- the report

def build_report(dfs:dict, # `{part: DataFrame}` of the parts that ran (see `PARTS`)
                 cfg:dict, # settings of the run (`QUICK`/`FULL` with overrides, optionally `threads`)
                 seeds:list, # seeds in the frames
                 quick:bool, # quick or full settings
                 seconds:float|None, # wall time of the run (None: not known, e.g. when rebuilt from the CSVs)
                 out:Path, # folder of the run (figures that exist there are linked)
                ) -> str:
    "The markdown of classify.md."
    took = '' if seconds is None else f" Total time {seconds / 60:.1f} min."
    L = [f"# Digits classification benchmark ({'quick' if quick else 'full'})", '',
         f"scikit-learn digits (1797 8x8 images), stratified 70/30 split per seed; seeds {seeds}; mean ± std over seeds "
         f"(accuracies in %). Denoiser: eps-UNet, {cfg['den_epochs']} epochs; classifiers: SmallCNN, {cfg['cls_epochs']} "
         f"epochs. {machine_line(cfg.get('threads'))}{took}", '']
    if 'noise' in dfs: L += _noise_section(dfs['noise'])
    if 'guidance' in dfs: L += _guidance_section(dfs['guidance'], cfg, out)
    if 'robust' in dfs: L += _robust_section(dfs['robust'], cfg)
    if 'semisup' in dfs: L += _semisup_section(dfs['semisup'])
    if 'cost' in dfs: L += _cost_section(dfs['cost'])
    return '\n'.join(L)

def _noise_section(df):
    s = summarise(df, ['t', 'classifier'], 'acc'); s['acc'] = pm(s)
    w = s.pivot(index='t', columns='classifier', values='acc').reset_index()
    L = ['## 1. Accuracy on diffused test digits (same x_t for every classifier)', '', md_table(w), '']
    d = df.pivot_table(index=['seed', 't'], columns='classifier', values='acc').reset_index()
    rows = [{'t': t, 'DA - noisy (points)': paired_words(paired_test(g['DA'], g['noisy']), mark=True)} for t, g in d.groupby('t')]
    L += ['Paired difference DA - noisy:', '', md_table(pd.DataFrame(rows)), '', ns_note(d.seed.nunique()), '']
    return L + ['![accuracy vs t](acc_vs_t.png)', '']

def _guidance_section(g, cfg, out):
    by = ['classifier', 'scale']
    a, f, t = summarise(g, by, 'consistency'), summarise(g, by, 'fid'), summarise(g, by, 'seconds_per_sample')
    tab = pd.DataFrame({'classifier': a['classifier'], 'scale': a['scale'], 'class consistency %': pm(a),
                        'feature FID': ['-' if np.isnan(m) else v for m, v in zip(f['mean'], pm(f, scale=1., fmt='.2f'))],
                        's/sample': ['-' if np.isnan(m) else f"{m:.4f}" for m in t['mean']]})
    tab['scale'] = ['-' if np.isnan(v) else f"{v:g}" for v in tab['scale']]
    figs = ['![guided samples](guided_samples.png)', '![gradient maps](gradient_maps.png)'] if (Path(out)/'guided_samples.png').exists() else []
    pr = []
    for sc, gs in g[g.classifier.isin(['DA', 'noisy'])].groupby('scale'):
        a_, b_ = gs[gs.classifier == 'DA'].set_index('seed'), gs[gs.classifier == 'noisy'].set_index('seed')
        common = a_.index.intersection(b_.index)
        pr.append({'scale': f"{sc:g}", 'DA - noisy, class consistency (points)': paired_words(paired_test(a_.loc[common, 'consistency'], b_.loc[common, 'consistency']), mark=True),
                   'DA - noisy, feature FID': paired_words(paired_test(a_.loc[common, 'fid'], b_.loc[common, 'fid']), scale=1., fmt='+.2f', mark=True)})
    paired = ['Paired differences DA - noisy (lower FID is better):', '', md_table(pd.DataFrame(pr)), '', ns_note(g.seed.nunique()), ''] if pr else []
    return ['## 2. Classifier-guided DDIM samples', '',
            f"{cfg['n_per_class']} samples per class, DDIM-{cfg['ddim_steps']}; the judge is a clean classifier trained with "
            "another seed; FID in its penultimate features against the test digits.", '', md_table(tab), ''] + paired + figs + ['']

def _robust_section(r, cfg):
    s = summarise(r[r.corruption == 'clean'], ['method'], 'acc')
    cor = r[r.corruption != 'clean']
    m = cor.groupby(['seed', 'method', 'severity'], sort=False).acc.mean().reset_index()
    ms = summarise(m, ['severity', 'method'], 'acc'); ms['acc'] = pm(ms)
    wide = ms.pivot(index='method', columns='severity', values='acc').reset_index()
    wide.columns = ['method'] + [f'sev {c}' for c in wide.columns[1:]]
    mall = cor.groupby(['seed', 'method'], sort=False).acc.mean().reset_index()
    sa = summarise(mall, ['method'], 'acc')
    wide = wide.merge(pd.DataFrame({'method': sa['method'], 'mean corrupted': pm(sa)}), on='method')
    wide = pd.DataFrame({'method': s['method'], 'clean': pm(s)}).merge(wide, on='method')
    L = ['## 3. DiffAug training and the DiffAug Ensemble (DE) on corrupted digits', '',
         (f"On the first {cfg['n_de']} test digits of each split. " if cfg.get('n_de') else '') +
         f"Accuracy averaged over the {cfg.get('suite', 'tensor')}-suite corruptions "
         + ', '.join(cfg['kinds'] or (CORRUPTIONS if cfg.get('suite') == 'standard' else TENSOR_CORRUPTIONS))
         + (' (applied at 32x32: each digit upsampled 4x with nearest neighbours, corrupted as uint8, averaged back to 8x8)'
            if cfg.get('suite') == 'standard' else '') + ':', '', md_table(wide), '']
    pk = summarise(cor.groupby(['seed', 'corruption', 'method'], sort=False).acc.mean().reset_index(), ['corruption', 'method'], 'acc')
    pk['acc'] = pm(pk)
    wk = pk.pivot(index='corruption', columns='method', values='acc').reset_index()
    L += ['Per corruption (mean over severities ' + ', '.join(map(str, cfg['severities'])) + '):', '', md_table(wk), '']
    base = mall[mall.method == 'plain'].set_index('seed').acc
    sd = pd.DataFrame([{'method': m_, 'vs plain (points)': paired_words(paired_test(g_.set_index('seed').acc.loc[base.index.intersection(g_.seed)],
                                                                               base.loc[base.index.intersection(g_.seed)]), mark=True)}
                       for m_, g_ in mall[mall.method != 'plain'].groupby('method', sort=False)])
    mm = mall.groupby('method', sort=False).acc.mean() * 100
    cm = r[r.corruption == 'clean'].groupby('method', sort=False).acc.mean() * 100
    best = mm.idxmax()
    words = (f"**Which row wins:** {best}, {mm[best]:.1f}% mean corrupted accuracy against {mm['plain']:.1f}% for plain training "
             f"(clean {cm[best]:.1f}% vs {cm['plain']:.1f}%). "
             + (f"The ensemble alone, on the plain classifier, {'lowers' if mm.get('plain + DE', mm['plain']) < mm['plain'] else 'raises'} "
                f"it to {mm['plain + DE']:.1f}%." if 'plain + DE' in mm else ''))
    return L + ['Paired difference to plain, mean corrupted accuracy:', '', md_table(sd[['method', 'vs plain (points)']]), '',
                ns_note(mall.seed.nunique()), '', words, '']

def _semisup_section(df):
    s = summarise(df, ['labels', 'classifier', 'tc', 't'], 'acc'); s['acc'] = pm(s)
    s['setting'] = s.classifier + s.tc.map({True: ' + L_tc', False: ''})
    w = s.pivot_table(index=['labels', 't'], columns='setting', values='acc', aggfunc='first').reset_index()
    w = w.iloc[np.lexsort((w['t'].to_numpy(), w['labels'].map(lambda v: float(str(v).rstrip('%'))).to_numpy()))]
    pr = []
    for (lab, t, cl), g in df.groupby(['labels', 't', 'classifier'], sort=False):
        a_, b_ = g[g.tc].set_index('seed').acc, g[~g.tc].set_index('seed').acc
        common = a_.index.intersection(b_.index)
        if len(common): pr.append({'labels': lab, 't': t, 'classifier': cl, 'L_tc - no L_tc (points)': paired_words(paired_test(a_.loc[common], b_.loc[common]), mark=True)})
    paired = ['Paired difference of the temporal-consistency loss:', '', md_table(pd.DataFrame(pr)), '', ns_note(df.seed.nunique()), ''] if pr else []
    return ['## 4. Semi-supervised: accuracy on diffused test digits', '', md_table(w), ''] + paired

def _cost_section(c):
    s = summarise(c, ['what'], 'seconds')
    means = s.set_index('what')['mean']
    plain, pred = means.get('train epoch: plain', np.nan), means.get('predict: plain, per image', np.nan)
    rel = [m / plain if w.startswith('train epoch: ') and '% labels' not in w else
           (m / pred if w.startswith('predict') else np.nan) for w, m in zip(s['what'], s['mean'])]
    tab = pd.DataFrame({'what': s['what'], 'seconds': [f"{m:.4g}" for m in s['mean']],
                        'relative to plain': ['' if np.isnan(r) else f"{r:.1f}x" for r in rel]})
    return ['## 5. Cost (CPU)', '', md_table(tab), '']

def _write_md(dfs, cfg, seeds, quick, seconds, out):
    "Draw acc_vs_t.png (with part 1) and write classify.md; returns the markdown."
    if 'noise' in dfs: plot_noise(dfs['noise'], out/'acc_vs_t.png')
    md = build_report(dfs, cfg, seeds, quick, seconds, out)
    write_text_atomic(out/'classify.md', md)
    return md

def write_report(out=RESULTS, # folder holding the `classify_*.csv` files of a run
                 quick:bool|None=None, # settings of the run (default: read from `classify_config.json`)
                ) -> str:
    "Rebuild `classify.md` and `acc_vs_t.png` from the CSV files of a (possibly cut-short) run."
    out = Path(out)
    dfs = {k: pd.read_csv(out/f'classify_{k}.csv') for k in PARTS if (out/f'classify_{k}.csv').exists()}
    if not dfs: raise FileNotFoundError(f"no classify_*.csv files in {out}; run `python benchmarks/classify.py --out {out}` first")
    cf = out/'classify_config.json'
    saved = json.loads(cf.read_text()) if cf.exists() else {}
    quick = saved.get('quick', False) if quick is None else quick
    cfg = dict(QUICK if quick else FULL); cfg.update({k: v for k, v in saved.items() if k in cfg or k == 'threads'})
    seeds = sorted(set().union(*[set(df.seed) for df in dfs.values()]))
    return _write_md(dfs, cfg, seeds, quick, None, out)

# ---------------------------------------------------------------------------------------------------- figures

def plot_grids(grids, n, path):
    "Guided samples of each classifier: rows are classes, columns samples (at most 8)."
    import matplotlib.pyplot as plt
    k = min(n, 8)
    fig, axs = plt.subplots(1, len(grids), figsize=(2.6 * len(grids), 3.4), squeeze=False)
    for ax, (name, xs) in zip(axs[0], grids.items()):
        im = xs.reshape(10, n, *xs.shape[1:])[:, :k, 0]
        ax.imshow(torch.cat([torch.cat(list(r), 1) for r in im], 0), cmap='gray_r'); ax.set_title(name, fontsize=9); ax.axis('off')
    fig.tight_layout(); savefig(fig, path, dpi=120)

def plot_noise(df, path):
    "Accuracy against the diffusion step t (mean ± std over seeds) of each classifier of part 1."
    import matplotlib.pyplot as plt
    s = summarise(df, ['t', 'classifier'], 'acc')
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, g in s.groupby('classifier', sort=False):
        ax.errorbar(g['t'], 100 * g['mean'], yerr=100 * g['std'].fillna(0), marker='o', capsize=3, label=name)
    ax.set(xlabel='diffusion step t', ylabel='test accuracy (%)', title='digits: accuracy on the same x_t'); ax.legend(fontsize=8)
    fig.tight_layout(); savefig(fig, path, dpi=120)

# ---------------------------------------------------------------------------------------------------- command line


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help='shorter training and fewer settings')
    p.add_argument('--seeds', type=positive_int, default=3, help='number of seeds (default 3)')
    p.add_argument('--first-seed', type=int, default=0, help='seeds run are first-seed .. first-seed + seeds - 1 (to add seeds to a '
                   'run: give another --out, then merge the CSVs and --report-only)')
    p.add_argument('--out', default=str(RESULTS), help='output folder (default benchmarks/results)')
    p.add_argument('--parts', type=int, nargs='+', default=[1, 2, 3, 4, 5], choices=range(1, 6), metavar='{1..5}',
                   help='parts to run (1-5)')
    p.add_argument('--threads', type=positive_int, default=1, help='torch CPU threads (default 1)')
    p.add_argument('--no-progress', action='store_true', help='do not print progress lines')
    p.add_argument('--set', nargs='+', type=setting_arg, default=[], metavar='KEY=VALUE',
                   help='override settings of QUICK/FULL, values as JSON (e.g. den_epochs=2 t_grid=[0,300])')
    p.add_argument('--report-only', action='store_true',
                   help='train nothing: rebuild classify.md and acc_vs_t.png in --out from its classify_*.csv files')
    a = p.parse_args(argv)
    if a.report_only:
        write_report(a.out)
        print(f"wrote {Path(a.out)/'classify.md'}")
        return
    torch.set_num_threads(a.threads)
    run_benchmark(a.out, quick=a.quick, seeds=list(range(a.first_seed, a.first_seed + a.seeds)), progress=not a.no_progress, parts=tuple(a.parts), **dict(a.set))

if __name__ == '__main__': main()
