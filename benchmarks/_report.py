"""Table and report helpers shared by the scripts in benchmarks/ (not part of the diffaug library).

A script in this folder imports them after putting its own folder on the path, so that it works both as
`python benchmarks/<script>.py` from the repository root and from inside benchmarks/:

    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _report import summarise, pm, machine_line, write_text_atomic

  summarise(df, by, value)      mean, std (ddof=1) and count of one column over seeds, per setting
  pm(summary, scale=100.)       'mean ± std' strings of a `summarise` frame; a single seed shows its value alone
  machine_line(threads=None)    'Machine: <arch> CPU, <n> torch threads, torch <version>.' for report headers
  write_text_atomic(path, text) write a file through a temporary file in the same folder and os.replace (diffaug.io)
  positive_int, setting_arg     argparse types: a whole number >= 1; `--set KEY=VALUE` with a JSON value
  paired_test(a, b)             (from diffaug.report) paired differences a - b over seeds: mean, sd, wins, exact sign-flip p
  paired_words(...)             (from diffaug.report) that result as table text: '+1.2 ± 0.8 (4/5, p = 0.19)'
  verdict(t)                    'significant at 6 seeds (p = 0.031)' or 'not significant at 5 seeds (p = 0.19)'
  paired_series(a, b)           paired_test of two per-seed Series on their common seeds
  mean_sd(values)               'mean ± sd' of per-seed values (one value alone)
  ns_note(n)                    the footnote that explains 'n.s.' and the smallest p that n seeds can give

Atomic writes mean that a run cut short (or two runs writing the same folder) never leaves a half-written file.

Tables and figures are drawn by the library's helpers, the ones the demo's report uses too (one contract for every
report in the project): `from diffaug.report import md_table, savefig`.
"""
from __future__ import annotations
import platform
from pathlib import Path
import numpy as np
import pandas as pd
from diffaug.io import write_atomic
from diffaug.report import paired_test, paired_words, ALPHA  # the library's exact sign-flip test (one definition)

__all__ = ['summarise', 'pm', 'machine_line', 'write_text_atomic', 'positive_int', 'setting_arg', 'paired_test', 'paired_words',
           'verdict', 'ns_note', 'ALPHA', 'paired_series', 'mean_sd']


def summarise(df:pd.DataFrame, by:list, value:str) -> pd.DataFrame:
    "Mean, std (ddof=1) and count `n` of column `value` for each setting given by the columns `by` (NaN keys kept, input order)."
    g = df.groupby(by, sort=False, dropna=False)[value]
    return pd.DataFrame({'mean': g.mean(), 'std': g.std(ddof=1), 'n': g.count()}).reset_index()

def pm(summary:pd.DataFrame, scale:float=100., fmt:str='.1f') -> list:
    """'mean ± std' strings of a `summarise` frame, both times `scale` (100: fractions to percent). A setting measured
    once has no spread: it shows the value alone, '81.2 (1 seed)', never '± 0.0', which would read as zero variance."""
    out = []
    ns = summary['n'] if 'n' in summary else [2] * len(summary)
    for m, s, n in zip(summary['mean'], summary['std'], ns):
        if n < 2 or np.isnan(s): out.append(f"{m * scale:{fmt}} (1 seed)")
        else: out.append(f"{m * scale:{fmt}} ± {s * scale:{fmt}}")
    return out

def verdict(t:dict, with_p:bool=True) -> str:
    "'significant at n seeds (p = ...)' or 'not significant at n seeds (p = ...)', for the sentences under a table."
    return f"{'' if t['p'] < ALPHA else 'not '}significant at {t['n']} seeds" + (f" (p = {t['p']:.2g})" if with_p else '')

def paired_series(a, b) -> dict:
    "`paired_test` of two per-seed pandas Series (indexed by seed) on the seeds both have, in seed order."
    common = a.index.intersection(b.index).sort_values()
    return paired_test(a.loc[common].values, b.loc[common].values)

def mean_sd(v, scale:float=100., fmt:str='.1f') -> str:
    "'mean ± sd' (ddof=1) of per-seed values times `scale`; one value shows alone."
    v = np.asarray(v, float) * scale
    return f"{v[0]:{fmt}}" if len(v) == 1 else f"{v.mean():{fmt}} ± {v.std(ddof=1):{fmt}}"

def ns_note(n:int) -> str:
    "The footnote under a table of paired differences over `n` seeds."
    return (f"Paired over seeds: mean ± sd of the differences, (seeds where the first is higher / seeds, exact two-sided "
            f"sign-flip p); n.s. = not significant at {n} seeds (p >= {ALPHA}; the smallest p {n} seeds can give is "
            f"{2 / 2 ** n:.2g}).")

def machine_line(threads:int|None=None) -> str:
    "The machine sentence of a report header; `threads` defaults to torch's current CPU thread count."
    import torch
    if threads is None: threads = torch.get_num_threads()
    return f"Machine: {platform.machine()} CPU, {threads} torch thread{'s' if threads != 1 else ''}, torch {torch.__version__}."

def write_text_atomic(path, text:str, encoding:str='utf-8') -> Path:
    "Write `text` to `path` (folders created) through a temporary file and `os.replace` (`diffaug.io.write_atomic`)."
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding=encoding))

if __name__ == '__main__':
    import argparse
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    print(__doc__)

def setting_arg(s:str) -> tuple:
    "argparse type of `--set KEY=VALUE`: the value parsed as JSON (a bare word stays a string): den_epochs=2, t_grid=[0,300], flag=false."
    import argparse, json
    k, sep, v = s.partition('=')
    if not sep or not k: raise argparse.ArgumentTypeError(f"expected key=value, got {s!r}")
    try: v = json.loads(v)
    except json.JSONDecodeError: pass
    return k, v

def positive_int(s:str) -> int:
    "argparse type: a whole number of at least 1 (`--seeds 0` is refused with a one-line usage error)."
    import argparse
    try: v = int(s)
    except ValueError: raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    if v < 1: raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v
