"""Every results number of method B in the README and the tutorials, computed from the committed CSVs.

    python tools/results_claims.py            # rewrite the generated blocks in nbs/ (then: python tools/build_readme.py)
    python tools/results_claims.py --check    # exit 1 if a block differs from what the CSVs give (the tests run this)
    python tools/results_claims.py --show NAME

A generated block sits in a markdown cell of nbs/index.ipynb (the README is built from it) or of a tutorial, between
the lines `<!-- claims:NAME -->` and `<!-- /claims:NAME -->`; NAME is one of the blocks in `BLOCKS` below. Nothing
between the markers is typed by hand: edit this script, not the block.

Every comparison is paired over seeds with `benchmarks/_report.paired_test` (exact two-sided sign-flip test) and says
whether it is significant at the number of seeds it has. Each measure gets one statement: the paper's claim
reproduces (same direction, significant), points the same way without being significant, ties, or does not reproduce.
"""
from __future__ import annotations
import argparse, json, re, sys
from pathlib import Path
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'benchmarks'))
from _report import paired_test, paired_series, mean_sd, verdict as _verdict, ALPHA  # noqa: E402
from diffaug.report import md_table  # noqa: E402

RES = ROOT / 'benchmarks' / 'results'

# ------------------------------------------------------------------------------------------------ helpers

def _csv(name, res=None): return pd.read_csv((res or RES) / name)

_ms = mean_sd

def verdict(t) -> str:
    "'significant at n seeds' or 'not significant at n seeds' (the p is in the numbers next to it)."
    return _verdict(t, with_p=False)

def _m(v, scale=100., fmt='.1f'): return f"{np.mean(np.asarray(v, float)) * scale:{fmt}}"

_pair = paired_series

def _d(t, scale=100., digits=1) -> str:
    "'+1.2 ± 0.8 (4/5, p 0.19)' of a paired test: mean ± sd of the differences, seeds higher / seeds, exact p."
    sd = '' if t['sd'] != t['sd'] else f" ± {t['sd'] * scale:.{digits}f}"
    return f"{t['mean'] * scale:+.{digits}f}{sd} ({t['wins']}/{t['n']}, p {t['p']:.2g})"

def summary(items) -> str:
    "Statuses of several sub-measures `[(label, status)]` as one statement: labels that share a status are listed together."
    groups = {}
    for label, st in items: groups.setdefault(st, []).append(label)
    if len(groups) == 1: return next(iter(groups))
    return '; '.join(f"{', '.join(ls)}: {st}" for st, ls in groups.items())

_SEEN = None  # while `method_b_rows` runs: every status it gives, for the summary sentence

def status(t, paper_sign:int) -> str:
    s = _status(t, paper_sign)
    if _SEEN is not None: _SEEN.append((s, t['p']))
    return s

def holm(ps, alpha=ALPHA) -> int:
    "How many of the p values stay significant after Holm's step-down correction for their number."
    k = 0
    for i, p in enumerate(sorted(ps)):
        if p < alpha / (len(ps) - i): k += 1
        else: break
    return k

def _status(t, paper_sign:int) -> str:
    """One word for a paired difference against the paper's direction (+1: the paper says higher, -1: lower, 0: the
    paper claims no change): reproduces / same direction, not significant / does not reproduce."""
    if t['n'] == 0: return 'not measured'
    sig, up = t['p'] < ALPHA, t['mean'] > 0
    if paper_sign == 0: return 'ties, as claimed' if not sig else 'does not reproduce (a significant change)'
    agrees = up == (paper_sign > 0) and t['mean'] != 0
    if sig: return '**reproduces**' if agrees else '**does not reproduce** (significantly the other way)'
    if agrees and t['wins'] in (0, t['n']): return f"same direction in every seed, not significant at {t['n']} seeds"
    if agrees: return f"a tie (same direction on average, not significant at {t['n']} seeds)"
    if t['wins'] in (0, t['n']): return f"**does not reproduce**: the other way in every seed, not significant at {t['n']} seeds"
    return f"**does not reproduce** (a tie, the other way on average)"

def _per_seed(df, mask, value, by='seed'): return df[mask].groupby(by)[value].mean()

# ------------------------------------------------------------------------------------------------ the measures

def da_vs_noisy(res=None):
    n = _csv('classify_noise.csv', res)
    out = []
    for t in (200, 300, 400, 600):
        a = _per_seed(n, (n.t == t) & (n.classifier == 'DA'), 'acc'); b = _per_seed(n, (n.t == t) & (n.classifier == 'noisy'), 'acc')
        out.append((t, _pair(a, b)))
    return out

def guidance(res=None):
    g = _csv('classify_guidance.csv', res)
    g = g[g.scale == 5.0]
    a, b = g[g.classifier == 'DA'].set_index('seed'), g[g.classifier == 'noisy'].set_index('seed')
    return dict(cons=_pair(a.consistency, b.consistency), fid=_pair(a.fid, b.fid), a=a, b=b)

def corruptions(res=None):
    "Standard corruptions from the robustness benchmark's AugMix part: per (method, DE) per-seed corrupted and clean means."
    df = _csv('robustness-digits-augmix.csv', res)
    per = {}
    for (m, de), g in df.groupby(['method', 'de']):
        per[m, bool(de)] = (g[g.corruption != 'clean'].groupby('seed').acc.mean(), g[g.corruption == 'clean'].groupby('seed').acc.mean())
    return per

def tensor_corruptions(res=None):
    r = _csv('classify_robust.csv', res)
    c = r[r.corruption != 'clean']
    return {m: g.groupby('seed').acc.mean() for m, g in c.groupby('method')}

def ood(res=None):
    d = _csv('robustness-digits-ood.csv', res)
    d = d[d.score != '-']
    out = {}
    for (oset, score), g in d.groupby(['ood_set', 'score']):
        a, b = g[g.method == 'DiffAug'].set_index('seed').auroc, g[g.method == 'plain'].set_index('seed').auroc
        out[oset, score] = (a, b, _pair(a, b))
    return out

def ood_sweep(res=None):
    f = (res or RES) / 'robustness-digits-ood_sweep.csv'
    return pd.read_csv(f) if f.exists() else None

def certified(res=None):
    d = _csv('robustness-digits-certify.csv', res)
    best = d.groupby(['seed', 'method', 'radius']).acc.max().reset_index()
    out = {}
    for r, g in best.groupby('radius'):
        a, b = g[g.method == 'DiffAug'].set_index('seed').acc, g[g.method == 'plain'].set_index('seed').acc
        out[r] = (a, b, _pair(a, b))
    return out

def gradients(res=None):
    d = _csv('robustness-digits-gradients.csv', res)
    col = 'margin' if 'margin' in d else 'alignment'
    return d, col

def budget(res=None):
    d = _csv('robustness-digits-budget.csv', res)
    out = {}
    for mode in ('noisy', 'da'):
        for frac in sorted(d.labels.unique()):
            a = d[(d.t == 0) & (d.classifier == f'{mode} + TC') & (d.labels == frac)].set_index('seed').acc
            b = d[(d.t == 0) & (d.classifier == mode) & (d.labels == frac)].set_index('seed').acc
            if len(a): out[mode, frac] = _pair(a, b)
    return d, out

# ------------------------------------------------------------------------------------------------ blocks

def method_b_rows(res=None) -> list:
    "`[(measure, data, result, against the paper)]`, one row per measure of method B."
    rows = []
    dn = da_vs_noisy(res)
    rows.append(('DA - noisy classifier on the same x_t (accuracy points)', f"digits, {dn[0][1]['n']} seeds",
                 '; '.join(f"t={t}: {_d(tt)}" for t, tt in dn),
                 'DA beats noisy: ' + summary([(f't={t}', status(tt, +1)) for t, tt in dn])))
    g = guidance(res)
    rows.append(('guided DDIM-50, scale 5: class consistency (%) / feature FID', f"digits, {g['cons']['n']} seeds",
                 f"DA {_m(g['a'].consistency)} / {_m(g['a'].fid, 1., '.2f')}, noisy {_m(g['b'].consistency)} / {_m(g['b'].fid, 1., '.2f')}; "
                 f"DA - noisy consistency {_d(g['cons'])}, FID {_d(g['fid'], 1., 2)}",
                 'DA guidance is better: ' + summary([('consistency', status(g['cons'], +1)), ('FID', status(g['fid'], -1))])))
    per = corruptions(res)
    n = len(per['plain', False][0])
    t_da = _pair(per['DiffAug', False][0], per['plain', False][0])
    t_de = _pair(per['DiffAug', True][0], per['plain', False][0])
    t_ens = _pair(per['DiffAug', True][0], per['DiffAug', False][0])
    rows.append(('accuracy (%) over the 15 standard corruptions x 5 severities (imagecorruptions, ImageNet-C parameters, at 32x32)',
                 f'digits, {n} seeds',
                 f"plain {_m(per['plain', False][0])}, DiffAug {_m(per['DiffAug', False][0])}, **DiffAug + Ensemble "
                 f"{_m(per['DiffAug', True][0])}**; DiffAug - plain {_d(t_da)}; the Ensemble on top {_d(t_ens)}",
                 'DiffAug training and the Ensemble improve robustness: ' + summary([('DiffAug', status(t_da, +1)), ('Ensemble', status(t_ens, +1))])))
    t_clean = _pair(per['DiffAug', True][1], per['DiffAug', False][1])
    t_plain_de = _pair(per['plain', True][0], per['plain', False][0])
    big = t_clean['mean'] * 100 < -0.3
    rows.append(('clean accuracy of DiffAug + Ensemble - DiffAug (points); the Ensemble on a plain classifier, corrupted', f'digits, {n} seeds',
                 f"{_d(t_clean)}; plain + Ensemble - plain {_d(t_plain_de)}",
                 "the paper's ImageNet tables lose 0.1-0.2 clean points: " + (f"**does not reproduce**: the cost is larger ({verdict(t_clean)})"
                  if big and t_clean['p'] < ALPHA else f"a cost of {-t_clean['mean'] * 100:.1f} points, not distinguishable from it at {t_clean['n']} seeds"
                  if big else 'reproduces')))
    tc = tensor_corruptions(res)
    t_tc = _pair(tc['DiffAug + DE'], tc['plain'])
    rows.append(("accuracy (%) over the package's 7 tensor corruptions", f"digits, {t_tc['n']} seeds",
                 f"plain {_m(tc['plain'])}, DiffAug {_m(tc['DiffAug'])}, DiffAug + Ensemble {_m(tc['DiffAug + DE'])}; "
                 f"DiffAug + Ensemble - plain {_d(t_tc)}", f"DiffAug + Ensemble improves robustness: {status(t_tc, +1)}"))
    if ('AugMix', False) in per:
        t_am = _pair(per['AugMix', False][0], per['plain', False][0])
        t_amda = _pair(per['AugMix + DiffAug', False][0], per['AugMix', False][0])
        t_amde = _pair(per['AugMix + DiffAug', True][0], per['DiffAug', True][0])
        rows.append(("AugMix and AugMix + DiffAug (without / with Ensemble), corrupted accuracy (%), equal cross-entropy weight",
                     f'digits, {n} seeds',
                     f"AugMix {_m(per['AugMix', False][0])} / {_m(per['AugMix', True][0])}, AugMix + DiffAug "
                     f"{_m(per['AugMix + DiffAug', False][0])} / {_m(per['AugMix + DiffAug', True][0])}; AugMix - plain {_d(t_am)}; "
                     f"AugMix + DiffAug - AugMix {_d(t_amda)}; AugMix + DiffAug + Ensemble - DiffAug + Ensemble {_d(t_amde)}",
                     "AM+DiffAug beats AugMix (the paper: +2.8 at ImageNet-C severity 5): " + status(t_amda, +1)
                     + '; AugMix on top of DiffAug + Ensemble: ' + status(t_amde, +1)))
    o = ood(res)
    items, parts = [], []
    for key, label in ((('near: held-out classes', 'energy'), 'near (digits 6-9)'), (('far: photo patches', 'energy'), 'far (photo patches)'),
                       (('far: uniform noise', 'energy'), 'far (uniform noise)')):
        if key not in o: continue
        a_, b_, t_ = o[key]
        parts.append(f"{label}: {_ms(b_)} -> {_ms(a_)}, {_d(t_)}"); items.append((label, status(t_, +1)))
    rows.append(('OOD detection, energy AUROC (%), plain -> DiffAug training', f"digits 0-5, {o['near: held-out classes', 'energy'][2]['n']} seeds",
                 '; '.join(parts), 'DiffAug training improves OOD detection: ' + summary(items)
                 + " (the paper's claim, ImageNet near-OOD with SCALE after AM+DiffAug, is not tested here)"))
    sw = ood_sweep(res)
    if sw is not None:
        s_ = sw[sw.score.isin(['ash', 'scale']) & (sw.ood_set == 'near: held-out classes')]
        e = sw[(sw.score == 'energy') & (sw.ood_set == 'near: held-out classes')]
        best = s_.groupby(['features', 'score', 'percentile']).auroc.mean()
        parts, items = [], []
        for (feat, score), b_ in best.groupby(level=[0, 1]):
            ef = e[e.features == feat].auroc.mean()
            p90 = b_.xs(90, level=2).iloc[0]
            parts.append(f"{score}, {feat} features: p{int(b_.idxmax()[2])} {b_.max() * 100:.1f} (p90 {p90 * 100:.1f}) vs energy {ef * 100:.1f}")
            best_w = ('beats energy' if b_.max() > ef + 0.005 else 'ties energy' if b_.max() > ef - 0.005 else 'below energy')
            items.append((f"{score.upper()} at {feat} features", f"{best_w} at its best percentile, "
                          + ('below chance' if p90 < 0.5 else 'below energy' if p90 < ef - 0.005 else 'as good') + ' at the published p90'))
        rows.append(('ASH-S / SCALE, near-OOD AUROC (%) at the best pruning percentile of a sweep (and at the published p90)',
                     f"digits 0-5, {len(s_.seed.unique())} seeds, plain and DiffAug classifiers pooled", '; '.join(parts),
                     summary(items) + ('; the wider layer does not change this' if all(
                         len({st for lab, st in items if lab.startswith(sc.upper() + ' ')}) == 1 for sc in ('ash', 'scale')) else '')))
    c = certified(res)
    rr = [r for r in (0.25, 0.5, 0.75) if r in c]
    rows.append(('certified l2 accuracy (%), diffuse-denoise-classify, best sigma, r = ' + ' / '.join(str(r) for r in rr),
                 f"digits, 200 images, {c[rr[0]][2]['n']} seeds",
                 f"plain {' / '.join(_m(c[r][1]) for r in rr)}, DiffAug {' / '.join(_m(c[r][0]) for r in rr)}; DiffAug - plain "
                 + '; '.join(f"r={r}: {_d(c[r][2])}" for r in rr),
                 'DiffAug training raises certified accuracy: ' + summary([(f"r={r}", status(c[r][2], +1)) for r in rr])))
    gd, col = gradients(res)
    lines, items = [], []
    for tt in sorted(gd.t.unique()):
        m = gd[gd.t == tt].groupby('classifier')[col].mean().sort_values(ascending=False)
        lines.append(f"t={tt}: " + ', '.join(f"{k} {v:.3f}" for k, v in m.items()))
        for name, other in (('DA', 'noisy'), ('DiffAug', 'plain')):
            t_ = _pair(gd[(gd.t == tt) & (gd.classifier == name)].set_index('seed')[col],
                       gd[(gd.t == tt) & (gd.classifier == other)].set_index('seed')[col])
            items.append((f"{name} > {other} at t={tt}", status(t_, +1)))
    what = ('gradient class margin: cosine toward mu_y - mu_k, true class minus wrong classes' if col == 'margin'
            else 'gradient alignment (cosine to the class-mean direction)')
    rows.append((what, f"digits, 200 images, {len(gd.seed.unique())} seeds", '; '.join(lines),
                 'perceptually aligned gradients (DA over noisy, DiffAug over plain): ' + summary(items)))
    bd, tcs = budget(res)
    fr = [f for f in (0.01, 0.05, 0.1) if ('noisy', f) in tcs]
    rows.append(('temporal consistency: TC - no TC at ' + ' / '.join(f'{f:.0%}' for f in fr) + ' labels (accuracy points)',
                 f"digits, {tcs['noisy', fr[0]]['n']} seeds",
                 '; '.join(f"{label}: " + ' / '.join(_d(tcs[mode, f]) for f in fr) for mode, label in (('noisy', 'noisy'), ('da', 'DA'))),
                 'TC helps with few labels: ' + summary([(f"{label} at {f:.0%}", status(tcs[mode, f], +1)) for mode, label in (('noisy', 'noisy'), ('da', 'DA')) for f in fr])))
    return rows

def readme_method_b_summary(res=None) -> str:
    "One sentence under the README's method B table: how many of its comparisons reproduce the paper's direction."
    global _SEEN
    _SEEN = []
    try: method_b_rows(res)
    finally: seen, _SEEN = _SEEN, None
    k = lambda *keys: sum(any(x in s for x in keys) for s, _ in seen)
    rep, same, notrep = k('**reproduces**'), k('same direction in every seed'), k('**does not reproduce**')
    tie = len(seen) - rep - same - notrep
    h = holm([p for _, p in seen])
    return (f"Of the {len(seen)} comparisons with the papers' claims in this table, {rep} reproduce (same direction, significant), "
            f"{same} point the paper's way in every seed without being significant at their number of seeds, {tie} tie and "
            f"{notrep} go the other way on average. Each p is for its own comparison; corrected for all {len(seen)} at once "
            f"(Holm), {h} stay significant. An exact sign-flip test over n seeds cannot give p below 2 / 2^n "
            f"(0.25 at 3 seeds, 0.062 at 5, 0.031 at 6).")

def readme_method_b(res=None) -> str:
    head = ['| measure | data | result (paired: mean ± sd of the differences, seeds higher / seeds, exact p) | against the paper |',
            '|---|---|---|---|']
    return '\n'.join(head + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in method_b_rows(res)])

def _table(rows:list) -> str: return md_table(pd.DataFrame(rows))

def digits_corruptions(res=None) -> str:
    "The digits tutorial, section 4: DiffAug and the Ensemble on the standard corruptions."
    df = _csv('robustness-digits-augmix.csv', res)
    per = corruptions(res)
    n = len(per['plain', False][0])
    rows = []
    for m, de in (('plain', False), ('plain', True), ('DiffAug', False), ('DiffAug', True)):
        g = df[(df.method == m) & (df.de == de)]
        rows.append({'training': m + (' + DE' if de else ''), 'clean': _ms(per[m, de][1]), 'mean over 15 corruptions x 5 severities': _ms(per[m, de][0]),
                     'severity 5': _ms(g[(g.corruption != 'clean') & (g.severity == 5)].groupby('seed').acc.mean())})
    t_de = _pair(per['DiffAug', True][0], per['plain', False][0]); t_da = _pair(per['DiffAug', False][0], per['plain', False][0])
    t_cl = _pair(per['DiffAug', False][1], per['plain', False][1]); t_cost = _pair(per['DiffAug', True][1], per['DiffAug', False][1])
    t_pde = _pair(per['plain', True][0], per['plain', False][0]); t_pcl = _pair(per['plain', True][1], per['plain', False][1])
    by = df[df.corruption != 'clean'].groupby(['method', 'de', 'corruption']).acc.mean() * 100
    gain = (by['DiffAug', True] - by['plain', False]).sort_values()
    top = ', '.join(f"{k.replace('_', ' ')} {by['plain', False][k]:.1f} -> {by['DiffAug', True][k]:.1f}" for k in gain.index[::-1][:4])
    low = ', '.join(f"{k.replace('_', ' ')} {gain[k]:+.1f}" for k in gain.index[:3])
    tc = tensor_corruptions(res)
    t_tc = _pair(tc['DiffAug + DE'], tc['plain'])
    return '\n'.join([
        f"**At full size** (`benchmarks/robustness.py`, {n} seeds, a 70/30 split per seed, 30-epoch denoiser and classifiers), "
        "accuracy in %, mean ± sd over seeds:", '', _table(rows), '',
        f"DiffAug training with the Ensemble wins: {_d(t_de)} points over plain training on corrupted digits (paired by seed: "
        f"mean ± sd of the differences, seeds higher / seeds, exact sign-flip p; {verdict(t_de)}). DiffAug training alone gives "
        f"{_d(t_da)} and keeps clean accuracy ({_d(t_cl)}). The Ensemble then costs {-t_cost['mean'] * 100:.1f} points of clean "
        f"accuracy ({_d(t_cost)}); the paper's ImageNet tables report 0.1-0.2, " + (
        'so that part of its claim does not hold here' if t_cost['mean'] * 100 < -0.3 and t_cost['p'] < ALPHA else
        f"and at {t_cost['n']} seeds the difference cannot be told from that" if t_cost['mean'] * 100 < -0.3 else 'as here')
        + ". The Ensemble on a plain classifier hurts: "
        f"{_d(t_pde)} corrupted, {_d(t_pcl)} clean, since it classifies denoised images the classifier never saw. The gains are "
        f"largest where the corruption removes contrast or adds a veil ({top}; plain -> DiffAug + DE) and smallest, or "
        f"negative, on {low}. With the package's own seven tensor corruptions (`benchmarks/classify.py`, {t_tc['n']} seeds) the "
        f"same comparison gives plain {_m(tc['plain'])}, DiffAug {_m(tc['DiffAug'])} and DiffAug + DE "
        f"{_m(tc['DiffAug + DE'])} ({_d(t_tc)}, {verdict(t_tc)})."])

def digits_gradient_sentence(res=None) -> str:
    "The digits tutorial, section 3: what the gradient measure says about DA vs noisy."
    gd, col = gradients(res)
    tt = max(gd.t.unique())
    a, b = (gd[(gd.t == tt) & (gd.classifier == k)].set_index('seed')[col] for k in ('DA', 'noisy'))
    t_ = _pair(a, b)
    word = 'about as' if not t_['p'] < ALPHA else 'better' if t_['mean'] > 0 else 'less'
    return (f"The paper reports that the gradient of `log p(y | x_t)`, taken through the denoiser, is smoother and more digit-like "
            f"for a DA classifier than for a noisy one. Measured by the class margin of section 5 (how much more the gradient "
            f"points toward the true class than toward the wrong ones, {len(gd.seed.unique())} seeds, t = {tt}), the DA "
            f"classifier's gradients are {word} aligned {'as' if word == 'about as' else 'than'} the noisy one's: {a.mean():.3f} vs {b.mean():.3f}, "
            f"{_d(t_, 1., 3)}, {verdict(t_)}.")

def digits_robustness(res=None) -> str:
    "The digits tutorial, section 5: AugMix, OOD, ASH/SCALE, certified robustness, gradients, label budgets."
    per = corruptions(res)
    n = len(per['plain', False][0])
    rows = []
    for m in ('plain', 'AugMix', 'DiffAug', 'AugMix + DiffAug'):
        if (m, False) not in per: continue
        rows.append({'training': m, 'clean': _ms(per[m, False][1]), 'corrupted': _ms(per[m, False][0]),
                     'with the Ensemble: clean': _ms(per[m, True][1]), 'corrupted ': _ms(per[m, True][0])})
    t_am = _pair(per['AugMix', False][0], per['plain', False][0]); t_amda = _pair(per['AugMix + DiffAug', False][0], per['AugMix', False][0])
    t_amda2 = _pair(per['AugMix + DiffAug', False][0], per['DiffAug', False][0]); t_amde = _pair(per['AugMix + DiffAug', True][0], per['DiffAug', True][0])
    out = [f"**At full size** (`benchmarks/robustness.py`, {n} seeds, 30-epoch models, one CPU thread), in %, mean ± sd over seeds; "
           "paired differences as mean ± sd (seeds higher / seeds, exact sign-flip p).", '',
           "*AugMix + DiffAug, standard corruptions (mean over 15 kinds x 5 severities).* AugMix uses the AugMix paper's operations "
           "at severity 1; every row trains with cross-entropy weight 1 (AugMix + DiffAug averages its two cross-entropies, "
           "`AugMixDiffAugCB(ce='mean')`; the paper sums them).", '', _table(rows), '',
           f"AugMix alone against plain: {_d(t_am)}, {verdict(t_am)}. AugMix + DiffAug against AugMix: {_d(t_amda)} "
           f"({verdict(t_amda)}; the paper: +2.8 at ImageNet-C severity 5), but against DiffAug alone {_d(t_amda2)} "
           f"({verdict(t_amda2)}), and with the Ensemble against DiffAug + Ensemble {_d(t_amde)} ({verdict(t_amde)}): "
           "what AM+DiffAug gains over AugMix here comes from DiffAug. The paper fine-tunes an AugMix-trained model; here every "
           "model is trained from scratch.", '']
    o = ood(res)
    near = {k[1]: v for k, v in o.items() if k[0] == 'near: held-out classes'}
    far = {k[1]: v for k, v in o.items() if k[0] == 'far: photo patches'}
    nd = ', '.join(f"{k} {_d(near[k][2])}" for k in ('msp', 'maxlogit', 'energy', 'react'))
    fe = far.get('energy')
    out += [f"*Out-of-distribution detection* (classifiers trained on digits 0-5, {near['energy'][2]['n']} seeds; AUROC in %). On held-out "
            f"digits 6-9 (near OOD), DiffAug - plain AUROC: {nd}."]
    if fe is not None:
        out[-1] += (f" On 8x8 patches of photographs (far OOD), energy AUROC {_ms(fe[1])} -> {_ms(fe[0])} ({_d(fe[2])}, {verdict(fe[2])}): "
                    "a plain classifier is confidently wrong on smooth blobs in some seeds and not in others, so the spread is large.")
    out[-1] += " The paper's OOD claim concerns ImageNet near-OOD with SCALE after AM+DiffAug; it is not tested here."
    sw = ood_sweep(res)
    if sw is not None:
        s_ = sw[sw.score.isin(['ash', 'scale']) & (sw.ood_set == 'near: held-out classes')]
        e = sw[(sw.score == 'energy') & (sw.ood_set == 'near: held-out classes')]
        z = sw[sw.score == 'zero share'].groupby('features').auroc.mean()
        best = s_.groupby(['features', 'score', 'percentile']).auroc.mean()
        parts = []
        for (feat, score), b_ in best.groupby(level=[0, 1]):
            parts.append(f"{score.upper()} with {feat} features: {b_.xs(90, level=2).iloc[0] * 100:.1f} at p90, best "
                         f"{b_.max() * 100:.1f} at p{int(b_.idxmax()[2])}, energy {e[e.features == feat].auroc.mean() * 100:.1f}")
        out += ['', "*ASH and SCALE* (near OOD, AUROC over a sweep of the pruning percentile, plain and DiffAug classifiers pooled, "
                "and the same classifiers trained with a wider penultimate layer): " + '; '.join(parts) + '. Share of features that are '
                "exactly 0 in distribution: " + ', '.join(f"{k} features {v * 100:.0f}%" for k, v in z.items()) + '.']
    c = certified(res)
    rr = [r for r in (0.25, 0.5, 0.75) if r in c]
    out += ['', f"*Certified l2 robustness* (diffuse-denoise-classify, CERTIFY n=1000, alpha=0.001, best sigma per radius, 200 test "
            f"images, {c[rr[0]][2]['n']} seeds), DiffAug - plain: " + '; '.join(
                f"r={r}: {_m(c[r][1])} -> {_m(c[r][0])}, {_d(c[r][2])}, {verdict(c[r][2])}" for r in rr) + '.']
    gd, col = gradients(res)
    gl = []
    for tt in sorted(gd.t.unique()):
        m = gd[gd.t == tt].groupby('classifier')[col].mean().sort_values(ascending=False)
        gl.append(f"t={tt}: " + ' > '.join(f"{k} {v:.3f}" for k, v in m.items()))
    out += ['', f"*Gradient alignment* ({'class margin, ' if col == 'margin' else ''}{len(gd.seed.unique())} seeds): " + '; '.join(gl) + '.'
            + (" The raw cosine toward the class mean, which at t=300 mostly measures denoising, is in the benchmark report." if col == 'margin' else '')]
    bd, tcs = budget(res)
    fr = [f for f in (0.01, 0.05, 0.1) if ('noisy', f) in tcs]
    def acc(cl, f, t=0): return bd[(bd.classifier == cl) & (bd.labels == f) & (bd.t == t)].groupby('seed').acc.mean()
    t10 = _pair(acc('plain (supervised only)', 0.1), acc('da', 0.1))
    out += ['', "*Label budgets*, temporal consistency (TC) - no TC on clean test images: " + '; '.join(
                f"{label} " + ', '.join(f"{f:.0%} labels {_d(tcs[mode, f])}" for f in fr) for mode, label in (('noisy', 'noisy'), ('da', 'DA')))
            + f". With 10% labels, a plain classifier trained on the labelled images only minus the DA classifier (no TC), on clean test images: {_d(t10)} "
            f"({verdict(t10)}). (At t=300 the plain baseline classifies raw noisy images it was never trained on, so its low "
            "accuracy there says nothing about TC.)"]
    return '\n'.join(out)

def cifar10_gpu_cost(res=None) -> str:
    "The CIFAR-10 tutorial: training and Ensemble throughput, step against floor and memory, float32 against bf16 (one run each)."
    v = {}
    for prec in ('fp32', 'bf16'):
        d = _csv(f'cifar10-gpu-{prec}-cost.csv', res)
        v[prec] = d.groupby('what').value.mean()
    rows = []
    for what, key, fmt in (('plain ResNet-18 training (images/s)', 'plain training', '{:,.0f}'),
                           ('DiffAug ResNet-18 training (images/s)', 'diffaug training', '{:,.0f}'),
                           ('DiffAug step / its floor', 'DiffAug step / floor', '{:.2f}x'),
                           ('DiffAug + DE prediction (images/s)', 'DiffAug + DE prediction', '{:,.0f}'),
                           ('peak GPU memory of DiffAug training (GB)', 'diffaug training, peak memory', '{:.2f}')):
        rows.append({'what': what, 'float32': fmt.format(v['fp32'][key]).replace(',', ' '), 'bf16 autocast': fmt.format(v['bf16'][key]).replace(',', ' ')})
    mem = v['bf16']['diffaug training, peak memory'], v['fp32']['diffaug training, peak memory']
    de = v['bf16']['DiffAug + DE prediction'] / v['fp32']['DiffAug + DE prediction'] - 1
    tr = v['bf16']['diffaug training'] / v['fp32']['diffaug training'] - 1
    fl = v['bf16']['DiffAug step / floor'], v['fp32']['DiffAug step / floor']
    return '\n'.join([_table(rows), '',
        f"bf16 wins on memory ({mem[0]:.2f} vs {mem[1]:.2f} GB) and on the Ensemble ({de * 100:+.0f}% images/s), not on training "
        f"speed ({tr * 100:+.0f}%): at batch 256 the step is bound by the training loop and the copy of each batch to the GPU, not "
        f"by arithmetic, so bf16 shrinks the floor and not the step ({fl[0]:.2f}x its floor against {fl[1]:.2f}x in float32). One "
        "run per precision on one GPU: the differences carry no error bars."])

# ------------------------------------------------------------------------------------------------ method A

def _ab(df, key, a, b, cols, where=None):
    "Paired tests `a - b` for each column of `cols`, rows picked by `df[key] == a / b` (and the mask `where`), per seed."
    d = df if where is None else df[where]
    A, B = d[d[key] == a].groupby('seed')[cols].mean(), d[d[key] == b].groupby('seed')[cols].mean()
    return {c: _pair(A[c], B[c]) for c in cols}

def _who(t, a, b, what='') -> str:
    "Who wins a paired comparison, in words."
    if t['p'] < ALPHA: return f"**{a if t['mean'] > 0 else b} wins**{what} ({verdict(t)})"
    if t['wins'] in (0, t['n']) and t['mean'] != 0: return f"{a if t['mean'] > 0 else b} ahead in every seed{what}, {verdict(t)}"
    return f"a tie{what} ({verdict(t)})"

def _lead(t, a, b) -> str:
    "Who leads, without the significance words: 'DiffAug ahead in every seed', 'a tie'."
    if t['wins'] in (0, t['n']) and t['mean'] != 0: return f"{a if t['mean'] > 0 else b} ahead in every seed" + (' (significant)' if t['p'] < ALPHA else '')
    if t['p'] < ALPHA: return f"{a if t['mean'] > 0 else b} ahead (significant)"
    return 'a tie'

def method_a_rows(res=None) -> list:
    rows = []
    lv = _csv('levers-confirm.csv', res)
    classic = ['knn', 'linear', 'svc', 'kmeans', 'ari', 'nmi']
    t = _ab(lv, 'variant', 'bs128', 'pca', classic + ['bio'], lv.dataset == 'pbmc')
    behind = sum(t[c]['mean'] < 0 for c in classic)
    sig = sum(t[c]['mean'] < 0 and t[c]['p'] < ALPHA for c in classic)
    rows.append(('DiffAug (default) - PCA-50 (5-NN / linear probe / SVC / K-means / ARI / NMI; scib bio, points)', f"pbmc68k bulk_labels, {t['knn']['n']} seeds",
                 ' / '.join(_d(t[c], 1.) for c in classic) + '; bio ' + _d(t['bio'], 1.),
                 f"**PCA is ahead on {behind} of the 6 classic scores** on average ({sig} of them significant at {t['knn']['n']} seeds); "
                 f"scib bio: {_lead(t['bio'], 'DiffAug', 'PCA')}"))
    t = _ab(lv, 'variant', 'bs128', 'pca', ['kmeans', 'ari', 'bio'], lv.dataset == 'digits')
    rows.append(('DiffAug (default) - PCA-50 (K-means / ARI / scib bio, points)', f"digits as 64-d vectors, {t['ari']['n']} seeds",
                 ' / '.join(_d(t[c], 1.) for c in ('kmeans', 'ari', 'bio')), 'ARI: ' + _who(t['ari'], 'DiffAug', 'PCA')))
    t = _ab(lv, 'variant', 'bs128', 'base', ['kmeans', 'ari', 'seconds'], lv.dataset == 'pbmc')
    sec = lv[lv.dataset == 'pbmc'].groupby('variant').seconds.mean()
    rows.append(('encoder batch 128 (the default) - batch 350 (K-means / ARI, points)', f"pbmc68k bulk_labels, {t['ari']['n']} seeds",
                 f"{_d(t['kmeans'], 1.)} / {_d(t['ari'], 1.)}; {sec['bs128']:.0f} s vs {sec['base']:.0f} s per fit",
                 'K-means: ' + _who(t['kmeans'], 'batch 128', 'batch 350')))
    ho = pd.concat([_csv('heldout-tables.csv', res), _csv('heldout-atlas.csv', res)])
    parts, ari, bio, ps = [], [], [], []
    for ds in ('wine', 'breast_cancer', 'atlas'):
        t = _ab(ho, 'method', 'diffaug', 'pca', ['ari', 'bio'], ho.dataset == ds)
        parts.append(f"{ds}: {_d(t['ari'], 1.)} / {_d(t['bio'], 1.)}")
        ari.append((ds, _lead(t['ari'], 'DiffAug', 'PCA'))); bio.append((ds, _lead(t['bio'], 'DiffAug', 'PCA'))); ps += [t['ari']['p'], t['bio']['p']]
    items = [f"ARI: {summary(ari)}", f"bio: {summary(bio)}",
             'none significant at 5 seeds' if min(ps) >= ALPHA else 'p < 0.05 where marked']
    ts = _ab(ho, 'method', 'scvi', 'pca', ['ari'], ho.dataset == 'atlas')['ari']
    rows.append(('held out, DiffAug - PCA-50 (ARI / scib bio, points)', f"wine; breast_cancer; synthetic atlas; {ts['n']} seeds each",
                 '; '.join(parts) + f"; scVI - PCA on the atlas, ARI {_d(ts, 1.)}", '; '.join(items)))
    cf = _csv('contrastive-full.csv', res)
    t = _ab(cf, 'method', 'diffaug', 'soft_knnmix', ['knn', 'kmeans'], (cf.dataset == 'pbmc') & (cf.label == 'bulk_labels'))
    rows.append(('DiffAug - kNN-mix, equal encoder steps (5-NN / K-means, points; encoder batch min(500, N/2))', f"pbmc68k bulk_labels, {t['knn']['n']} seeds",
                 f"{_d(t['knn'])} / {_d(t['kmeans'])}", 'K-means: ' + _who(t['kmeans'], 'DiffAug', 'kNN-mix')))
    sw = pd.concat([_csv('contrastive-sweep-lam-a.csv', res), _csv('contrastive-sweep-lam-b.csv', res)])
    lou = sw[(sw.label == 'louvain') & ((sw.lam.round(3) == 0.184) | sw.arm.isin(['restart', 'E1']))]  # the controls share E1
    t = _ab(lou, 'arm', 'diffaug', 'restart', ['kmeans', 'ari'])
    e1 = _ab(lou, 'arm', 'diffaug', 'E1', ['kmeans'])
    rows.append(('DiffAug - the same phases with kNN-mix views only (the restart control), lambda 0.184 (K-means / ARI, points)', f"pbmc68k louvain, {t['ari']['n']} seeds",
                 f"{_d(t['kmeans'])} / {_d(t['ari'])}; DiffAug - E1 alone, K-means {_d(e1['kmeans'])}",
                 'against the control: ' + _who(t['kmeans'], 'DiffAug', 'the control') + '; against E1 alone: ' + _who(e1['kmeans'], 'DiffAug', 'E1')))
    bk = _csv('contrastive-full-bank.csv', res).set_index(['dataset', 'sampler']).seconds
    rows.append(('one bank refresh of generated views, 700 cells', 'pbmc68k, one run',
                 f"DDIM-10 {bk['pbmc', 'DDIM-10']:.2f} s, DDIM-50 {bk['pbmc', 'DDIM-50']:.2f} s, DDPM-1000 {bk['pbmc', 'DDPM-1000']:.1f} s", '-'))
    names = dict(harmony='Harmony', scvi='scVI', scanorama='Scanorama', pca='PCA')
    for tag, label in (('b3-s1.0', '3 simulated batches'), ('b6-s1.0', '6 batches'), ('b3-s2.0', '3 batches at twice the strength')):
        ig = _csv(f'integration-{tag}.csv', res)
        tot = ig.groupby('method').total.mean() * 100
        best = tot.drop(['pca_nobatch', 'diffaug_refmap'], errors='ignore').idxmax()
        tb = _ab(ig, 'method', 'diffaug_batch', 'pca', ['batch_correction'])['batch_correction']
        tbio = _ab(ig, 'method', 'diffaug_batch', 'pca_nobatch', ['bio_conservation'])['bio_conservation']
        th = _ab(ig, 'method', 'diffaug_batch', best, ['total'])['total'] if best != 'diffaug_batch' else None
        rows.append((f"batch integration, scib total: DiffAug with `batch_key` vs Harmony / scVI / Scanorama / PCA", f"pbmc68k cells in {label}, {tb['n']} seeds",
                     f"{tot['diffaug_batch']:.1f} vs " + ' / '.join(f"{tot[k]:.1f}" for k in names) + f"; batch correction - PCA {_d(tb)}; "
                     f"bio conservation - PCA on the same cells without batch effects {_d(tbio)}",
                     f"**{names.get(best, best)} wins**" + (f"; DiffAug - {names.get(best, best)}: {_d(th)}" if th is not None else '')))
    parts, items = [], []
    for tag, label in (('b3-s2.0', 'strength 2.0'), ('b6-s1.0', '6 batches'), ('b3-s0.5', 'strength 0.5')):
        ig = _csv(f'integration-{tag}.csv', res)
        t = _ab(ig, 'method', 'diffaug_offset', 'diffaug_batch', ['total'])['total']
        parts.append(f"{label}: {_d(t)}"); items.append((label, _who(t, 'offset views', 'sampled views')))
    rows.append(('offset views - sampled views, scib total (`gen=dict(cross=\'offset\')`, lambda 0.5; held out)', 'pbmc68k cells, 3 batches, 5 seeds each',
                 '; '.join(parts), '; '.join(f"{a}: {b}" for a, b in items)))
    ss = _csv('ssl-digits8.csv', res)
    ss = ss[(ss.data == 'digits') & (ss['size'] == 8)]
    mm = ss.groupby('method')[['linear', 'knn', 'kmeans']].mean() * 100
    t = _ab(ss, 'method', 'simclr', 'raw', ['kmeans'])['kmeans']
    rows.append(('SimCLR / MoCo v2 (standard views) vs raw pixels (linear probe / 5-NN / K-means accuracy, %)', f"digits as 8x8 images, {t['n']} seeds",
                 ' and '.join(f"{k} " + ' / '.join(f"{mm.loc[m, c]:.1f}" for c in mm.columns) for k, m in (('SimCLR', 'simclr'), ('MoCo v2', 'moco'), ('raw', 'raw'))),
                 f"SimCLR - raw K-means {_d(t)}: " + _who(t, 'SimCLR', 'raw pixels')))
    parts, items = [], []
    for a_, b_, lab in (('simclr_diff', 'simclr', 'SimCLR'), ('moco_diff', 'moco', 'MoCo v2')):
        t = _ab(ss, 'method', a_, b_, ['linear', 'kmeans'])
        parts.append(f"{lab} + Diff - {lab}: {_d(t['linear'])} / {_d(t['kmeans'])}")
        items += [(f"{lab} linear", status(t['linear'], +1)), (f"{lab} K-means", status(t['kmeans'], +1))]
    rows.append(('adding generated views: SimCLR + Diff - SimCLR; MoCo v2 + Diff - MoCo v2 (linear probe / K-means, points)', f"digits as 8x8 images, {t['linear']['n']} seeds",
                 '; '.join(parts), "the paper's +1.6 to +4.5: " + summary(items)))
    return rows

def readme_method_a(res=None) -> str:
    head = ['| measure | data | result (paired: mean ± sd of the differences, seeds higher / seeds, exact p) | which wins |', '|---|---|---|---|']
    return '\n'.join(head + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in method_a_rows(res)])

BLOCKS = {'readme-method-a': readme_method_a, 'readme-method-b': readme_method_b, 'readme-method-b-summary': readme_method_b_summary, 'digits-corruptions': digits_corruptions, 'digits-gradients': digits_gradient_sentence,
          'digits-robustness': digits_robustness, 'cifar10-gpu-cost': cifar10_gpu_cost}

# ------------------------------------------------------------------------------------------------ files

NOTEBOOKS = [ROOT / 'nbs' / 'index.ipynb'] + sorted((ROOT / 'nbs' / 'tutorials').glob('*.ipynb'))
MARK = re.compile(r'<!-- claims:([\w-]+) -->\n(.*?)<!-- /claims:\1 -->', re.S)

def _blocks_in(src):
    return [(m.group(1), m.group(2)) for m in MARK.finditer(src)]

def rewrite(check:bool=False, res=None) -> list:
    "Rewrite (or, with `check`, compare) every generated block; returns the names of blocks that differ."
    cache, stale, seen = {}, [], set()
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        changed = False
        for cell in nb['cells']:
            if cell['cell_type'] != 'markdown': continue
            src = ''.join(cell['source'])
            if '<!-- claims:' not in src: continue
            def sub(m):
                name = m.group(1)
                if name not in BLOCKS: raise SystemExit(f"{path.name}: unknown claims block {name!r}; known: {sorted(BLOCKS)}")
                seen.add(name)
                if name not in cache: cache[name] = BLOCKS[name](res).rstrip('\n') + '\n'
                if m.group(2) != cache[name]: stale.append(f"{path.name}: {name}")
                return f"<!-- claims:{name} -->\n{cache[name]}<!-- /claims:{name} -->"
            new = MARK.sub(sub, src)
            if new != src:
                changed = True
                ls = new.split('\n'); cell['source'] = [l + '\n' for l in ls[:-1]] + ([ls[-1]] if ls[-1] else [])
        if changed and not check: path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return stale

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--check', action='store_true', help='only compare; exit 1 if a block is stale')
    p.add_argument('--show', default=None, metavar='NAME', help='print one block')
    p.add_argument('--results', default=None, help='read the CSVs from this folder instead of benchmarks/results')
    a = p.parse_args(argv)
    res = Path(a.results) if a.results else None
    if a.show: return print(BLOCKS[a.show](res))
    stale = rewrite(check=a.check, res=res)
    if a.check and stale:
        print('generated blocks out of date (run python tools/results_claims.py, then tools/build_readme.py):\n  ' + '\n  '.join(stale))
        return 1
    print(('checked' if a.check else 'rewrote') + f" the claims blocks ({len(stale)} {'stale' if a.check else 'changed'})")
    return 0

if __name__ == '__main__':
    sys.exit(main())
