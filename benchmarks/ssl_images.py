"""SimCLR and MoCo v2 on digit images, with and without DiffAug views, as the seed paper runs them (issue 25).

Rows (every trained one is `DiffAug` on the package's Learner, one torch thread, CPU):

  simclr        SimCLR: NT-Xent (temperature 0.2) on two standard views (random resized crop of 30-100 % of the area,
                brightness/contrast jitter; no flip, no hue or grayscale for one-channel digits), 100 epochs
  simclr_diff   SimCLR + Diff: E1 50 epochs as SimCLR, the conditional generator 70 epochs (M), then E2 50 epochs in which
                each standard view is replaced, with probability lam = 0.184, by a generated view of the same image
  moco          MoCo v2: momentum key encoder (0.99), a queue of 1,024 keys, temperature 0.2, symmetrised; 100 epochs
  moco_diff     MoCo + Diff: as simclr_diff with MoCo's loss
  diffaug_soft  DiffAug's own soft contrastive loss on the same standard views, E1 50 / M 70 / E2 50
  raw, pca      reference rows: the z-scored pixels, and their first 50 principal components

Shared by the trained rows: ResNet-18 trunk of width 16 (128 features, the representation evaluated), projection
head 128 -> 256 -> 64 with batch norm, batch 256, AdamW (lr 2e-3, weight decay 1e-4) with a one-cycle schedule per
phase. The "+ Diff" rows train the encoder for as many epochs as the plain ones (50 + 50 = 100).

Evaluation on the frozen 128 features of all 1,797 images, folds and K-means seeded by the run's seed:
  linear   5-fold stratified CV accuracy of a logistic regression on standardised features
  knn      5-fold stratified CV accuracy of a 5-nearest-neighbour classifier
  kmeans   K-means (10 clusters, 10 starts) accuracy after Hungarian matching, and its adjusted Rand index (ari)

Data: scikit-learn's digits at 8x8, or upsampled bilinearly to 32x32 (`--size 32`, 16x the pixels and the cost).
CIFAR-10 and STL-10 (`--data cifar10|stl10 --root FOLDER`, the extracted archives; nothing is downloaded) use
SimCLR's RGB pipeline (crop of 8-100 % of the area, flips, colour jitter 0.4/0.4/0.4/0.1 with probability 0.8,
grayscale 0.2), fit the encoder on the training images and score the test images (probes fitted on the training
features); meant for a GPU (`--device cuda --width 64 --epochs 200`), tested here at toy size.
Every (size, method, seed) run appends one row to results/ssl-digits{size}.csv (under a file lock; a run is claimed
before it starts, so several processes can share the work); rows already there are skipped, so the script resumes. The Markdown report is rewritten from
the CSV after every row.

    python benchmarks/ssl_images.py --size 8 --seeds 0 1 2 3 4
    python benchmarks/ssl_images.py --size 8 --seeds 0 1 --methods simclr simclr_diff   # a share of the work
    python benchmarks/ssl_images.py --size 8 --report                                      # rewrite the Markdown only
    python benchmarks/ssl_images.py --data cifar10 --root ~/data --device cuda --width 64 --epochs 200 --m-epochs 100
"""
from __future__ import annotations
import argparse, fcntl, os, sys, tempfile, time
from contextlib import contextmanager
from pathlib import Path
import numpy as np, pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_text_atomic, machine_line, paired_test, paired_words, positive_int, ns_note, ALPHA

RESULTS = Path(__file__).resolve().parent / 'results'
TRAINED = ('simclr', 'simclr_diff', 'moco', 'moco_diff', 'diffaug_soft')
METHODS = ('raw', 'pca') + TRAINED
NICE = {'raw': 'raw pixels (reference)', 'pca': 'PCA-50 (reference)', 'simclr': 'SimCLR', 'simclr_diff': 'SimCLR + Diff',
        'moco': 'MoCo v2', 'moco_diff': 'MoCo v2 + Diff', 'diffaug_soft': 'DiffAug (soft loss, standard views)'}
METRICS = ('linear', 'knn', 'kmeans', 'ari')
PAIRS = (('simclr_diff', 'simclr'), ('moco_diff', 'moco'), ('diffaug_soft', 'simclr'), ('simclr', 'raw'), ('moco', 'simclr'))
EPOCHS, EPOCHS_DIFF, LAM = 100, (50, 70, 50), 0.184
PAPER_GAIN = 0.016  # the smallest gain the seed paper reports for adding generated views (linear probe, fraction)

def settings(method:str, seed:int, a) -> dict:
    "The `DiffAug` arguments of a trained row (`a`: the command line: data, width, epochs, batch size, device)."
    loss = dict(kind='moco' if method.startswith('moco') else 'ntxent', params=dict(temperature=0.2)) if method != 'diffaug_soft' else 'soft'
    diff = method.endswith('_diff') or method == 'diffaug_soft'
    e = a.epochs
    image = dict(scale=(0.3, 1.), flip=False, jitter=(0.4, 0.4, 0., 0.)) if a.data == 'digits' else 'ssl'  # RGB: SimCLR's own pipeline
    return dict(augment='diffaug' if diff else 'knnmix', loss=loss, n_latent=8 * a.width, epochs=(e // 2, a.m_epochs, e - e // 2) if diff else e,
                random_state=seed, progress=False, device=a.device,
                views=dict(image=image, lam=LAM),
                encoder=dict(bs=a.bs, lr=2e-3, wd=1e-4, schedule='one_cycle', net=dict(width=a.width, head_dim=64, head_hidden=(256,))))

def images(a):
    "Training images and labels, and evaluation images and labels (None for digits: all 1,797 are scored by 5-fold CV)."
    import torch.nn.functional as F
    from diffaug import datasets as ds
    if a.data == 'digits':
        x, y = ds.digits_images()
        if a.size != 8: x = F.interpolate(x, size=(a.size, a.size), mode='bilinear', align_corners=False).clamp(-1, 1)
        return x, y.numpy(), None, None
    if a.data == 'cifar10':
        (x, y), (xt, yt) = (ds.load_cifar10(a.root, train=t, check_md5=not a.no_md5) for t in (True, False))
    else:
        size = None if a.size == 96 else a.size
        (x, y), (xt, yt) = (ds.load_stl10(a.root, split=s, size=size, limit=n, check_md5=not a.no_md5) for s, n in (('train', a.n), ('test', a.n_test)))
    return x[:a.n], y[:a.n].numpy(), xt[:a.n_test], yt[:a.n_test].numpy()

def scores(z:np.ndarray, y:np.ndarray, seed:int, zt:np.ndarray|None=None, yt:np.ndarray|None=None) -> dict:
    "The four evaluation numbers (fractions) of features `z`: 5-fold CV, or trained on (z, y) and tested on (zt, yt)."
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from diffaug.metrics import cluster_accuracy
    lin, knn = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)), KNeighborsClassifier(min(5, len(z) - 1))
    if zt is None:
        cv = StratifiedKFold(min(5, np.bincount(y).min()), shuffle=True, random_state=seed)
        out = dict(linear=cross_val_score(lin, z, y, cv=cv).mean(), knn=cross_val_score(knn, z, y, cv=cv).mean())
        zc, yc = z, y
    else:
        out = dict(linear=lin.fit(z, y).score(zt, yt), knn=knn.fit(z, y).score(zt, yt))
        zc, yc = zt, yt
    k = len(np.unique(yc))
    cl = KMeans(k, n_init=10, random_state=seed).fit_predict(zc)
    return dict(linear=float(out['linear']), knn=float(out['knn']), kmeans=cluster_accuracy(yc, cl), ari=float(adjusted_rand_score(yc, cl)))

def run(a, method:str, seed:int) -> dict:
    "One row: the features of `method` at `seed`, their scores and (trained rows) the seconds of each phase."
    import torch
    torch.set_num_threads(a.threads)
    x, y, xt, yt = images(a)
    def zscored(u):
        f = u.reshape(len(u), -1).double().numpy()
        return f, f.mean(0), np.where(f.std(0) > 0, f.std(0), 1.)
    row = dict(data=a.data, size=int(x.shape[-1]), method=method, seed=seed, n_train=len(x), n_test=0 if xt is None else len(xt))
    t0 = time.time()
    if method in ('raw', 'pca'):
        f, mu, sd = zscored(x)
        z, zt = (f - mu) / sd, None if xt is None else (zscored(xt)[0] - mu) / sd
        if method == 'pca':
            from sklearn.decomposition import PCA
            pca = PCA(min(50, *z.shape), random_state=seed).fit(z)
            z, zt = pca.transform(z), None if zt is None else pca.transform(zt)
    else:
        from diffaug.contrastive import DiffAug
        m = DiffAug(**settings(method, seed, a)).fit(x)
        z, zt = np.asarray(m.transform(x)), None if xt is None else np.asarray(m.transform(xt))
        e1, em, e2 = m.epochs_
        ph = m.phase_times
        enc = ph.get('E1', 0) + sum(v for k, v in ph.items() if k.startswith('E2'))
        gen = sum(v for k, v in ph.items() if k.startswith('M') or k.startswith('bank'))
        row.update(fit_s=time.time() - t0, epochs=f"{e1}/{em}/{e2}", enc_s_per_epoch=enc / (e1 + e2),
                   gen_s_per_epoch=(sum(v for k, v in ph.items() if k.startswith('M')) / em) if em else np.nan,
                   bank_s=sum(v for k, v in ph.items() if k.startswith('bank')), gen_share=gen / (enc + gen), device=str(m.device))
    row.update(scores(z, y, seed, zt, yt), load=os.getloadavg()[0])
    return row

@contextmanager
def locked(path:Path):
    "An exclusive lock on `path` + '.lock' (for the read-append-write of the shared CSV)."
    lock = Path(tempfile.gettempdir()) / (path.name + '.lock')  # outside results/
    with open(lock, 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try: yield
        finally: fcntl.flock(f, fcntl.LOCK_UN)

def claim(csv:Path, method:str, seed:int) -> bool:
    "True if this process takes the run (method, seed): not in the CSV and not taken by another process running now."
    claims = Path(tempfile.gettempdir()) / (csv.name + '.claims')
    with locked(csv):
        if csv.exists() and ((d := pd.read_csv(csv))['method'].eq(method) & d['seed'].eq(seed)).any(): return False
        taken = {tuple(l.split()) for l in claims.read_text().splitlines()} if claims.exists() else set()
        live = {t for t in taken if Path(f"/proc/{t[2]}").exists()}  # claims of processes still running
        if any(t[:2] == (method, str(seed)) for t in live): return False
        claims.write_text(''.join(f"{' '.join(t)}\n" for t in live | {(method, str(seed), str(os.getpid()))}))
        return True

def append(csv:Path, row:dict):
    with locked(csv):
        d = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
        d = pd.concat([d, pd.DataFrame([row])], ignore_index=True).drop_duplicates(['method', 'seed'], keep='last')
        write_text_atomic(csv, d.to_csv(index=False))

def report(a, csv:Path, md:Path):
    "The Markdown report of the CSV: means with spreads, the paired differences with sign counts and p, and the cost."
    from diffaug.report import md_table
    d = pd.read_csv(csv)
    seeds = sorted(d['seed'].unique())
    size = int(d['size'].iloc[0])
    what = {'digits': 'digits', 'cifar10': 'CIFAR-10', 'stl10': 'STL-10'}[a.data]
    how = ("all 1,797 images scored by 5-fold CV" if a.data == 'digits' else
           f"{int(d['n_train'].iloc[0]):,} training images (encoder, probes) and {int(d['n_test'].iloc[0]):,} test images (scores)")
    lines = [f"# SimCLR and MoCo v2 with and without DiffAug views: {what} at {size}x{size}", '',
             f"Written by `benchmarks/ssl_images.py` (its docstring gives every setting; here ResNet-18 width {a.width}, "
             f"{a.epochs} encoder epochs, generator {a.m_epochs} epochs, batch {a.bs}; {how}). {machine_line(a.threads)} The machine is shared "
             f"(2 cores; 'load' below is the 1-minute load average at the end of each run), so seconds compare within this table only. "
             f"Seeds: {', '.join(map(str, seeds))}. Scores in %, mean ± sd over seeds (the reference rows vary only through the "
             f"seeded folds and K-means).", '']
    if (d['n_train'] < 1000).any() and a.data != 'digits': lines += ["**A toy run** (a few images, a few epochs): it checks the path, its numbers mean nothing.", '']
    order = [m for m in METHODS if m in set(d['method'])]
    tab = []
    for m in order:
        s = d[d['method'] == m]
        r = {'method': NICE[m], 'seeds': len(s)}
        for k in METRICS:
            v = s[k] * 100
            r[k] = f"{v.mean():.1f}" + (f" ± {v.std(ddof=1):.1f}" if len(v) > 1 else '')
        tab.append(r)
    lines += ['## Frozen-feature scores', '', md_table(pd.DataFrame(tab)), '']
    best = {k: d.groupby('method')[k].mean().idxmax() for k in METRICS}
    lines += ['Highest mean per measure: ' + '; '.join(f"{k} {NICE[best[k]]} ({d.groupby('method')[k].mean()[best[k]] * 100:.1f})" for k in METRICS) + '.', '']
    ptab, words = [], []
    for a, b in PAIRS:
        if not {a, b} <= set(d['method']): continue
        pa, pb = (d[d['method'] == m].set_index('seed') for m in (a, b))
        common = sorted(set(pa.index) & set(pb.index))
        if not common: continue
        r = {'pair': f"{NICE[a]} - {NICE[b]}"}
        for k in METRICS:
            t = paired_test(pa.loc[common, k], pb.loc[common, k]); r[k] = paired_words(t, mark=True)
            if k in ('linear', 'knn', 'kmeans') and a.endswith('_diff'):
                sig = t['p'] < ALPHA
                words.append(f"{NICE[a]} against {NICE[b]}, {k}: {t['mean'] * 100:+.1f} points ({t['wins']}/{t['n']} seeds higher; "
                             + ("significant at 5 %" if sig else f"not significant at {t['n']} seeds, p = {t['p']:.2g}") + ").")
        ptab.append(r)
    if ptab:
        lines += ['## Paired differences (points; mean ± sd over seeds, seeds where the first is higher, exact sign-flip p)', '',
                  md_table(pd.DataFrame(ptab)), '', ns_note(d['seed'].nunique()) + ' The sign count says how consistent a difference is.', '']
        lines += ['\n'.join(f"- {w}" for w in words), '']
        paper, km = [], []
        for a, b in (('simclr_diff', 'simclr'), ('moco_diff', 'moco')):
            if not {a, b} <= set(d['method']): continue
            pa, pb = (d[d['method'] == m].set_index('seed') for m in (a, b))
            common = sorted(set(pa.index) & set(pb.index))
            t = paired_test(pa.loc[common, 'linear'], pb.loc[common, 'linear'])
            held = t['mean'] >= PAPER_GAIN and t['wins'] == t['n']
            k = paired_test(pa.loc[common, 'kmeans'], pb.loc[common, 'kmeans'])
            km.append(f"{NICE[a]} {k['mean'] * 100:+.1f} ± {k['sd'] * 100:.1f} points ({k['wins']}/{k['n']} seeds, "
                      + ("higher in every seed" if k['wins'] == k['n'] else "lower in every seed" if k['wins'] == 0 else "a tie") + ")")
            paper.append(f"{NICE[a]}: linear probe {t['mean'] * 100:+.1f} ± {t['sd'] * 100:.1f} points over {NICE[b]} "
                         f"({t['wins']}/{t['n']} seeds): " + ("the paper's direction reproduces." if held else
                         "**the paper's gain does not reproduce here**" + (" (a tie)." if 0 < t['wins'] < t['n'] else ".")))
        if paper:
            lines += [f"Against the paper (linear probe +{PAPER_GAIN * 100:.1f} to +4.5 points on CIFAR-10, CIFAR-100, STL-10 and "
                      f"Tiny-ImageNet): " + ' '.join(paper) + f" The plain methods leave little room on these images: SimCLR's linear probe "
                      f"is {d.loc[d['method'] == 'simclr', 'linear'].mean() * 100:.1f} %, so a gain of the paper's size is close to the ceiling. "
                      f"On K-means, further from its ceiling: " + '; '.join(km) + '.', '']
    t = d[d['method'].isin(TRAINED)]
    if len(t):
        cost = t.groupby('method', sort=False).agg(epochs=('epochs', 'first'), enc=('enc_s_per_epoch', 'mean'), gen=('gen_s_per_epoch', 'mean'),
                                                    bank=('bank_s', 'mean'), share=('gen_share', 'mean'), fit=('fit_s', 'mean'), load=('load', 'mean'))
        cost = cost.reindex([m for m in TRAINED if m in cost.index])
        show = pd.DataFrame({'method': [NICE[m] for m in cost.index], 'epochs E1/M/E2': cost['epochs'].values,
                             'encoder s/epoch': cost['enc'].map('{:.2f}'.format).values,
                             'generator s/epoch': cost['gen'].map(lambda v: '' if pd.isna(v) else f"{v:.2f}").values,
                             'bank refresh s': cost['bank'].map(lambda v: '' if v == 0 else f"{v:.1f}").values,
                             "generator's share of the fit": cost['share'].map(lambda v: f"{100 * v:.0f} %").values,
                             'fit s': cost['fit'].map('{:.0f}'.format).values, 'load': cost['load'].map('{:.1f}'.format).values})
        lines += ['## Cost (seconds, mean over seeds)', '', md_table(show), '']
    write_text_atomic(md, '\n'.join(lines) + '\n')
    return '\n'.join(lines)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', choices=('digits', 'cifar10', 'stl10'), default='digits')
    p.add_argument('--root', help="folder holding cifar-10-batches-py/ or stl10_binary/ (nothing is downloaded)")
    p.add_argument('--no-md5', action='store_true', help="check only that the CIFAR/STL files exist, not their checksums")
    p.add_argument('--size', type=int, default=None, help="image side: digits 8 (default) or 32; STL-10 96 (default) or e.g. 64; CIFAR-10 32")
    p.add_argument('--n', type=positive_int, default=None, help="training images (default: all)")
    p.add_argument('--n-test', type=positive_int, default=None, help="test images (CIFAR-10/STL-10; default: all)")
    p.add_argument('--width', type=positive_int, default=16, help="ResNet-18 base width (16 on a CPU, 64 on a GPU)")
    p.add_argument('--epochs', type=positive_int, default=EPOCHS, help="encoder epochs (the + Diff rows: half before, half after the generator)")
    p.add_argument('--m-epochs', type=positive_int, default=EPOCHS_DIFF[1], help="generator epochs of the + Diff rows")
    p.add_argument('--bs', type=positive_int, default=256)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=positive_int, default=1)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    p.add_argument('--out', default=str(RESULTS), help="folder of the CSV and the Markdown")
    p.add_argument('--tag', default=None, help="file names ssl-TAG.{csv,md} (default: the data and size, e.g. digits8)")
    p.add_argument('--report', action='store_true', help="rewrite the Markdown from the CSV, run nothing")
    a = p.parse_args(argv)
    if a.data != 'digits' and not a.root: p.error(f"--data {a.data} needs --root FOLDER with the extracted files (nothing is downloaded)")
    a.size = a.size or {'digits': 8, 'cifar10': 32, 'stl10': 96}[a.data]
    if a.data == 'digits' and a.size not in (8, 32): p.error("--size for digits is 8 or 32")
    if a.data == 'cifar10' and a.size != 32: p.error("--size for CIFAR-10 is 32")
    tag = a.tag or f"{a.data}{a.size}"
    csv, md = Path(a.out) / f'ssl-{tag}.csv', Path(a.out) / f'ssl-{tag}.md'
    if not a.report:
        for seed in a.seeds:
            for method in a.methods:
                if not claim(csv, method, seed): continue
                row = run(a, method, seed)
                append(csv, row)
                print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
                report(a, csv, md)
    print(report(a, csv, md))

if __name__ == '__main__':
    main()
