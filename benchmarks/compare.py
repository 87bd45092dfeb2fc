"""Compare two runs of a benchmark: did a change move any result by more than the seed-to-seed spread?

For every setting (the `--keys` columns) and every value column it takes the mean over seeds in each run and reports
  delta   new mean - old mean (points, for fractions)
  spread  the seed-to-seed standard deviation, pooled over the two runs: sqrt((sd_old^2 + sd_new^2) / 2)
  ratio   |delta| / spread (below 1: the change is smaller than the difference between two seeds of one run)
  welch   delta / sqrt(sd_old^2 / n_old + sd_new^2 / n_new), Welch's t statistic of the two means
and a summary line per value column. Within a seed, rows of one setting are averaged first (e.g. over the corruption
kinds of the classify benchmark when `corruption` is not a key).

    python benchmarks/compare.py old.csv new.csv --keys dataset label method --values knn linear svc kmeans ari nmi
    python benchmarks/compare.py old/classify_robust.csv results/classify_robust.csv --keys method severity \\
        --values acc --drop corruption=clean
"""
import argparse, sys
from pathlib import Path
import numpy as np, pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diffaug.report import md_table

def per_seed(df, keys, values, drop):
    "One row per setting and seed: the values averaged over the rows of that setting and seed."
    for d in drop:
        col, val = d.split('=', 1)
        df = df[df[col].astype(str) != val]
    return df.groupby(list(keys) + ['seed'], dropna=False)[list(values)].mean().reset_index()

def compare(old:pd.DataFrame, new:pd.DataFrame, keys, values, drop=(), scale=100.) -> pd.DataFrame:
    "Long table: one row per setting and value column with both means, delta, pooled spread, ratio and Welch's t."
    o, n = per_seed(old, keys, values, drop), per_seed(new, keys, values, drop)
    rows = []
    for v in values:
        a = o.groupby(list(keys), dropna=False)[v].agg(['mean', 'std', 'count'])
        b = n.groupby(list(keys), dropna=False)[v].agg(['mean', 'std', 'count'])
        j = a.join(b, lsuffix='_old', rsuffix='_new', how='inner').reset_index()
        j['value'] = v
        rows.append(j)
    t = pd.concat(rows, ignore_index=True)
    for c in ('mean_old', 'mean_new', 'std_old', 'std_new'): t[c] = t[c] * scale
    t['delta'] = t.mean_new - t.mean_old
    t['spread'] = np.sqrt((t.std_old ** 2 + t.std_new ** 2) / 2)
    t['ratio'] = t.delta.abs() / t.spread
    t['welch'] = t.delta / np.sqrt(t.std_old ** 2 / t.count_old + t.std_new ** 2 / t.count_new)
    return t

def summary(t:pd.DataFrame) -> pd.DataFrame:
    "Per value column: settings compared, how many moved by less than one spread, |Welch t| < 2, and the largest ratio."
    g = t.groupby('value', sort=False)
    return pd.DataFrame({'settings': g.size(), 'within 1 spread': g.ratio.apply(lambda r: int((r <= 1).sum())),
                         'abs(welch) < 2': g.welch.apply(lambda w: int((w.abs() < 2).sum())),
                         'mean abs delta': g.delta.apply(lambda d: d.abs().mean()), 'max ratio': g.ratio.max()}).reset_index()

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('old', help='CSV of the earlier run (one row per seed and setting)')
    p.add_argument('new', help='CSV of the new run')
    p.add_argument('--keys', nargs='+', required=True, help='columns that define a setting')
    p.add_argument('--values', nargs='+', required=True, help='value columns to compare')
    p.add_argument('--drop', nargs='*', default=[], help='COL=VALUE rows to leave out')
    p.add_argument('--scale', type=float, default=100., help='multiply values by this (100: fractions to points)')
    p.add_argument('--detail', action='store_true', help='also print the per-setting table')
    a = p.parse_args(argv)
    t = compare(pd.read_csv(a.old), pd.read_csv(a.new), a.keys, a.values, a.drop, a.scale)
    print(md_table(summary(t), floatfmt='.2f'))
    if a.detail:
        cols = list(a.keys) + ['value', 'mean_old', 'mean_new', 'delta', 'spread', 'ratio', 'welch']
        print(); print(md_table(t[cols], floatfmt='.2f'))
    return t

if __name__ == '__main__': main()
