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

    OMP_NUM_THREADS=1 python benchmarks/robustness.py                        # digits, 6 seeds, all parts (about 2.5 hours)
    OMP_NUM_THREADS=1 python benchmarks/robustness.py --first-seed 3 --seeds 3 --out /tmp/b   # half of them in a second process;
    python benchmarks/robustness.py --report-only benchmarks/results /tmp/b                   # then merge the CSVs
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
from _report import machine_line, write_text_atomic, positive_int, setting_arg, paired_test, paired_words, verdict, ns_note, ALPHA, paired_series, mean_sd
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
                                fpr_at_tpr, certify, certified_accuracy, gradient_alignment, class_alignment)

RESULTS = Path(__file__).resolve().parent / 'results'
PARTS = ('augmix', 'ood', 'certify', 'gradients', 'budget')
TABLES = PARTS + ('ood_sweep',)  # the ood part writes two CSVs
FULL = dict(den_epochs=30, cls_epochs=30, bs=128, kinds=list(CORRUPTIONS), severities=[1, 2, 3, 4, 5], de_steps=list(DE_STEPS),
            sigmas=[0.12, 0.25, 0.5], radii=[0, 0.125, 0.25, 0.5, 0.75, 1.0], cert_n0=100, cert_n=1000, cert_alpha=0.001,
            cert_images=200, grad_images=200, grad_t=[0, 300], budgets=[0.01, 0.05, 0.1, 0.25, 1.0], budget_steps=300,
            budget_t=[0, 300], width=None, den_base=64, ood_percentiles=[10, 30, 50, 65, 80, 90, 95, 99], ood_widths=[128])
QUICK = dict(FULL, den_epochs=5, cls_epochs=5, severities=[3, 5], de_steps=[0, 100, 200, 300], sigmas=[0.25], cert_n0=20,
             cert_n=100, cert_images=50, grad_images=50, budgets=[0.05, 1.0], budget_steps=60, ood_percentiles=[50, 90],
             ood_widths=[64])
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
    rows, seeds = {p: [] for p in TABLES}, Seeds(seed)
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
        # ce='mean': every training row has cross-entropy weight 1 (mode='diffaug' averages over its doubled batch); the paper sums
        L['AugMix + DiffAug'] = fit('plain', cbs=[AugMixDiffAugCB(den, ce='mean', random_state=seed)])
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
        base_w = cfg['width'] or (64 if big else 32)
        for width in [None] + [w for w in cfg['ood_widths'] if w != base_w]:
            for name, mode in (('plain', 'plain'), ('DiffAug', 'diffaug')):
                kw = {} if width is None else dict(model_kw=dict(mk, width=width))
                l6 = fit(mode, xtr[fit_idx], ytr[fit_idx], n_classes=NEAR_CLASSES, **kw)
                _, head = feature_head(l6)
                fi, li = features_logits(l6, xte[idm_te])
                wd = dict(seed=seed, method=name, width=width or base_w, features=fi.shape[1])
                ash_ps = [(m, p) for m in ('ash', 'scale') for p in cfg['ood_percentiles']]
                if width is None:  # the main table: every score at the published settings
                    c = react_threshold(features_logits(l6, xtr[hold])[0])
                    s_id = {m: ood_score(fi, li, m, head=head, react_clip=c) for m in OOD_SCORES}
                    rows['ood'].append(dict(seed=seed, method=name, ood_set='(in-distribution accuracy)', score='-',
                                            auroc=_acc(li, yte[idm_te]), fpr95=np.nan))
                for oname, xo in oods.items():
                    fo, lo = features_logits(l6, xo)
                    if width is None:
                        for m in OOD_SCORES:
                            so = ood_score(fo, lo, m, head=head, react_clip=c)
                            rows['ood'].append(dict(seed=seed, method=name, ood_set=oname, score=m, auroc=auroc(s_id[m], so), fpr95=fpr_at_tpr(s_id[m], so)))
                    # the ASH / SCALE percentile sweep, and the energy score they modify, at this feature width
                    e = auroc(ood_score(fi, li, 'energy'), ood_score(fo, lo, 'energy'))
                    rows['ood_sweep'].append(dict(wd, ood_set=oname, score='energy', percentile=np.nan, auroc=e))
                    for m, p in ash_ps:
                        a_ = auroc(ood_score(fi, None, m, head=head, percentile=p), ood_score(fo, None, m, head=head, percentile=p))
                        rows['ood_sweep'].append(dict(wd, ood_set=oname, score=m, percentile=p, auroc=a_))
                zero = float((fi <= 0).float().mean())  # share of penultimate features that are exactly 0 (ReLU) in distribution
                rows['ood_sweep'].append(dict(wd, ood_set='(in-distribution)', score='zero share', percentile=np.nan, auroc=zero))
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
                ca = class_alignment(gr, yte[gi], means)  # the control: toward mu_y - mu_k against the same for wrong classes
                rows['gradients'].append(dict(seed=seed, classifier=name, t=t, alignment=float(cos.mean()), alignment_sd=float(cos.std()),
                                              true=float(ca['true'].mean()), control=float(ca['control'].mean()),
                                              margin=float(ca['margin'].mean()), margin_sd=float(ca['margin'].std())))
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

_ms = mean_sd

_paired = paired_series

def _words(t, scale=100., unit=' points') -> str:
    "A paired comparison in words: who is ahead, in how many seeds, and whether that is significant."
    if t['p'] < ALPHA: head = 'ahead' if t['mean'] > 0 else 'behind'
    elif t['wins'] in (0, t['n']) and t['mean'] != 0: head = ('ahead' if t['mean'] > 0 else 'behind') + ' in every seed'
    else: head = 'a tie'
    return f"{head}, {t['mean'] * scale:+.{3 if scale == 1 else 1}f}{unit} ({t['wins']}/{t['n']} seeds higher, {verdict(t)})"

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
    per = {(m, de): (g[g.corruption != 'clean'].groupby('seed').acc.mean(), g[g.corruption == 'clean'].groupby('seed').acc.mean())
           for (m, de), g in df.groupby(['method', 'de'], sort=False)}
    comparisons = [(('DiffAug', False), ('plain', False)), (('DiffAug', True), ('plain', False)), (('AugMix', False), ('plain', False)),
                   (('AugMix + DiffAug', False), ('AugMix', False)), (('AugMix + DiffAug', False), ('DiffAug', False)),
                   (('AugMix + DiffAug', True), ('DiffAug', True)), (('DiffAug', True), ('DiffAug', False)),
                   (('plain', True), ('plain', False)), (('AugMix', True), ('AugMix', False))]
    name = lambda k: k[0] + (' + DE' if k[1] else '')
    diffs, tests = [], {}
    for a, b in comparisons:
        if a not in per or b not in per: continue
        tc, tl = _paired(per[a][0], per[b][0]), _paired(per[a][1], per[b][1])
        tests[a, b] = tc
        diffs.append({'comparison': f'{name(a)} - {name(b)}', 'corrupted (points)': paired_words(tc, mark=True),
                      'clean (points)': paired_words(tl, mark=True)})
    n = len(df.seed.unique())
    lines = []
    for (a, b), tc in tests.items():
        lines.append(f"{name(a)} - {name(b)}: {_words(tc)}")
    return ['## 1. AugMix + DiffAug on the standard corruptions', '',
            'Accuracy (%) on clean test images and averaged over the 15 standard corruptions (imagecorruptions, with ImageNet-C\'s '
            'parameters, applied at 32x32) per severity. AugMix uses the AugMix paper\'s operations (no colour, contrast, brightness '
            'or sharpness), severity 1, width 3, depth 1-3. Every training row has cross-entropy weight 1: AugMix + DiffAug averages '
            'CE(clean) and CE(DiffAug) (`AugMixDiffAugCB(ce=\'mean\')`), as `mode=\'diffaug\'` averages over its doubled batch; the '
            'paper sums them. DE = the DiffAug Ensemble: per image 9 denoiser passes (steps 50 to 450) and 10 classifier passes (step 0 is the image itself).', '',
            md_table(t), '', f"**Which row wins:** {name((best[0], best[1] == 'yes'))} on corrupted images ({means[best]:.1f}%).", '',
            md_table(pd.DataFrame(diffs)), '', ns_note(n), '', '**In words** (corrupted accuracy): ' + '; '.join(lines) + '.', '']

def section_ood(df):
    acc = df[df.score == '-']
    d = df[df.score != '-']
    out, n = [], len(df.seed.unique())
    for (oset, score), g in d.groupby(['ood_set', 'score'], sort=False):
        row = {'OOD set': oset, 'score': score}
        for m in ('plain', 'DiffAug'):
            gm = g[g.method == m]
            row[f'{m} AUROC'] = _ms(gm.auroc.values); row[f'{m} FPR95'] = _ms(gm.fpr95.values)
        t = _paired(g[g.method == 'DiffAug'].set_index('seed').auroc, g[g.method == 'plain'].set_index('seed').auroc)
        row['AUROC DiffAug - plain'] = paired_words(t, mark=True)
        out.append(row)
    t = pd.DataFrame(out)
    lines = []
    for oset, g in d.groupby('ood_set', sort=False):
        for score in ('energy', 'msp'):
            gs = g[g.score == score]
            tt = _paired(gs[gs.method == 'DiffAug'].set_index('seed').auroc, gs[gs.method == 'plain'].set_index('seed').auroc)
            lines.append(f"{oset}, {score}: {_words(tt)}")
    below = sorted({f"{r['score']} ({r['OOD set']})" for r in out for m in ('plain', 'DiffAug')
                    if float(str(r[f'{m} AUROC']).split(' ')[0]) < 50})
    return ['## 2. Out-of-distribution detection', '',
            f'Classifiers trained on classes 0-{NEAR_CLASSES - 1}; in-distribution = their test images. AUROC and FPR at 95% TPR in %; '
            'ASH and SCALE at their published percentile 90 (their sweep is in section 2b).', '',
            md_table(t), '', ns_note(n), '', f"In-distribution accuracy: plain {_ms(acc[acc.method == 'plain'].auroc.values)}, "
            f"DiffAug {_ms(acc[acc.method == 'DiffAug'].auroc.values)}.", '',
            "**Does DiffAug training improve OOD detection?** Per set, for the energy and MSP scores, DiffAug - plain AUROC: "
            + '; '.join(lines) + '. Scores below chance (AUROC < 50) for either classifier: ' + (', '.join(below) or 'none')
            + '; they are not averaged into any summary.', '']

def section_ood_sweep(df):
    zero = df[df.score == 'zero share']
    d = df[df.score != 'zero share']
    widths = sorted(d.width.unique())
    out = []
    for (oset, w, score, p), g in d.groupby(['ood_set', 'width', 'score', 'percentile'], sort=True, dropna=False):
        row = {'OOD set': oset, 'features': int(g.features.iloc[0]), 'score': score if score == 'energy' else f'{score} p{int(p)}'}
        for m in ('plain', 'DiffAug'): row[f'{m} AUROC'] = _ms(g[g.method == m].auroc.values)
        out.append(row)
    t = pd.DataFrame(out)
    best = []
    for (oset, w, score), g in d[d.score != 'energy'].groupby(['ood_set', 'width', 'score']):
        m = g.groupby('percentile').auroc.mean()
        e = d[(d.ood_set == oset) & (d.width == w) & (d.score == 'energy')].auroc.mean()
        best.append(f"{score} at {int(g.features.iloc[0])} features, {oset}: best percentile {int(m.idxmax())} "
                    f"({m.max() * 100:.1f}, energy {e * 100:.1f})")
    zs = ', '.join(f"{int(g.features.iloc[0])} features: {g.auroc.mean() * 100:.0f}%" for w, g in zero.groupby('width'))
    return ['## 2b. ASH and SCALE: percentile sweep and feature width', '',
            'AUROC (%) of ASH-S and SCALE over the pruning percentile p, next to the energy score they modify, for the classifiers '
            f'of section 2 and for the same classifiers trained with wider penultimate layers ({", ".join(str(int(f)) for f in sorted(d.features.unique()))} '
            'features). Share of '
            f'in-distribution penultimate features that are exactly 0 (after the ReLU): {zs}.', '', md_table(t), '',
            '**Best percentile per setting (mean AUROC over seeds):** ' + '; '.join(best) + '.', '']

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
    row, lines = {'classifier': 'DiffAug - plain (points)'}, []
    for r in cfg['radii']:
        b = best[best.radius == r]
        t = _paired(b[b.method == 'DiffAug'].set_index('seed').acc, b[b.method == 'plain'].set_index('seed').acc)
        row[f'r={r}'] = paired_words(t, mark=True)
        if t['sd'] == t['sd'] and (t['sd'] > 0 or t['mean'] != 0): lines.append(f"r={r}: {_words(t)}")
    rows.append(row)
    return ['## 3. Certified l2 robustness (diffuse-denoise-classify)', '',
            f"Certified accuracy (%) of the first {cfg['cert_images']} test images, CERTIFY with n0={cfg['cert_n0']}, n={cfg['cert_n']}, "
            f"alpha={cfg['cert_alpha']}; sigma on the [0, 1] scale, radii in the same units.", '', md_table(pd.DataFrame(out)), '',
            md_table(pd.DataFrame(rows)), '', ns_note(len(df.seed.unique())), '',
            '**Which wins:** DiffAug - plain at the best sigma per radius: ' + '; '.join(lines) + '.', '']

def section_gradients(df):
    n = len(df.seed.unique())
    cols = {}
    for col in ('margin', 'alignment'):
        t = df.groupby(['classifier', 't'], sort=False)[col].apply(lambda v: _ms(v.values, 1., '.3f')).reset_index()
        w = t.pivot(index='classifier', columns='t', values=col)
        for c in w.columns: cols[f"{'class margin' if col == 'margin' else 'raw cosine'} t={c}"] = w[c]
    w = pd.DataFrame(cols).reset_index()
    ts = sorted(df.t.unique())
    lines = []
    for tt in ts:
        m = df[df.t == tt].groupby('classifier').margin.mean().sort_values(ascending=False)
        top, second = m.index[0], m.index[1]
        a_ = df[(df.t == tt) & (df.classifier == top)].set_index('seed').margin
        b_ = df[(df.t == tt) & (df.classifier == second)].set_index('seed').margin
        tt_ = _paired(a_, b_)
        lines.append(f"t={tt}: " + ' > '.join(f"{k} ({v:.3f})" for k, v in m.items())
                     + f"; {top} - {second}: {_words(tt_, 1., '')}")
    for name in ('DiffAug', 'DA', 'noisy'):
        for tt in ts:
            a_ = df[(df.t == tt) & (df.classifier == name)].set_index('seed').margin
            b_ = df[(df.t == tt) & (df.classifier == 'plain')].set_index('seed').margin
            if len(a_) and len(b_):
                t_ = _paired(a_, b_)
                lines.append(f"{name} - plain at t={tt}: {_words(t_, 1., '')}")
    return ['## 4. Perceptually aligned gradients', '',
            'The **class margin** (`diffaug.robustness.class_alignment`): the mean cosine between the input gradient of log p(y | x_t) and '
            'the noise-free directions mu_y - mu_k from every other class k toward the true class, minus the same for the wrong '
            'classes in place of y (the control; 0 for gradients with no preference for the true class, such as pure denoising). '
            'The **raw cosine** toward a_t mu_y - x_t is shown for reference: at t=300 its noise part dominates, so it rewards '
            'gradients that remove noise. Means over 200 test images, then mean ± sd over seeds. t=0 rows use t=1 for the noisy and '
            'DA classifiers.', '', md_table(w), '',
            '**Ranking by class margin:** ' + '; '.join(lines) + '.', '', '![gradients](robustness-gradients.png)', '']

def section_budget(df):
    t = df.groupby(['classifier', 't', 'labels'], sort=False).acc.apply(lambda v: _ms(v.values)).reset_index()
    w = t.pivot_table(index=['t', 'classifier'], columns='labels', values='acc', aggfunc='first').reset_index()
    w.columns = ['t', 'classifier'] + [f'{c:.0%} labels' for c in w.columns[2:]]
    w = w.fillna('-')  # TC needs unlabelled images: none at 100% labels
    rows = []
    for tt in sorted(df.t.unique()):
        for mode in ('noisy', 'da'):
            row = {'t': tt, 'TC - no TC': mode}
            for frac in sorted(df.labels.unique()):
                a = df[(df.t == tt) & (df.classifier == f'{mode} + TC') & (df.labels == frac)].set_index('seed').acc
                b = df[(df.t == tt) & (df.classifier == mode) & (df.labels == frac)].set_index('seed').acc
                if len(a): row[f'{frac:.0%} labels'] = paired_words(_paired(a, b), mark=True)
            rows.append(row)
    return ['## 5. Label budgets: temporal consistency', '', 'Test accuracy (%). Noisy and DA classifiers classify the test images '
            'diffused to t (t=0 rows use t=1 for them). The plain baseline is trained on the labelled images only and, at t=300, '
            'classifies the raw noisy x_t (it was never trained on noise).', '', md_table(w), '',
            '**What temporal consistency adds** (paired, points):', '', md_table(pd.DataFrame(rows)), '', ns_note(len(df.seed.unique())),
            '', '![budgets](robustness-budget.png)', '']

def plot_budget(df, path):
    import matplotlib.pyplot as plt
    ts = sorted(df.t.unique())
    fig, axs = plt.subplots(1, len(ts), figsize=(min(8.5, 4.2 * len(ts)), 4.2), squeeze=False)  # page width
    for ax, tt in zip(axs[0], ts):
        for name, g in df[df.t == tt].groupby('classifier', sort=False):
            s = g.groupby('labels').acc.agg(['mean', 'std', 'count']).reset_index()
            err = (s['std'].fillna(0) * 100) if s['count'].max() > 1 else None
            ax.errorbar(s['labels'] * 100, s['mean'] * 100, yerr=err, marker='o', ms=4, capsize=3, label=name)
        ax.set_xscale('log'); ax.set_xlabel('labelled training images (%)', fontsize=9); ax.set_ylabel('test accuracy (%)', fontsize=9)
        ax.set_title(f'test images at t={tt}', fontsize=9); ax.tick_params(labelsize=8)
    h, l = axs[0, 0].get_legend_handles_labels()
    fig.legend(h, l, loc='lower center', ncol=3, fontsize=8.5, frameon=False)  # one legend for both panels, below them
    fig.tight_layout(rect=(0, 0.14, 1, 1)); savefig(fig, path, dpi=120)

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
    if rows.get('ood_sweep'): L += section_ood_sweep(pd.DataFrame(rows['ood_sweep']))
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
    p.add_argument('--seeds', type=positive_int, default=6, help='number of seeds (6: the fewest for which an exact two-sided paired test can reach p < 0.05)')
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
        rows = {k: [] for k in TABLES}
        for d in a.report_only:
            for k in TABLES:
                f = Path(d) / f'robustness-{tag}-{k}.csv'
                if f.exists(): rows[k] += pd.read_csv(f).to_dict('records')
        seeds = sorted({int(r['seed']) for v in rows.values() for r in v})
        for k, v in rows.items():
            if v: write_text_atomic(out / f'robustness-{tag}-{k}.csv', pd.DataFrame(v).sort_values('seed', kind='stable').to_csv(index=False))
        meta = dict(data_name=a.data, data='scikit-learn digits (1797 8x8 images), stratified 70/30 split per seed' if a.data == 'digits' else 'CIFAR-10',
                    seeds=seeds, minutes=float('nan'), machine='')
        text = report({k: pd.DataFrame(v).sort_values('seed', kind='stable').to_dict('records') for k, v in rows.items()}, cfg, meta, out, tag)
        for f in ('robustness-certify.png', 'robustness-budget.png'):
            if (out / f).exists(): (out / f).replace(out / f.replace('robustness-', f'robustness-{tag}-'))
        write_text_atomic(out / f'robustness-{tag}.md', text)
        return log(f"wrote {out / f'robustness-{tag}.md'} from {len(seeds)} seeds")
    x, y, data_line = load_data(a)
    parts = set(a.parts)
    rows = {k: [] for k in TABLES}
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
