"""The DiffAug paper's evaluation beyond corrupted accuracy, on digits (CPU) or CIFAR-10 (a GPU): five parts per seed.

  augmix    plain, AugMix, DiffAug and AugMix + DiffAug training, each with and without the DiffAug Ensemble (DE), on
            clean images and the 15 standard corruptions x 5 severities (imagecorruptions; digits are corrupted at 32x32,
            see `diffaug.corruptions.corrupt`)
  ood       out-of-distribution detection by plain and DiffAug classifiers trained on the first 6 classes: near-OOD =
            test images of the other 4 classes, far-OOD = uniform noise and 8x8 patches of scikit-image's shipped
            photographs (digits; CIFAR: noise only); scores MSP, max-logit, energy, ReAct, ASH, SCALE; AUROC and FPR at 95% TPR
  certify   certified l2 accuracy of diffuse-denoise-classify (randomized smoothing, Cohen et al.'s CERTIFY) for the
            plain and the DiffAug classifier at several sigma and radii
  gradients perceptually aligned gradients: input gradients of plain, noisy, DA and DiffAug classifiers at t = 0 and
            t = 300, their cosine with the direction to the class mean, and a figure with colour bars
  budget    semi-supervised label budgets 1, 5, 10, 25, 100%: noisy and DA classifiers with and without the
            temporal-consistency loss, and a plain supervised-only baseline
It writes robustness-<tag>.md, robustness-<tag>-<part>.csv and figures into --out, atomically, after every seed.

    OMP_NUM_THREADS=1 python benchmarks/robustness.py                        # digits, 3 seeds, all parts (about an hour)
    OMP_NUM_THREADS=1 python benchmarks/robustness.py --quick --seeds 1      # minutes
    python benchmarks/robustness.py --data cifar10 --cifar ~/data --parts augmix certify   # on a GPU
"""
from __future__ import annotations
import argparse, math, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, write_text_atomic, positive_int, setting_arg
from diffaug.report import md_table, savefig

from diffaug.core import Seeds
from diffaug.datasets import digits_images, load_cifar10
from diffaug.corruptions import corrupted_set, CORRUPTIONS
from diffaug.training import train_denoiser
from diffaug.nets import UNet
from diffaug.classifier import fit_classifier, predict_proba, DE_STEPS
from diffaug.guidance import classifier_gradients, plot_gradient_maps
from diffaug.semisup import TemporalConsistencyCB
from diffaug.robustness import (AugMixDiffAugCB, OOD_SCORES, feature_head, features_logits, react_threshold, ood_score, auroc,
                                fpr_at_tpr, certify, certified_accuracy, gradient_alignment)

RESULTS = Path(__file__).resolve().parent / 'results'
PARTS = ('augmix', 'ood', 'certify', 'gradients', 'budget')
FULL = dict(den_epochs=30, cls_epochs=30, bs=128, kinds=list(CORRUPTIONS), severities=[1, 2, 3, 4, 5], de_steps=list(DE_STEPS),
            sigmas=[0.12, 0.25, 0.5], radii=[0, 0.125, 0.25, 0.5, 0.75, 1.0], cert_n0=100, cert_n=1000, cert_alpha=0.001,
            cert_images=200, grad_images=200, grad_t=[0, 300], budgets=[0.01, 0.05, 0.1, 0.25, 1.0], budget_steps=300,
            budget_t=[0, 300], width=None, den_base=64)
QUICK = dict(FULL, den_epochs=5, cls_epochs=5, severities=[3, 5], de_steps=[0, 100, 200, 300], sigmas=[0.25], cert_n0=20,
             cert_n=100, cert_images=50, grad_images=50, budgets=[0.05, 1.0], budget_steps=60)
NEAR_CLASSES = 6  # classes 0..5 are in distribution in the OOD part

def _split(y, seed, test_frac=0.3):
    "Stratified train/test indices of one seed, from its named child seed 'split' (on digits: `diffaug.datasets.digits_split`'s split)."
    from sklearn.model_selection import train_test_split
    tr, te = train_test_split(np.arange(len(y)), test_size=test_frac, stratify=y.numpy(), random_state=Seeds(seed).seed('split') % 2**32)
    return torch.as_tensor(tr), torch.as_tensor(te)

def _acc(p, y): return float((p.argmax(1).cpu() == y).float().mean())

def photo_patches(n, size=8, seed=0):
    "`n` gray patches of scikit-image's shipped photographs, block-averaged to `size` x `size`, in [-1, 1] (far-OOD for digits)."
    from skimage import data
    imgs = [data.camera(), data.coins(), data.moon(), data.text(), data.grass(), data.brick(), data.gravel()]
    g = np.random.default_rng(seed)
    out = []
    for i in range(n):
        im = imgs[i % len(imgs)].astype(np.float64)
        f = 4
        r, c = g.integers(0, im.shape[0] - size * f), g.integers(0, im.shape[1] - size * f)
        out.append(im[r:r + size * f, c:c + size * f].reshape(size, f, size, f).mean((1, 3)))
    a = np.stack(out)[:, None] / 127.5 - 1
    return torch.tensor(a, dtype=torch.float32)

def load_data(args):
    if args.data == 'digits':
        x, y = digits_images()
        return x, y, 'scikit-learn digits (1797 8x8 images), stratified 70/30 split per seed'
    if args.toy:  # fake CIFAR-10 files at toy size (the CIFAR-10 pipeline's writer), read through the real loader
        from cifar10 import write_toy_cifar
        args.cifar = write_toy_cifar(Path(args.out) / 'toy-data', 200, 100)
    if not args.cifar: raise SystemExit('--data cifar10 needs --cifar FOLDER (holding cifar-10-batches-py/)')
    (xtr, ytr), (xte, yte) = load_cifar10(args.cifar, check_md5=not args.toy), load_cifar10(args.cifar, train=False, check_md5=not args.toy)
    return torch.cat([xtr, xte]), torch.cat([ytr, yte]), 'CIFAR-10 (60000 images), stratified 70/30 split per seed'

# ---------------------------------------------------------------------------------------------------- one seed

def run_seed(seed, cfg, x, y, parts, dev, log, figdir=None):
    rows, seeds = {p: [] for p in PARTS}, Seeds(seed)
    tr, te = _split(y, seed)
    xtr, ytr, xte, yte = x[tr], y[tr], x[te], y[te]
    big = x.shape[-1] >= 32
    net = UNet(x.shape[1], base=cfg['den_base'], mults=(1, 2, 2, 2)) if big else None
    den = train_denoiser(xtr, net=net, epochs=cfg['den_epochs'], random_state=seed, progress=False, device=dev)
    log(f"seed {seed}: denoiser trained ({den.train_seconds:.0f}s)")
    mk = dict(trunk='resnet18', width=cfg['width'] or 64) if big else ({'width': cfg['width']} if cfg['width'] else {})
    def fit(mode='plain', xs=xtr, ys=ytr, cbs=(), **kw):
        kw = dict(dict(epochs=cfg['cls_epochs'], bs=cfg['bs'], random_state=seed, model_kw=mk or None), **kw)
        return fit_classifier(xs, ys, mode=mode, denoiser=den if mode in ('diffaug', 'da') else None, schedule=den.schedule,
                              progress=False, valid_pct=0, device=dev, cbs=list(cbs), **kw)
    L = {}
    if {'augmix', 'certify', 'gradients'} & parts:
        L['plain'] = fit('plain'); L['DiffAug'] = fit('diffaug')
    if 'augmix' in parts:
        t0 = time.time()
        L['AugMix'] = fit('plain', cbs=[AugMixDiffAugCB(den, diffaug=False, random_state=seed)])
        L['AugMix + DiffAug'] = fit('plain', cbs=[AugMixDiffAugCB(den, random_state=seed)])
        log(f"seed {seed}: AugMix classifiers trained ({time.time() - t0:.0f}s)")
        sets = {('clean', 0): xte, **corrupted_set(xte, cfg['kinds'], cfg['severities'], random_state=seed)}
        for name in ('plain', 'AugMix', 'DiffAug', 'AugMix + DiffAug'):
            for (kind, sev), xs in sets.items():
                rows['augmix'].append(dict(seed=seed, method=name, de=False, corruption=kind, severity=sev, acc=_acc(predict_proba(L[name], xs), yte)))
                p = predict_proba(L[name], xs, ensemble=True, denoiser=den, generator=seeds.seed('ensemble'), steps=tuple(cfg['de_steps']))
                rows['augmix'].append(dict(seed=seed, method=name, de=True, corruption=kind, severity=sev, acc=_acc(p, yte)))
        log(f"seed {seed}: augmix part done")
    if 'ood' in parts:
        idm_tr, idm_te = ytr < NEAR_CLASSES, yte < NEAR_CLASSES
        n_id = int(idm_te.sum())
        far = {'uniform noise': torch.rand((n_id,) + tuple(x.shape[1:]), generator=seeds.generator('uniform noise')) * 2 - 1}
        if not big: far['photo patches'] = photo_patches(n_id, seed=seed)
        oods = {'near: held-out classes': xte[~idm_te], **{f'far: {k}': v for k, v in far.items()}}
        # ReAct's clip comes from held-out in-distribution images: a tenth of the in-distribution training images, not trained on
        idx = torch.nonzero(idm_tr).flatten()
        hold = idx[torch.randperm(len(idx), generator=seeds.generator('react holdout'))[:max(20, len(idx) // 10)]]
        fit_idx = idx[~torch.isin(idx, hold)]
        for name, mode in (('plain', 'plain'), ('DiffAug', 'diffaug')):
            l6 = fit(mode, xtr[fit_idx], ytr[fit_idx], n_classes=NEAR_CLASSES)
            _, head = feature_head(l6)
            c = react_threshold(features_logits(l6, xtr[hold])[0])
            fi, li = features_logits(l6, xte[idm_te])
            s_id = {m: ood_score(fi, li, m, head=head, react_clip=c) for m in OOD_SCORES}
            for oname, xo in oods.items():
                fo, lo = features_logits(l6, xo)
                for m in OOD_SCORES:
                    so = ood_score(fo, lo, m, head=head, react_clip=c)
                    rows['ood'].append(dict(seed=seed, method=name, ood_set=oname, score=m, auroc=auroc(s_id[m], so), fpr95=fpr_at_tpr(s_id[m], so)))
            rows['ood'].append(dict(seed=seed, method=name, ood_set='(in-distribution accuracy)', score='-',
                                    auroc=_acc(li, yte[idm_te]), fpr95=np.nan))
        log(f"seed {seed}: ood part done")
    if 'certify' in parts:
        ci = torch.arange(min(cfg['cert_images'], len(xte)))
        for name in ('plain', 'DiffAug'):
            for sigma in cfg['sigmas']:
                t0 = time.time()
                pred, rad = certify(L[name], xte[ci], sigma, n0=cfg['cert_n0'], n=cfg['cert_n'], alpha=cfg['cert_alpha'], denoiser=den,
                                    generator=seeds.seed('certify'))
                acc = certified_accuracy(pred, rad, yte[ci], cfg['radii'])
                for r, a in zip(cfg['radii'], acc):
                    rows['certify'].append(dict(seed=seed, method=name, sigma=sigma, radius=r, acc=float(a),
                                                abstain=float((pred == -1).float().mean()), seconds=time.time() - t0))
        log(f"seed {seed}: certify part done")
    if 'gradients' in parts:
        L['noisy'] = fit('noisy'); L['DA'] = fit('da')
        gi = torch.arange(min(cfg['grad_images'], len(xte)))
        means = torch.stack([xtr[ytr == k].mean(0) for k in range(int(y.max()) + 1)])
        for name in ('plain', 'DiffAug', 'noisy', 'DA'):
            for t in cfg['grad_t']:
                if t == 0 and name in ('noisy', 'DA'): t_use = 1  # they are trained on diffused inputs; t=1 is almost clean
                else: t_use = t
                xt, gr = classifier_gradients(L[name], xte[gi], yte[gi], t_use, denoiser=den, generator=seeds.seed('gradients'))
                a_t = float(den.schedule.a[t_use])  # at step t the class means of x_t are a_t * mu_y
                cos = gradient_alignment(gr, xt, yte[gi], a_t * means)
                rows['gradients'].append(dict(seed=seed, classifier=name, t=t, alignment=float(cos.mean()), alignment_sd=float(cos.std())))
        if figdir is not None:
            import matplotlib.pyplot as plt
            fig = plot_gradient_maps({k: L[k] for k in ('plain', 'DiffAug', 'noisy', 'DA')}, xte[gi[:6]], yte[gi[:6]], t=cfg['grad_t'][-1],
                                     denoiser=den, generator=seeds.seed('gradients'))
            savefig(fig, figdir / 'gradients.png', dpi=120)
        log(f"seed {seed}: gradients part done")
    if 'budget' in parts:
        from sklearn.model_selection import train_test_split
        bsz = 32
        for frac in cfg['budgets']:
            if frac < 1: li, ui = (torch.as_tensor(a) for a in train_test_split(np.arange(len(xtr)), train_size=frac, stratify=ytr.numpy(), random_state=seed))
            else: li, ui = torch.arange(len(xtr)), torch.arange(0)
            epochs = max(1, math.ceil(cfg['budget_steps'] / math.ceil(len(li) / bsz)))
            settings = [('plain (supervised only)', 'plain', False)] + [(f"{m}{' + TC' if tc else ''}", m, tc) for m in ('noisy', 'da') for tc in (False, True)]
            for name, mode, tc in settings:
                if tc and len(ui) == 0: continue  # 100% labels: nothing unlabeled
                cbs = [TemporalConsistencyCB(xtr[ui], denoiser=den, bs=bsz, random_state=seed)] if tc else []
                l = fit(mode, xtr[li], ytr[li], epochs=epochs, bs=bsz, cbs=cbs, n_classes=int(y.max()) + 1)
                for t in cfg['budget_t']:
                    if mode == 'plain': acc = _acc(predict_proba(l, xte) if t == 0 else predict_proba(l, xte, t=t, generator=seeds.seed('diffused test')), yte)
                    else: acc = _acc(predict_proba(l, xte, t=max(t, 1) if t == 0 else t, generator=seeds.seed('diffused test')), yte)
                    rows['budget'].append(dict(seed=seed, labels=frac, n_labels=len(li), classifier=name, t=t, acc=acc))
        log(f"seed {seed}: budget part done")
    return rows

# ---------------------------------------------------------------------------------------------------- figures and report

def _ms(v, scale=100., fmt='.1f'):
    v = np.asarray(v, float) * scale
    return f"{v[0]:{fmt}}" if len(v) == 1 else f"{v.mean():{fmt}} ± {v.std(ddof=1):{fmt}}"

def section_augmix(df, nseeds):
    cor = df[df.corruption != 'clean']
    out = []
    for (m, de), g in df.groupby(['method', 'de'], sort=False):
        c = g[g.corruption != 'clean'].groupby('seed').acc.mean().values
        cl = g[g.corruption == 'clean'].groupby('seed').acc.mean().values
        row = {'training': m, 'DE': 'yes' if de else 'no', 'clean': _ms(cl), 'corrupted mean': _ms(c)}
        for s in sorted(cor.severity.unique()):
            row[f'sev {s}'] = _ms(g[(g.corruption != 'clean') & (g.severity == s)].groupby('seed').acc.mean().values)
        out.append(row)
    t = pd.DataFrame(out)
    means = {(r['training'], r['DE']): float(str(r['corrupted mean']).split(' ')[0]) for r in out}
    best = max(means, key=means.get)
    base = df[(df.method == 'plain') & (~df.de) & (df.corruption != 'clean')].groupby('seed').acc.mean()
    diffs = []
    for (m, de), g in df.groupby(['method', 'de'], sort=False):
        if m == 'plain' and not de: continue
        d = g[g.corruption != 'clean'].groupby('seed').acc.mean() - base
        diffs.append({'training': m, 'DE': 'yes' if de else 'no', 'corrupted vs plain (points)': _ms(d.values)})
    return ['## 1. AugMix + DiffAug on the standard corruptions', '',
            'Accuracy (%) on clean test images and averaged over the 15 standard corruptions (imagecorruptions) per severity.', '',
            md_table(t), '', f"**Which row wins:** {best[0]}{' + DE' if best[1] == 'yes' else ''} on corrupted images "
            f"({means[best]:.1f}%). Paired differences to plain training without the ensemble:", '', md_table(pd.DataFrame(diffs)), '']

def section_ood(df):
    acc = df[df.score == '-']
    d = df[df.score != '-']
    out = []
    for (oset, score), g in d.groupby(['ood_set', 'score'], sort=False):
        row = {'OOD set': oset, 'score': score}
        for m in ('plain', 'DiffAug'):
            gm = g[g.method == m]
            row[f'{m} AUROC'] = _ms(gm.auroc.values); row[f'{m} FPR95'] = _ms(gm.fpr95.values)
        dd = g[g.method == 'DiffAug'].set_index('seed').auroc - g[g.method == 'plain'].set_index('seed').auroc
        row['AUROC DiffAug - plain'] = _ms(dd.values)
        out.append(row)
    t = pd.DataFrame(out)
    mean_d = d.pivot_table(index=['seed', 'ood_set', 'score'], columns='method', values='auroc')
    gain = (mean_d['DiffAug'] - mean_d['plain'])
    by_set = gain.groupby(level='ood_set').mean() * 100
    words = '; '.join(f"{k}: {v:+.1f} points" for k, v in by_set.items())
    wins = int((gain > 0).sum()); total = int(gain.notna().sum())
    return ['## 2. Out-of-distribution detection', '',
            f'Classifiers trained on classes 0-{NEAR_CLASSES - 1}; in-distribution = their test images. AUROC and FPR at 95% TPR in %.', '',
            md_table(t), '', f"In-distribution accuracy: plain {_ms(acc[acc.method == 'plain'].auroc.values)}, "
            f"DiffAug {_ms(acc[acc.method == 'DiffAug'].auroc.values)}.", '',
            f"**Does DiffAug training improve OOD detection?** Mean AUROC change, DiffAug - plain, over scores: {words}. "
            f"DiffAug's AUROC is higher in {wins} of {total} (seed, set, score) cases.", '']

def section_certify(df, cfg):
    out = []
    for (m, s), g in df.groupby(['method', 'sigma'], sort=False):
        row = {'classifier': m, 'sigma': s, 'abstain %': _ms(g.groupby('seed').abstain.first().values)}
        for r in cfg['radii']: row[f'r={r}'] = _ms(g[g.radius == r].acc.values)
        out.append(row)
    best = df.groupby(['seed', 'method', 'radius']).acc.max().reset_index()
    rows = []
    for m in ('plain', 'DiffAug'):
        row = {'classifier': m + ' (best sigma per radius)'}
        for r in cfg['radii']: row[f'r={r}'] = _ms(best[(best.method == m) & (best.radius == r)].acc.values)
        rows.append(row)
    gap = (best[best.method == 'DiffAug'].set_index(['seed', 'radius']).acc - best[best.method == 'plain'].set_index(['seed', 'radius']).acc)
    g0 = gap.groupby(level='radius').mean() * 100
    return ['## 3. Certified l2 robustness (diffuse-denoise-classify)', '',
            f"Certified accuracy (%) of the first {cfg['cert_images']} test images, CERTIFY with n0={cfg['cert_n0']}, n={cfg['cert_n']}, "
            f"alpha={cfg['cert_alpha']}; sigma on the [0, 1] scale, radii in the same units.", '', md_table(pd.DataFrame(out)), '',
            md_table(pd.DataFrame(rows)), '', '**Which wins:** DiffAug - plain at the best sigma per radius: '
            + ', '.join(f"r={r}: {v:+.1f}" for r, v in g0.items()) + ' points.', '']

def section_gradients(df):
    t = df.groupby(['classifier', 't'], sort=False).alignment.apply(lambda v: _ms(v.values, 1., '.3f')).reset_index()
    w = t.pivot(index='classifier', columns='t', values='alignment').reset_index()
    w.columns = ['classifier'] + [f'cosine at t={c}' for c in w.columns[1:]]
    m = df.groupby(['classifier', 't']).alignment.mean().unstack('t')
    tl = m.columns.max()
    order = m[tl].sort_values(ascending=False)
    return ['## 4. Perceptually aligned gradients', '',
            'Mean cosine between the input gradient of log p(y | x_t) and the direction from x_t to its class mean at that step, '
            'a_t mu_y (0: unstructured; 1: straight at the class mean). t=0 rows use t=1 for the noisy and DA classifiers.', '', md_table(w), '',
            f"**Most aligned at t={tl}:** " + ' > '.join(f"{k} ({v:.3f})" for k, v in order.items()) + '.', '',
            '![gradients](robustness-gradients.png)', '']

def section_budget(df):
    t = df.groupby(['classifier', 't', 'labels'], sort=False).acc.apply(lambda v: _ms(v.values)).reset_index()
    w = t.pivot_table(index=['t', 'classifier'], columns='labels', values='acc', aggfunc='first').reset_index()
    w.columns = ['t', 'classifier'] + [f'{c:.0%} labels' for c in w.columns[2:]]
    w = w.fillna('-')  # TC needs unlabelled images: none at 100% labels
    lines = []
    for tt in sorted(df.t.unique()):
        for mode in ('noisy', 'da'):
            a = df[(df.t == tt) & (df.classifier == f'{mode} + TC')].set_index(['seed', 'labels']).acc
            b = df[(df.t == tt) & (df.classifier == mode)].set_index(['seed', 'labels']).acc
            d = (a - b).dropna().groupby(level='labels').mean() * 100
            if len(d): lines.append(f"{mode} at t={tt}: TC - no TC " + ', '.join(f"{k:.0%}: {v:+.1f}" for k, v in d.items()))
    return ['## 5. Label budgets: temporal consistency', '', 'Test accuracy (%); noisy and DA classifiers see the test images diffused '
            'to t (t=0 rows use t=1 for them); the plain baseline is trained on the labelled images only.', '', md_table(w), '',
            '**What temporal consistency adds:** ' + '; '.join(lines) + '.', '', '![budgets](robustness-budget.png)', '']

def plot_budget(df, path):
    import matplotlib.pyplot as plt
    ts = sorted(df.t.unique())
    fig, axs = plt.subplots(1, len(ts), figsize=(5 * len(ts), 3.6), squeeze=False)
    for ax, tt in zip(axs[0], ts):
        for name, g in df[df.t == tt].groupby('classifier', sort=False):
            s = g.groupby('labels').acc.agg(['mean', 'std', 'count']).reset_index()
            err = (s['std'].fillna(0) * 100) if s['count'].max() > 1 else None
            ax.errorbar(s['labels'] * 100, s['mean'] * 100, yerr=err, marker='o', capsize=3, label=name)
        ax.set_xscale('log'); ax.set_xlabel('labelled training images (%)'); ax.set_ylabel('test accuracy (%)')
        ax.set_title(f'test images at t={tt}', fontsize=9); ax.legend(fontsize=7)
    fig.tight_layout(); savefig(fig, path, dpi=120)

def plot_certify(df, path):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.6))
    best = df.groupby(['seed', 'method', 'radius']).acc.max().reset_index()
    for m, g in best.groupby('method', sort=False):
        s = g.groupby('radius').acc.agg(['mean', 'std', 'count']).reset_index()
        ax.errorbar(s['radius'], s['mean'] * 100, yerr=(s['std'].fillna(0) * 100) if s['count'].max() > 1 else None, marker='o', capsize=3, label=m)
    ax.set_xlabel('l2 radius (on [0, 1] images)'); ax.set_ylabel('certified accuracy (%)'); ax.legend(fontsize=8)
    ax.set_title('diffuse-denoise-classify, best sigma per radius', fontsize=9)
    fig.tight_layout(); savefig(fig, path, dpi=120)

def report(rows, cfg, meta, out, tag):
    L = [f"# Method B's full evaluation on {meta['data_name']} ({tag})", '', f"{meta['data']}; seeds {meta['seeds']} "
         f"({'mean ± std over seeds' if len(meta['seeds']) > 1 else 'one seed: single values'}). Denoiser {cfg['den_epochs']} epochs; "
         f"classifiers {cfg['cls_epochs']} epochs, batch {cfg['bs']}. {meta['machine']} " + (f"Total time {meta['minutes']:.1f} min." if meta['minutes'] == meta['minutes'] else '') + "", '']
    if rows['augmix']: L += section_augmix(pd.DataFrame(rows['augmix']), len(meta['seeds']))
    if rows['ood']: L += section_ood(pd.DataFrame(rows['ood']))
    if rows['certify']:
        d = pd.DataFrame(rows['certify']); L += section_certify(d, cfg) + ['![certified](robustness-certify.png)', '']
        plot_certify(d, out / 'robustness-certify.png')
    if rows['gradients']: L += section_gradients(pd.DataFrame(rows['gradients']))
    if rows['budget']:
        d = pd.DataFrame(rows['budget']); L += section_budget(d); plot_budget(d, out / 'robustness-budget.png')
    return '\n'.join(L).replace('robustness-gradients.png', f'robustness-{tag}-gradients.png') \
                       .replace('robustness-budget.png', f'robustness-{tag}-budget.png').replace('robustness-certify.png', f'robustness-{tag}-certify.png')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', choices=('digits', 'cifar10'), default='digits')
    p.add_argument('--cifar', default=None, help='folder holding cifar-10-batches-py/ (for --data cifar10)')
    p.add_argument('--quick', action='store_true', help='shorter training and fewer settings')
    p.add_argument('--toy', action='store_true', help='with --data cifar10: fake CIFAR-10 files at toy size (a CPU smoke test of the CIFAR path)')
    p.add_argument('--seeds', type=positive_int, default=3)
    p.add_argument('--first-seed', type=int, default=0, help='seeds run are first-seed .. first-seed + seeds - 1 (to split a run across processes)')
    p.add_argument('--report-only', nargs='+', default=None, metavar='DIR', help='rebuild the report of --tag from the CSVs in these folders (merged)')
    p.add_argument('--parts', nargs='+', choices=PARTS, default=list(PARTS))
    p.add_argument('--set', nargs='+', type=setting_arg, default=[], metavar='KEY=VALUE', help='override settings: ' + ', '.join(FULL))
    p.add_argument('--device', default=None)
    p.add_argument('--out', default=str(RESULTS))
    p.add_argument('--tag', default=None, help="report name (default: the data set, plus '-quick')")
    p.add_argument('--quiet', action='store_true')
    a = p.parse_args(argv)
    cfg = dict(QUICK if a.quick else FULL)
    bad = {k for k, _ in a.set} - set(cfg)
    if bad: p.error(f"unknown settings {sorted(bad)}; known: {sorted(cfg)}")
    cfg.update(dict(a.set))
    tag = a.tag or (a.data + ('-quick' if a.quick else ''))
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(a.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    T0 = time.time()
    log = (lambda m: None) if a.quiet else (lambda m: print(f"[{time.time() - T0:7.1f}s] {m}", flush=True))
    if a.report_only:
        rows = {k: [] for k in PARTS}
        for d in a.report_only:
            for k in PARTS:
                f = Path(d) / f'robustness-{tag}-{k}.csv'
                if f.exists(): rows[k] += pd.read_csv(f).to_dict('records')
        seeds = sorted({int(r['seed']) for v in rows.values() for r in v})
        for k, v in rows.items():
            if v: write_text_atomic(out / f'robustness-{tag}-{k}.csv', pd.DataFrame(v).sort_values('seed', kind='stable').to_csv(index=False))
        meta = dict(data_name=a.data, data='scikit-learn digits (1797 8x8 images), stratified 70/30 split per seed' if a.data == 'digits' else 'CIFAR-10',
                    seeds=seeds, minutes=float('nan'), machine='(report rebuilt from the CSVs of: ' + ', '.join(a.report_only) + ')')
        text = report({k: pd.DataFrame(v).sort_values('seed', kind='stable').to_dict('records') for k, v in rows.items()}, cfg, meta, out, tag)
        for f in ('robustness-certify.png', 'robustness-budget.png'):
            if (out / f).exists(): (out / f).replace(out / f.replace('robustness-', f'robustness-{tag}-'))
        write_text_atomic(out / f'robustness-{tag}.md', text)
        return log(f"wrote {out / f'robustness-{tag}.md'} from {len(seeds)} seeds")
    x, y, data_line = load_data(a)
    parts = set(a.parts)
    rows = {k: [] for k in PARTS}
    seeds = list(range(a.first_seed, a.first_seed + a.seeds))
    for seed in seeds:
        r = run_seed(seed, cfg, x, y, parts, dev, log, figdir=out if seed == seeds[0] else None)
        if seed == seeds[0] and (out / 'gradients.png').exists(): (out / 'gradients.png').replace(out / f'robustness-{tag}-gradients.png')
        for k, v in r.items(): rows[k] += v
        for k, v in rows.items():
            if v: write_text_atomic(out / f'robustness-{tag}-{k}.csv', pd.DataFrame(v).to_csv(index=False))
        meta = dict(data_name=a.data, data=data_line, seeds=seeds[:seeds.index(seed) + 1], minutes=(time.time() - T0) / 60,
                    machine=(torch.cuda.get_device_name(dev) + '.') if dev.type == 'cuda' else machine_line())
        text = report(rows, cfg, meta, out, tag)
        for f in ('robustness-certify.png', 'robustness-budget.png'):
            if (out / f).exists(): (out / f).replace(out / f.replace('robustness-', f'robustness-{tag}-'))
        write_text_atomic(out / f'robustness-{tag}.md', text)
        log(f"wrote {out / f'robustness-{tag}.md'} ({seeds.index(seed) + 1} of {len(seeds)} seeds)")

if __name__ == '__main__':
    main()
