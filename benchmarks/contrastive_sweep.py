"""Sweep DiffAug's lambda and its number of M -> E2 rounds, with two controls that say where a gain comes from.

For each seed one E1 phase is trained (kNN-mix views, exactly as `DiffAug.fit` does it) and shared by every arm:
  diffaug(lam)   (M -> E2) x rounds: E2 views replaced with probability lam by generated views of the same item
  self(lam)      the same E2 phases (fresh optimiser each), but the replacement is the item itself: no generator
  restart        the same E2 phases with kNN-mix views only (lam = 0): the baseline with diffaug's phase structure
Every arm is scored after every round, so one run gives the curves over rounds. The round-0 generator is trained
once per seed and shared by all lambdas (it depends only on E1); later rounds continue it per lambda, as `fit` does.
A check at the start asserts that diffaug(lam) after one round equals `DiffAug(lam=lam).fit` for the first lambda.

    python benchmarks/contrastive_sweep.py --datasets pbmc --lams 0.1 0.184 0.3 0.5 0.8 --rounds 1 --tag lam
    python benchmarks/contrastive_sweep.py --datasets pbmc --lams 0.184 0.5 --rounds 3 --seeds 3 --tag rounds
    python benchmarks/contrastive_sweep.py --report results/a.csv results/b.csv --tag lam   # merge split runs
    python benchmarks/contrastive_sweep.py --report results/contrastive-sweep-lam-{a,b}.csv --tag lam --no-figure   # .md only
Results go to benchmarks/results/contrastive-sweep-<tag>.csv and .md.
"""
import argparse, copy, os, platform, sys, time
from pathlib import Path
import numpy as np, pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from contrastive import load, schedule, SelfViews, METRICS  # the benchmark's data and helpers
from _report import write_text_atomic, positive_int, paired_test, paired_words, ns_note
from diffaug.report import md_table, savefig
from diffaug.contrastive import DiffAug
from diffaug.learner import run_phases
from diffaug.metrics import evaluate_embedding

def score(model, xs, labels, seed, metrics):
    z = model.embed(xs).cpu().numpy()
    return {lab: evaluate_embedding(z, y, random_state=seed, metrics=metrics) for lab, y in labels.items()}

def sweep_seed(x, labels, seed, args, check=False):
    "Rows `(arm, lam, round, label, metrics..., seconds)` for one seed."
    sched = schedule(len(x), args.quick)
    kw = dict(encoder=dict(net={'width': args.image_width})) if x.ndim == 4 else {}
    def arm_model(lam):
        "A DiffAug of this seed, set up (data, model, Learner) and planned; the plan's phases are run by the caller."
        m = DiffAug(epochs=sched, rounds=args.rounds, random_state=seed, device='cpu', progress=False, **kw, views=dict(lam=lam))
        xs, views, learn = m.setup(x)
        return m, xs, views, learn
    base, xs, views, learn = arm_model(args.lams[0])
    plan = base.plan(xs, views, learn)
    t0 = time.time(); run_phases(plan[:1], None)  # E1, shared by every arm
    rows = [dict(arm='E1', lam=0.0, round=-1, label=lab, seconds=time.time() - t0, **r)
            for lab, r in score(base.model, xs, labels, seed, args.metrics).items()]
    e1_state = copy.deepcopy(base.model.state_dict())
    t0 = time.time(); run_phases(plan[1:2], None)  # the round-0 generator: it depends on E1 only, shared by all lambdas
    m0, t_m0 = (base.generator, base.codes_), time.time() - t0
    arms = [('diffaug', l) for l in args.lams] + [('self', l) for l in args.lams] + [('restart', 0.0)]
    for arm, lam in arms:
        m, xs, views, learn = arm_model(lam)
        m.model.load_state_dict(e1_state)
        e2_views = None if arm == 'diffaug' else (SelfViews(views, lam) if arm == 'self' else views)
        phases = [p for p in m.plan(xs, views, learn, e2_views=e2_views)[1:] if arm == 'diffaug' or p.name == 'E2']
        spent = 0.0
        for p in phases:
            if p.key == 'M.0': (m.generator, m.codes_), spent = m0, spent + t_m0; continue
            t0 = time.time(); run_phases([p], None); spent += time.time() - t0
            if p.name != 'E2': continue
            if check and arm == 'diffaug' and p.round == 0 and lam == args.lams[0]:
                ref = DiffAug(epochs=sched, random_state=seed, device='cpu', progress=False, **kw, views=dict(lam=lam)).fit(x)
                diff = float((ref.model.embed(xs) - m.model.embed(xs)).abs().max())
                assert diff == 0, f"the sweep's diffaug arm differs from DiffAug.fit by {diff}"
                print(f"[check] sweep arm == DiffAug(lam={lam}).fit after one round (max |dz| = 0)", flush=True)
            rows += [dict(arm=arm, lam=lam, round=p.round, label=lab, seconds=spent, **s)
                     for lab, s in score(m.model, xs, labels, seed, args.metrics).items()]
        print(f"[seed {seed}] {arm} lam={lam}: {spent:.1f}s", flush=True)
    return rows

def paired_arms(df, metrics):
    "`(lam, control, diffaug scores, control scores)` of every lambda and control, rows aligned on data set, label, round and seed."
    key = ['dataset', 'label', 'round', 'seed']
    rest = df[df.arm == 'restart'].set_index(key)
    for lam, s in df[df.arm == 'diffaug'].groupby('lam'):
        s = s.set_index(key)
        ctl = df[(df.arm == 'self') & (df.lam == lam)].set_index(key)
        for name, other in (('restart', rest), ('self', ctl)):
            yield lam, name, s[metrics], other.loc[s.index, metrics]

def paired_frame(df, metrics):
    "Long table of paired differences (points) of diffaug against `restart` and `self(lam)` per seed."
    return pd.concat([(100 * (a - b)).reset_index().assign(lam=lam, control=name) for lam, name, a, b in paired_arms(df, metrics)],
                     ignore_index=True)

def paired_table(df, metrics):
    """Markdown table of the paired differences diffaug - control per lambda and round (`_report.paired_test` on the
    seeds both arms have; points), and its footnote."""
    pf = pd.concat([pd.concat([a, b.add_suffix(' ctl')], axis=1).reset_index().assign(lam=lam, control=name)
                    for lam, name, a, b in paired_arms(df, metrics)], ignore_index=True)
    lines = ['| data | label | lam | round | ' + ' | '.join(f'{m} vs restart' for m in metrics) + ' | '
             + ' | '.join(f'{m} vs self' for m in metrics) + ' | seeds |', '|' + '---|' * (2 * len(metrics) + 5)]
    ns = []
    for (ds, lab, lam, r), s in pf.groupby(['dataset', 'label', 'lam', 'round'], sort=True):
        cells = [paired_words(paired_test(c[m], c[f'{m} ctl']), scale=100, mark=True)
                 for c in (s[s.control == ctl] for ctl in ('restart', 'self')) for m in metrics]
        ns.append(int((s.control == 'restart').sum()))
        lines.append(f"| {ds} | {lab} | {lam:g} | {r + 1} | " + ' | '.join(cells) + f" | {ns[-1]} |")
    if ns: lines += ['', ns_note(max(ns))]
    return '\n'.join(lines)

def plot_sweep(df, metrics, path):
    "Paired gain of diffaug over each control (mean and std over seeds) against lambda, or against rounds."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    pf = paired_frame(df, metrics)
    by_round = pf['round'].nunique() > 1
    ncol = min(2, len(metrics)); nrow = -(-len(metrics) // ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(3.9 * ncol, 2.9 * nrow), squeeze=False)  # two panels a row: readable at page width
    for ax in axs.flat[len(metrics):]: ax.set_visible(False)
    for ax, m in zip(axs.flat, metrics):
        groups = ['dataset', 'label', 'control', 'lam'] if by_round else ['dataset', 'label', 'control']
        keys = list(pf.groupby(groups).groups)
        for k, g in pf.groupby(groups):
            x = 'round' if by_round else 'lam'
            st = g.groupby(x)[m].agg(['mean', 'std'])
            xs = st.index + (1 if by_round else 0)
            lab = f"{k[1]} vs {k[2]}" + (f", lambda {k[3]:g}" if by_round else '')
            line, = ax.plot(xs, st['mean'], 'o-' if k[2] == 'restart' else 's--', label=lab, ms=4)
            if len(keys) <= 4:  # bands only where they stay readable
                ax.fill_between(xs, st['mean'] - st['std'], st['mean'] + st['std'], color=line.get_color(), alpha=0.1)
        ax.axhline(0, color='k', lw=0.8)
        if by_round: ax.set_xticks(sorted(pf['round'].unique() + 1))
        ax.set(title=m, xlabel='M/E2 rounds' if by_round else 'lambda', ylabel='DiffAug - control (points)')
    h, l = axs.flat[0].get_legend_handles_labels()
    fig.tight_layout()
    fig.legend(h, l, loc='upper center', bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=9, frameon=False,
               title='label set vs control (mean over seeds' + ('' if len(keys) > 4 else ', band: ± std') + ')', title_fontsize=9)
    savefig(fig, path, dpi=110)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--datasets', nargs='+', default=['pbmc'], help='pbmc digits digits_img wine breast_cancer')
    p.add_argument('--lams', type=float, nargs='+', default=[0.1, 0.184, 0.3, 0.5, 0.8], help='lambdas to sweep')
    p.add_argument('--rounds', type=positive_int, default=1, help='M -> E2 rounds (every round is scored)')
    p.add_argument('--seeds', type=positive_int, default=5, help='number of seeds')
    p.add_argument('--seed0', type=int, default=0, help='first seed (split a sweep over processes)')
    p.add_argument('--quick', action='store_true', help='short schedule (smoke test)')
    p.add_argument('--metrics', nargs='+', default=['knn', 'linear', 'kmeans', 'ari'], help='metrics to compute')
    p.add_argument('--image-width', type=positive_int, default=16, help='ResNet-18 base width for image data')
    p.add_argument('--no-check', action='store_true', help='skip the check against DiffAug.fit')
    p.add_argument('--tag', default='sweep', help='name of the result files')
    p.add_argument('--out', default=str(Path(__file__).parent / 'results'), help='folder for the results')
    p.add_argument('--threads', type=positive_int, default=1, help='torch CPU threads')
    p.add_argument('--report', nargs='+', default=None, metavar='CSV',
                   help='only write the report of these result files together (e.g. seeds run in two processes)')
    p.add_argument('--no-figure', action='store_true', help='write the .md only, leave the .png as it is')
    args = p.parse_args()
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    if args.report:
        df = pd.concat([pd.read_csv(f) for f in args.report], ignore_index=True)
        args.lams = sorted(df[df.arm == 'diffaug'].lam.unique().tolist()); args.rounds = int(df['round'].max()) + 1
        return write_report(df, args, out, float('nan'))
    torch.set_num_threads(args.threads)
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    t_start, rows = time.time(), []
    for d in args.datasets:
        x, labels = load(d)
        for i, seed in enumerate(seeds):
            rows += [dict(dataset=d, seed=seed, **r) for r in sweep_seed(x, labels, seed, args, check=i == 0 and not args.no_check)]
            pd.DataFrame(rows).to_csv(out / f'contrastive-sweep-{args.tag}.csv', index=False)
    df = pd.DataFrame(rows)
    write_report(df, args, out, time.time() - t_start)

def write_report(df, args, out, seconds):
    metrics = [m for m in METRICS if m in df.columns]
    mean = (df.groupby(['dataset', 'label', 'arm', 'lam', 'round'])[metrics].agg(['mean', 'std']) * 100).round(1)
    mean.columns = [f'{m} {s}' for m, s in mean.columns]
    secs = df.drop_duplicates(['dataset', 'arm', 'lam', 'round', 'seed']).groupby(['dataset', 'arm', 'lam', 'round'])['seconds'].mean().round(1)
    dev = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), torch threads {args.threads}"
    seeds = sorted(df.seed.unique().tolist())
    md = [f"# DiffAug lambda / rounds sweep ({args.tag})", '',
          f"Machine: {dev}; torch {torch.__version__}. Seeds: {seeds}. Lambdas {args.lams}, rounds {args.rounds}. "
          f"Schedule: {'short (--quick)' if args.quick else 'library default'}. " + (f"Total wall time {seconds:.0f}s." if seconds == seconds else '') , '',
          "Arms share one E1 per seed. `restart`: kNN-mix views through the same E2 phases (lam = 0); `self(lam)`: "
          "views replaced by the item itself with probability lam; `diffaug(lam)`: replaced by generated views.", '',
          '## Paired differences of diffaug (points; mean ± std over seeds; seeds where diffaug is higher)', '',
          paired_table(df, metrics), '', '## Scores (%, mean and std over seeds)', '', md_table(mean, floatfmt='.4g', index=True), '',
          '## Seconds per arm up to each round (mean over seeds; diffaug includes M and the bank)', '', md_table(secs.to_frame(), floatfmt='.4g', index=True), '']
    if not args.no_figure: plot_sweep(df, metrics, out / f'contrastive-sweep-{args.tag}.png')
    md += [f'![paired gains](contrastive-sweep-{args.tag}.png)', '']
    write_text_atomic(out / f'contrastive-sweep-{args.tag}.md', '\n'.join(md))
    print('\n'.join(md))

if __name__ == '__main__': main()
