"""Benchmark DiffAug contrastive learning (Zang et al.) against its baselines, and measure what it costs.

Data (shipped, no download): pbmc68k_reduced (700 cells x 765 genes; labels bulk_labels and louvain, used only for
evaluation), scikit-learn digits as 64-d vectors, wine and breast_cancer.
Methods, all with the reference MLP encoder (50-d code, 2-d head) and the same seed per row:
  raw            z-scored input features
  pca            PCA-50 of the z-scored features (fewer components when there are fewer features)
  ntxent_knnmix  NT-Xent (SimCLR) loss, kNN-mix views, E1 only
  soft_knnmix    soft contrastive loss, kNN-mix views, E1 only  (the baseline DiffAug must beat)
  diffaug        soft contrastive loss, E1 -> (M -> E2) x rounds, generated views with probability lam
  self_control   diffaug's schedule (same E1, same E2 phases and restarts) with each generated view replaced by the
                 item itself: what diffaug gains over it is owed to the generated views, not to weaker augmentation
The kNN-mix runs get as many encoder epochs as E1 plus all E2 phases of the DiffAug run: equal encoder steps.
Metrics (diffaug.metrics.evaluate_embedding): 5-NN accuracy, linear probe, RBF-SVC 5-fold CV, K-means accuracy
(Hungarian), ARI, NMI. Mean +- std over seeds, paired differences diffaug - soft_knnmix per seed, wall time per phase,
and the cost of one view-bank refresh by DDPM-1000 vs DDIM-10/50 (with how often a view is nearer its own item).

    python benchmarks/contrastive.py --quick                  # smoke test, a few minutes
    python benchmarks/contrastive.py                          # full: 5 seeds, all data sets
    python benchmarks/contrastive.py --datasets pbmc --rounds 2 --lam 0.5 --tag r2lam05
    python benchmarks/contrastive.py --report-only --tag full   # rewrite contrastive-full.md from its CSVs, no training
Results go to benchmarks/results/contrastive-<tag>.csv (one row per data set, label, method, seed), -bank.csv (the
view-bank refresh of seed 0's DiffAug) and .md (tables).
"""
import argparse, os, platform, sys, time
from pathlib import Path
import numpy as np, pandas as pd
import torch

from diffaug.contrastive import DiffAug, auto_epochs, DEFAULT_BS
from diffaug.learner import run_phases
from diffaug.augment import ViewBank, DEFAULT_LAM
from diffaug.core import append_dims, make_generator
from diffaug.datasets import pbmc68k_reduced, digits_vectors, digits_images, load_table
from diffaug.metrics import evaluate_embedding
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_text_atomic, positive_int, paired_test, paired_words, ns_note
from diffaug.report import md_table

METRICS = ['knn', 'linear', 'svc', 'kmeans', 'ari', 'nmi']

def load(name):
    "`(x float32 array, {label name: int codes})` of a data set."
    if name == 'pbmc':
        a = pbmc68k_reduced()
        return np.asarray(a.X, dtype=np.float32), {k: a.obs[k].cat.codes.to_numpy() for k in ('bulk_labels', 'louvain')}
    if name == 'digits':
        x, y = digits_vectors(); return x.numpy(), {'digit': y.numpy()}
    if name == 'digits_img':  # the same digits as (N, 1, 8, 8) images in [-1, 1]: ResNet-18 trunk, conditional UNet
        x, y = digits_images(); return x.numpy(), {'digit': y.numpy()}
    x, y, _ = load_table(name); return x.numpy(), {'class': y.numpy()}

def zscore(x):
    x = x.reshape(len(x), -1)
    s = x.std(0); return (x - x.mean(0)) / np.where(s > 0, s, 1)

def pca(x, n=50, seed=0):
    from sklearn.decomposition import PCA
    z = zscore(x)
    return PCA(min(n, z.shape[1], len(z) - 1), random_state=seed).fit_transform(z)

def schedule(n, quick):
    "Epochs (E1, M, E2) for `n` items: the library default, or a short one for --quick."
    bs = min(DEFAULT_BS, -(-n // 2))
    return auto_epochs(n, bs, e_steps=40, m_steps=300) if quick else auto_epochs(n, bs)

class SelfViews:
    "Control for E2: each ordinary view is replaced, with probability `lam`, by the item itself (no generator)."
    def __init__(self, base, lam): self.base, self.lam = base, lam
    def __call__(self, x, idx, generator=None):
        v = self.base(x, idx, generator).to(x)
        m = torch.rand(len(idx), generator=generator) < self.lam
        return torch.where(append_dims(m, x.ndim).to(x.device), x, v)

def fit_self_control(x, sched, seed, args, **kw):
    """DiffAug's own training plan with the generator phases dropped and the E2 views swapped: each ordinary view is
    replaced, with probability `lam`, by the item itself. The E1 phase (same seeds) and the E2 phases (same seeds, same
    optimiser choice) are DiffAug's, so what DiffAug gains over this control is owed to the generated views, not to
    weaker augmentation or the restarts."""
    m = DiffAug(epochs=sched, rounds=args.rounds, loss='soft', random_state=seed, device='cpu', progress=False, **kw, views=dict(lam=args.lam))
    xs, views, learn = m.setup(x)
    plan = [p for p in m.plan(xs, views, learn, e2_views=SelfViews(views, args.lam)) if p.name in ('E1', 'E2')]
    m.history, m.phase_times = run_phases(plan, None)
    m.epochs_ = (m.epochs_[0], 0, m.epochs_[2])  # no generator phase
    return m

def run_dataset(name, seeds, args):
    x, labels = load(name)
    sched = schedule(len(x), args.quick)
    rows, models = [], {}
    for seed in seeds:
        embs = {'raw': (zscore(x), {}), 'pca': (pca(x, seed=seed), {})}
        for method, kw in [('ntxent_knnmix', dict(augment='knnmix', loss='ntxent')),
                           ('soft_knnmix', dict(augment='knnmix', loss='soft')),
                           ('diffaug', dict(augment='diffaug', loss='soft')),
                           ('self_control', {})]:
            if args.methods and method not in args.methods: continue
            t0 = time.time()
            if x.ndim == 4: kw = dict(kw, encoder=dict(net={'width': args.image_width}))
            if method == 'self_control':
                m = fit_self_control(x, sched, seed, args, **kw)
            else:
                m = DiffAug(epochs=sched, rounds=args.rounds, random_state=seed, device='cpu', progress=False, **kw, views=dict(lam=args.lam), gen=dict(steps=args.ddim_steps)).fit(x)
            total = time.time() - t0
            embs[method] = (m.transform(x), dict(m.phase_times, total=total, epochs='/'.join(map(str, m.epochs_))))
            if method == 'diffaug' and seed == seeds[0]: models[name] = (m, x)
            print(f"[{name} seed {seed}] {method}: {total:.1f}s", flush=True)
        for method, (z, times) in embs.items():
            for lab, y in labels.items():
                r = evaluate_embedding(z, y, random_state=seed)
                rows.append(dict(dataset=name, label=lab, method=method, seed=seed, n=len(x), **r,
                                 **{f't_{k}': v for k, v in times.items()}))
    return rows, models

def bank_cost(m, x, n_items, seed=0):
    "Seconds for one bank refresh of `n_items` views and the share nearer their own item than a random other."
    xs = torch.as_tensor(x[:n_items])
    if m.scaler is not None: xs = m.scaler.transform(xs)  # vectors are scaled; images are used as they are
    codes = m.model.embed(xs)
    perm = torch.randperm(len(xs), generator=make_generator(seed))
    out = []
    for sampler, steps in [('ddim', 10), ('ddim', 50), ('ddpm', 1000)]:
        b = ViewBank(len(xs), sampler=sampler, steps=steps).set_shape(m.in_shape)
        b.refresh(m.generator, codes, generator=make_generator(seed))
        v, xf = b.views[:, 0].reshape(len(xs), -1), xs.reshape(len(xs), -1)
        own, other = (v - xf).norm(dim=1), (v - xf[perm]).norm(dim=1)
        out.append(dict(sampler=f"{sampler.upper()}-{steps}", items=len(xs), seconds=b.log[-1]['seconds'],
                        ms_per_view=1000 * b.log[-1]['seconds'] / len(xs), nearer_own=float((own < other).float().mean()),
                        zero_views=int((v.abs().sum(1) == 0).sum())))
    return out

def fmt(mu, sd): return f"{100 * mu:.1f} ± {100 * sd:.1f}"

def summarise(df):
    g = df.groupby(['dataset', 'label', 'method'], sort=False)
    lines = ['| data | label | method | ' + ' | '.join(METRICS) + ' | fit s |', '|' + '---|' * (len(METRICS) + 4)]
    for (d, l, m), s in g:
        t = s['t_total'].mean() if 't_total' in s and s['t_total'].notna().any() else float('nan')
        lines.append(f"| {d} | {l} | {m} | " + ' | '.join(fmt(s[k].mean(), s[k].std(ddof=0)) for k in METRICS)
                     + f" | {'' if np.isnan(t) else f'{t:.1f}'} |")
    return '\n'.join(lines)

def paired(df, a='diffaug', b='soft_knnmix'):
    "Table of the paired differences `a - b` (points) on the seeds both have (`_report.paired_test`), and its footnote."
    lines, ns = [f'| data | label | ' + ' | '.join(METRICS) + ' | seeds |', '|' + '---|' * (len(METRICS) + 3)], []
    for (d, l), s in df.groupby(['dataset', 'label'], sort=False):
        A, B = s[s.method == a].set_index('seed'), s[s.method == b].set_index('seed')
        common = A.index.intersection(B.index)
        if not len(common): continue
        cells = [paired_words(paired_test(A.loc[common, k], B.loc[common, k]), scale=100, mark=True) for k in METRICS]
        lines.append(f"| {d} | {l} | " + ' | '.join(cells) + f" | {len(common)} |")
        ns.append(len(common))
    if ns: lines += ['', ns_note(max(ns))]
    return '\n'.join(lines)

def phase_table(df):
    cols = [c for c in df.columns if c.startswith('t_') and c != 't_epochs']
    s = df[df.method.isin(['ntxent_knnmix', 'soft_knnmix', 'diffaug', 'self_control'])].drop_duplicates(['dataset', 'method', 'seed'])
    g = s.groupby(['dataset', 'method'], sort=False)[cols].mean()
    g.columns = [c[2:] for c in cols]
    ep = s.groupby(['dataset', 'method'], sort=False)['t_epochs'].first()
    g.insert(0, 'epochs E1/M/E2', ep)
    return md_table(g.round(2), floatfmt='.4g', index=True)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help='2 seeds, pbmc and wine, short schedule')
    p.add_argument('--seeds', type=positive_int, default=None, help='number of seeds (default 5, 2 with --quick)')
    p.add_argument('--datasets', nargs='+', default=None, help='pbmc digits digits_img wine breast_cancer')
    p.add_argument('--image-width', type=positive_int, default=16, help='ResNet-18 base width for image data (64 is the reference)')
    p.add_argument('--methods', nargs='+', default=None, help='subset of ntxent_knnmix soft_knnmix diffaug')
    p.add_argument('--rounds', type=positive_int, default=1, help='M -> E2 rounds of DiffAug')
    p.add_argument('--lam', type=float, default=DEFAULT_LAM, help="probability of a generated view in E2 (default %(default)s, the paper's)")
    p.add_argument('--ddim-steps', type=positive_int, default=10, help='DDIM steps of the view bank')
    p.add_argument('--bank-items', type=positive_int, default=None, help='items in the bank-cost measurement (default 700, 100 with --quick)')
    p.add_argument('--tag', default=None, help='name of the result files (default quick or full)')
    p.add_argument('--out', default=str(Path(__file__).parent / 'results'), help='folder for the results')
    p.add_argument('--threads', type=positive_int, default=1, help='torch CPU threads')
    p.add_argument('--report-only', action='store_true', help='rewrite the .md from the existing contrastive-<tag>.csv and -bank.csv (no training)')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    seeds = list(range(args.seeds if args.seeds is not None else (2 if args.quick else 5)))
    datasets = args.datasets or (['pbmc', 'wine'] if args.quick else ['pbmc', 'digits', 'breast_cancer', 'wine'])
    tag = args.tag or ('quick' if args.quick else 'full')
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    if args.report_only: return report_only(out, tag, args)
    t_start, rows, models = time.time(), [], {}
    for d in datasets:
        r, m = run_dataset(d, seeds, args); rows += r; models.update(m)
        pd.DataFrame(rows).to_csv(out / f'contrastive-{tag}.csv', index=False)  # partial results survive a crash
    df = pd.DataFrame(rows)
    df.to_csv(out / f'contrastive-{tag}.csv', index=False)
    cost = []
    for d, (m, x) in models.items():
        n_items = min(len(x), args.bank_items or (100 if args.quick else 700))
        cost += [dict(dataset=d, **c) for c in bank_cost(m, x, n_items)]
    cost = pd.DataFrame(cost)
    if len(cost): cost.to_csv(out / f'contrastive-{tag}-bank.csv', index=False)
    md = header(tag, seeds, datasets, args, time.time() - t_start) + sections(df, cost)
    write_text_atomic(out / f'contrastive-{tag}.md', '\n'.join(md))
    print('\n'.join(md))

def header(tag, seeds, datasets, args, seconds=None, epochs=None) -> list:
    "The report's lines above its tables: title, the digits_img note, machine, seeds, settings and (when known) wall time."
    dev = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), torch threads {args.threads}"
    md = [f"# DiffAug contrastive benchmark ({tag})", '']
    if 'digits_img' in datasets:
        e = epochs or '/'.join(map(str, schedule(1797, args.quick)))
        md += [f"Note: for `digits_img` (8x8 images) the baseline's views are the standard image views of "
               "`diffaug.augment.ImageViews` (random shift, flip, small noise), not kNN-mix; the methods keep the names "
               f"`*_knnmix` in the tables. Encoder: ResNet-18 trunk of width {args.image_width} (`--image-width`), "
               f"E1/M/E2 = {e} epochs.", '']
    md += [(f"Machine: {dev}; torch {torch.__version__}. Seeds: {seeds}. Rounds {args.rounds}, lam {args.lam}, "
           f"bank sampler DDIM-{args.ddim_steps}. Schedule: {'short (--quick)' if args.quick else 'library default (epochs=None)'}. "
           + ('' if seconds is None else f"Total wall time {seconds:.0f}s.")).rstrip(), '']
    return md

def sections(df, cost) -> list:
    "The report's tables, from the results (one row per data set, label, method, seed) and the bank-cost rows."
    md = ['## Embedding quality (% , mean ± std over seeds)', '', summarise(df), '',
          '## Paired differences diffaug - soft_knnmix at equal encoder steps (points; mean ± std; seeds where diffaug is higher)', '',
          paired(df), '',
          '## Paired differences diffaug - self_control (the same E1 and E2 schedule, generated views replaced by the item itself)', '',
          paired(df, b='self_control'), '', '## Wall time per phase (s, mean over seeds)', '', phase_table(df), '']
    if len(cost): md += ['## One view-bank refresh (the trained DiffAug generator of seed 0)', '', md_table(cost.round(4), floatfmt='.4g'), '']
    return md

def report_only(out, tag, args):
    """Rewrite contrastive-<tag>.md from contrastive-<tag>.csv and -bank.csv. The CSVs do not hold the run's machine,
    settings or wall time, so the lines above the first table are kept from the existing report; without one they are
    built from the arguments, the seeds and data sets of the CSV and its E1/M/E2 epochs (no wall time)."""
    df = pd.read_csv(out / f'contrastive-{tag}.csv')
    bank = out / f'contrastive-{tag}-bank.csv'
    cost = pd.read_csv(bank) if bank.exists() else pd.DataFrame()
    path = out / f'contrastive-{tag}.md'
    old = path.read_text(encoding='utf-8').split('\n') if path.exists() else []
    start = next((i for i, l in enumerate(old) if l.startswith('## ')), None)
    if start is not None: head = old[:start]
    else:
        ep = df.loc[df.method == 'diffaug', 't_epochs'].dropna() if 't_epochs' in df else pd.Series([], dtype=object)
        head = header(tag, sorted(df.seed.unique().tolist()), list(df.dataset.unique()), args, epochs=ep.iloc[0] if len(ep) else None)
    md = head + sections(df, cost)
    write_text_atomic(path, '\n'.join(md))
    print('\n'.join(md))

if __name__ == '__main__': main()
