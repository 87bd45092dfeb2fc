"benchmarks/robustness.py's report: every paired cell and sentence comes from the exact paired test, on rows made by hand."
import sys
from pathlib import Path
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'benchmarks'))
import robustness as rb  # noqa: E402

SEEDS = range(6)

def _augmix_rows():
    "DiffAug 10 points above plain on corrupted images in every seed; AugMix mixed around plain."
    rows = []
    for s in SEEDS:
        base = 0.6 + 0.01 * s
        acc = {'plain': base, 'AugMix': base + (0.01 if s % 2 else -0.01), 'DiffAug': base + 0.10, 'AugMix + DiffAug': base + 0.10}
        for m, a in acc.items():
            for de in (False, True):
                rows.append(dict(seed=s, method=m, de=de, corruption='clean', severity=0, acc=0.99))
                rows += [dict(seed=s, method=m, de=de, corruption=k, severity=v, acc=a) for k in ('fog', 'contrast') for v in (1, 5)]
    return pd.DataFrame(rows)

def test_augmix_section_uses_the_exact_test():
    text = '\n'.join(rb.section_augmix(_augmix_rows(), 6))
    # 6 of 6 seeds higher: the exact two-sided sign-flip p is 2 / 2^6
    assert '| DiffAug - plain | +10.0 ± 0.0 (6/6, p = 0.031) |' in text
    assert 'AugMix - plain | +0.0 ± 1.1 (3/6, p = 1, n.s.)' in text
    assert 'not significant at 6 seeds' in text and 'the smallest p 6 seeds can give is 0.031' in text
    assert 'DiffAug - plain: ahead, +10.0 points (6/6 seeds higher, significant at 6 seeds (p = 0.031))' in text

def test_ood_section_keeps_below_chance_scores_apart():
    rows = []
    for s in SEEDS:
        for m in ('plain', 'DiffAug'):
            rows.append(dict(seed=s, method=m, ood_set='(in-distribution accuracy)', score='-', auroc=0.99, fpr95=np.nan))
            for score, a in (('energy', 0.9 + (0.05 if m == 'DiffAug' else 0)), ('ash', 0.3)):
                rows.append(dict(seed=s, method=m, ood_set='near: held-out classes', score=score, auroc=a, fpr95=0.1))
    text = '\n'.join(rb.section_ood(pd.DataFrame(rows)))
    assert 'near: held-out classes, energy: ahead, +5.0 points (6/6 seeds higher' in text
    assert 'Scores below chance (AUROC < 50) for either classifier: ash (near: held-out classes)' in text

def test_gradient_section_ranks_by_class_margin():
    rows = [dict(seed=s, classifier=c, t=t, alignment=0.5 if c == 'noisy' else 0.1, alignment_sd=0.1,
                 true=m, control=0., margin=m, margin_sd=0.1)
            for s in SEEDS for t in (0, 300) for c, m in (('plain', 0.2), ('DiffAug', 0.3), ('noisy', 0.1), ('DA', 0.25))]
    text = '\n'.join(rb.section_gradients(pd.DataFrame(rows)))
    assert 't=300: DiffAug (0.300) > DA (0.250) > plain (0.200) > noisy (0.100)' in text  # the raw cosine would rank noisy first
    assert 'DiffAug - plain at t=0: ahead, +0.100' in text
