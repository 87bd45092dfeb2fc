"""Digits benchmark of part B (denoising-assisted classifiers, DiffAug, DiffAug Ensemble, guidance, semi-supervised).

Runs `diffaug.bench_classify.run_benchmark` on scikit-learn's digits over several seeds and writes
classify_*.csv (one row per seed and setting), classify.md (mean ± std tables) and acc_vs_t.png into --out.

    OMP_NUM_THREADS=1 python benchmarks/classify.py --quick          # a few minutes on one CPU thread
    OMP_NUM_THREADS=1 python benchmarks/classify.py                  # full settings (tens of minutes)
"""
import argparse
import torch
from diffaug.bench_classify import run_benchmark

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help='shorter training and fewer settings')
    p.add_argument('--seeds', type=int, default=3, help='number of seeds (default 3)')
    p.add_argument('--out', default='benchmarks/results', help='output folder (default benchmarks/results)')
    p.add_argument('--parts', type=int, nargs='+', default=[1, 2, 3, 4, 5], help='parts to run (1-5)')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads (default 1)')
    p.add_argument('--no-progress', action='store_true', help='do not print progress lines')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    run_benchmark(a.out, quick=a.quick, seeds=a.seeds, progress=not a.no_progress, parts=tuple(a.parts))

if __name__ == '__main__': main()
