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
Results go to benchmarks/results/contrastive-sweep-<tag>.csv and .md.
"""
import argparse, copy, os, platform, sys, time
from pathlib import Path
import numpy as np, pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from contrastive import load, schedule, SelfViews, md_table, METRICS  # the benchmark's data and helpers
from diffaug.contrastive import DiffAug, BankViews, fit_encoder, fit_generator
from diffaug.augment import ViewBank
from diffaug.encoder import make_encoder_head
from diffaug.losses import SoftContrastiveLoss
from diffaug.core import make_generator
from diffaug.metrics import evaluate_embedding

def score(model, xs, labels, seed, metrics):
    z = model.embed(xs).cpu().numpy()
    return {lab: evaluate_embedding(z, y, random_state=seed, metrics=metrics) for lab, y in labels.items()}

def sweep_seed(x, labels, seed, args, check=False):
    "Rows `(arm, lam, round, label, metrics..., seconds)` for one seed."
    sched = schedule(len(x), args.quick)
    kw = dict(encoder_kw={'width': args.image_width}) if x.ndim == 4 else {}
    base = DiffAug(epochs=sched, random_state=seed, device='cpu', progress=False, **kw)
    xs, views = base._prep_fit(x)
    c, (e1, em, e2) = base.config, base.epochs_
    enc_kw = dict(bs=base.bs_, lr=c['lr'], wd=c['wd'])
    loss = SoftContrastiveLoss()
    torch.manual_seed(seed)  # as DiffAug.fit: the same initial weights
    model = make_encoder_head(base.kind, base.in_shape, n_latent=c['n_latent'], **c['encoder_kw'])
    t0 = time.time(); fit_encoder(model, xs, views, loss, e1, random_state=seed, **enc_kw)
    rows = [dict(arm='E1', lam=0.0, round=-1, label=lab, seconds=time.time() - t0, **r)
            for lab, r in score(model, xs, labels, seed, args.metrics).items()]
    e1_state = copy.deepcopy(model.state_dict())
    t0 = time.time()
    m0 = fit_generator(model, xs, em, bs=c['gen_bs'], lr=c['gen_lr'], random_state=seed + 1)  # round 0, shared
    t_m0 = time.time() - t0
    arms = [('diffaug', l) for l in args.lams] + [('self', l) for l in args.lams] + [('restart', 0.0)]
    for arm, lam in arms:
        model.load_state_dict(e1_state)
        gen, den, spent = make_generator(seed + 7), None, 0.0
        for r in range(args.rounds):
            t0 = time.time()
            if arm == 'diffaug':
                if r == 0: (den, codes), spent = m0, t_m0
                else: den, codes = fit_generator(model, xs, em, net=den.net, bs=c['gen_bs'], lr=c['gen_lr'],
                                                 random_state=seed + 100 * r + 1)
                bank = ViewBank(len(xs), sampler=c['sampler'], steps=c['sampler_steps']).set_shape(base.in_shape)
                bank.refresh(den, codes, generator=gen)
                vw = BankViews(views, bank, lam)
            else:
                vw = SelfViews(views, lam) if arm == 'self' else views
            fit_encoder(model, xs, vw, loss, e2, random_state=seed + r + 1, **enc_kw)
            spent += time.time() - t0
            if check and arm == 'diffaug' and r == 0 and lam == args.lams[0]:
                ref = DiffAug(epochs=sched, lam=lam, random_state=seed, device='cpu', progress=False, **kw).fit(x)
                diff = float((ref.model.embed(xs) - model.embed(xs)).abs().max())
                assert diff == 0, f"the sweep's diffaug arm differs from DiffAug.fit by {diff}"
                print(f"[check] sweep arm == DiffAug(lam={lam}).fit after one round (max |dz| = 0)", flush=True)
            rows += [dict(arm=arm, lam=lam, round=r, label=lab, seconds=spent, **s)
                     for lab, s in score(model, xs, labels, seed, args.metrics).items()]
        print(f"[seed {seed}] {arm} lam={lam}: {spent:.1f}s", flush=True)
    return rows

def paired_frame(df, metrics):
    "Long table of paired differences (points) of diffaug against `restart` and `self(lam)` per seed."
    key = ['dataset', 'label', 'round', 'seed']
    rest = df[df.arm == 'restart'].set_index(key)
    out = []
    for lam, s in df[df.arm == 'diffaug'].groupby('lam'):
        s = s.set_index(key)
        ctl = df[(df.arm == 'self') & (df.lam == lam)].set_index(key)
        for name, other in (('restart', rest), ('self', ctl)):
            d = 100 * (s[metrics] - other.loc[s.index, metrics])
            out.append(d.reset_index().assign(lam=lam, control=name))
    return pd.concat(out, ignore_index=True)

def paired_table(df, metrics):
    "Markdown table of `paired_frame`: mean ± std over seeds and seeds where diffaug is higher, per lambda and round."
    pf = paired_frame(df, metrics)
    lines = ['| data | label | lam | round | ' + ' | '.join(f'{m} vs restart' for m in metrics) + ' | '
             + ' | '.join(f'{m} vs self' for m in metrics) + ' | seeds |', '|' + '---|' * (2 * len(metrics) + 5)]
    for (ds, lab, lam, r), s in pf.groupby(['dataset', 'label', 'lam', 'round'], sort=True):
        cells = [f"{d.mean():+.1f} ± {d.std(ddof=0):.1f} ({(d > 0).sum()}/{len(d)})"
                 for ctl in ('restart', 'self') for d in (s.loc[s.control == ctl, m] for m in metrics)]
        lines.append(f"| {ds} | {lab} | {lam:g} | {r + 1} | " + ' | '.join(cells) + f" | {(s.control == 'restart').sum()} |")
    return '\n'.join(lines)

def plot_sweep(df, metrics, path):
    "Paired gain of diffaug over each control (mean and std over seeds) against lambda, or against rounds."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    pf = paired_frame(df, metrics)
    by_round = pf['round'].nunique() > 1
    fig, axs = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axs[0], metrics):
        groups = ['dataset', 'label', 'control', 'lam'] if by_round else ['dataset', 'label', 'control']
        keys = list(pf.groupby(groups).groups)
        for k, g in pf.groupby(groups):
            x = 'round' if by_round else 'lam'
            st = g.groupby(x)[m].agg(['mean', 'std'])
            xs = st.index + (1 if by_round else 0)
            lab = f"{k[1]} vs {k[2]}" + (f", lam {k[3]:g}" if by_round else '')
            line, = ax.plot(xs, st['mean'], 'o-' if k[2] == 'restart' else 's--', label=lab, ms=4)
            if len(keys) <= 4:  # bands only where they stay readable
                ax.fill_between(xs, st['mean'] - st['std'], st['mean'] + st['std'], color=line.get_color(), alpha=0.1)
        ax.axhline(0, color='k', lw=0.8)
        if by_round: ax.set_xticks(sorted(pf['round'].unique() + 1))
        ax.set(title=m, xlabel='M/E2 rounds' if by_round else 'lambda', ylabel='diffaug - control (points)')
    axs[0][-1].legend(fontsize=7, loc='best')
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--datasets', nargs='+', default=['pbmc'], help='pbmc digits digits_img wine breast_cancer')
    p.add_argument('--lams', type=float, nargs='+', default=[0.1, 0.184, 0.3, 0.5, 0.8], help='lambdas to sweep')
    p.add_argument('--rounds', type=int, default=1, help='M -> E2 rounds (every round is scored)')
    p.add_argument('--seeds', type=int, default=5, help='number of seeds')
    p.add_argument('--seed0', type=int, default=0, help='first seed (split a sweep over processes)')
    p.add_argument('--quick', action='store_true', help='short schedule (smoke test)')
    p.add_argument('--metrics', nargs='+', default=['knn', 'linear', 'kmeans', 'ari'], help='metrics to compute')
    p.add_argument('--image-width', type=int, default=16, help='ResNet-18 base width for image data')
    p.add_argument('--no-check', action='store_true', help='skip the check against DiffAug.fit')
    p.add_argument('--tag', default='sweep', help='name of the result files')
    p.add_argument('--out', default=str(Path(__file__).parent / 'results'), help='folder for the results')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--report', nargs='+', default=None, metavar='CSV',
                   help='only write the report of these result files together (e.g. seeds run in two processes)')
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
          paired_table(df, metrics), '', '## Scores (%, mean and std over seeds)', '', md_table(mean), '',
          '## Seconds per arm up to each round (mean over seeds; diffaug includes M and the bank)', '', md_table(secs.to_frame()), '']
    plot_sweep(df, metrics, out / f'contrastive-sweep-{args.tag}.png')
    md += [f'![paired gains](contrastive-sweep-{args.tag}.png)', '']
    (out / f'contrastive-sweep-{args.tag}.md').write_text('\n'.join(md))
    print('\n'.join(md))

if __name__ == '__main__': main()
