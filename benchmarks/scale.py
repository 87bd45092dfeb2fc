"""Atlas scale: time and peak memory of `diffaug.tl.embed` on synthetic single-cell atlases written to disk.

A synthetic atlas has `n_types` cell types whose mean expression differs in a random fifth of the genes; counts are
negative-binomial (gamma-Poisson) with per-cell size factors, about 10% of entries non-zero, and X holds
`log1p(counts / total * 1e4)` as a CSR matrix. Atlases are generated chunk by chunk straight into an `.h5ad` file,
so generating a million cells never holds the whole matrix in memory; they are cached under `--data`.

Every embedding runs in its own subprocess (`--run`), so each peak RSS (`ru_maxrss`) is that of one run alone. The
backed runs open the file with `anndata.read_h5ad(path, backed='r')`; the reference run reads the 10k atlas into
memory first. Each row records the wall time of every phase (`DiffAug.phase_times`), the total, and the peak RSS.

    python benchmarks/scale.py --sizes 10000 100000 300000 1000000        # the issue-11 table
    python benchmarks/scale.py --sizes 10000 30000 --tag quick             # minutes

Writes `results/scale-TAG.csv`, `results/scale-TAG.md` and `results/scale-TAG.png` (cells vs seconds and GB).
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _report import write_text_atomic, positive_int, machine_line
from diffaug.report import md_table, savefig

RESULTS = Path(__file__).parent / 'results'

def atlas_chunks(n_cells:int, n_genes:int=2000, n_types:int=10, chunk:int=10000, seed:int=0):
    "Yield `(cell types, counts, log-normalised X)` of a synthetic atlas, `chunk` cells at a time (float32 arrays)."
    rng = np.random.default_rng(seed)
    base = rng.lognormal(-2.6, 1.2, n_genes)  # mean counts per gene: most genes low, a few high
    prof = np.repeat(base[None], n_types, 0)
    for k in range(n_types):  # each type up- or down-regulates a random fifth of the genes
        g = rng.choice(n_genes, n_genes // 5, replace=False)
        prof[k, g] *= rng.lognormal(0, 1.0, len(g))
    types = rng.integers(0, n_types, n_cells)
    for s in range(0, n_cells, chunk):
        t = types[s:s + chunk]
        size = rng.lognormal(0, 0.3, len(t))[:, None]
        mu = prof[t] * size
        counts = rng.poisson(rng.gamma(2.0, mu / 2.0)).astype(np.float32)  # negative binomial, dispersion 2
        yield t, counts, np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e4).astype(np.float32)

def make_atlas(path:Path, n_cells:int, n_genes:int=2000, n_types:int=10, chunk:int=10000, seed:int=0) -> Path:
    "Write a synthetic atlas (CSR X, obs['cell_type']) to `path` chunk by chunk; returns `path`."
    import h5py, anndata
    from anndata.io import write_elem
    tmp = path.with_suffix('.tmp.h5ad')
    with h5py.File(tmp, 'w') as f:
        X = f.create_group('X')
        X.attrs.update({'encoding-type': 'csr_matrix', 'encoding-version': '0.1.0', 'shape': (n_cells, n_genes)})
        data = X.create_dataset('data', (0,), maxshape=(None,), dtype='float32', chunks=(8192,))  # about what anndata's writer picks (7813 at 2000 genes)
        indices = X.create_dataset('indices', (0,), maxshape=(None,), dtype='int32', chunks=(8192,))  # about what anndata's writer picks (7813 at 2000 genes)
        indptr = [0]
        types = []
        for t, _, x in atlas_chunks(n_cells, n_genes, n_types, chunk, seed):
            types.append(t)
            r, c = np.nonzero(x)
            n0 = data.shape[0]
            data.resize((n0 + len(r),)); data[n0:] = x[r, c]
            indices.resize((n0 + len(r),)); indices[n0:] = c.astype(np.int32)
            indptr += (n0 + np.cumsum(np.bincount(r, minlength=len(t)))).tolist()
        X.create_dataset('indptr', data=np.asarray(indptr, dtype=np.int64))
        types = np.concatenate(types)
        obs = pd.DataFrame({'cell_type': pd.Categorical([f'type{k}' for k in types])}, index=[f'c{i}' for i in range(n_cells)])
        write_elem(f, 'obs', obs)
        write_elem(f, 'var', pd.DataFrame(index=[f'g{j}' for j in range(n_genes)]))
        for k in ('obsm', 'varm', 'obsp', 'varp', 'layers', 'uns'): write_elem(f, k, {})
        f.attrs.update({'encoding-type': 'anndata', 'encoding-version': '0.1.0'})
    os.replace(tmp, path)
    return path

def run_one(path:str, backed:bool, epochs:list, threads:int, seed:int, device:str='cpu', bs:int|None=None) -> dict:
    "One embedding in this process: phase times and peak RSS (called by the subprocess of `--run`)."
    import torch, anndata
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    adata = anndata.read_h5ad(path, backed='r') if backed else anndata.read_h5ad(path)
    t_read = time.perf_counter() - t0
    from diffaug.tl import embed
    t1 = time.perf_counter()
    embed(adata, epochs=tuple(epochs), random_state=seed, progress=False, device=device, **({} if bs is None else {'encoder': {'bs': bs}}))
    total = time.perf_counter() - t1
    phases = {k: float(v) for k, v in adata.uns['X_diffaug']['phase_seconds'].items()}
    return dict(read_s=t_read, embed_s=total, phases=phases, peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                gpu_peak_gb=torch.cuda.max_memory_allocated() / 2**30 if device.startswith('cuda') else float('nan'),
                shape=list(adata.shape), nnz=int(adata.X.group['data'].shape[0]) if backed else int(adata.X.nnz))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=positive_int, nargs='+', default=[10000, 100000, 300000, 1000000], help='cells per atlas')
    p.add_argument('--genes', type=positive_int, default=2000)
    p.add_argument('--epochs', type=int, nargs=3, default=[1, 1, 1], help='E1 M E2 epochs (a fixed small schedule)')
    p.add_argument('--threads', type=positive_int, default=1)
    p.add_argument('--data', default='/tmp/diffaug-atlases', help='folder for the generated atlases (cached)')
    p.add_argument('--timeout', type=positive_int, default=7200, help='seconds per run before it is recorded as killed')
    p.add_argument('--tag', default='full')
    p.add_argument('--no-reference', action='store_true', help='skip the in-memory 10k reference run')
    p.add_argument('--run', nargs=2, metavar=('PATH', 'MODE'), help=argparse.SUPPRESS)  # internal: one run, prints JSON
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cpu', help="where tl.embed trains ('cpu', 'cuda')")
    p.add_argument('--bs', type=positive_int, default=None, help="encoder batch size (default: the package's, 128; issue 11's tables ran with 500, the default then)")
    p.add_argument('--note', default='', help='a sentence on the conditions of the run, printed under the table')
    p.add_argument('--report-only', action='store_true', help='rewrite the .md and .png from the existing CSV')
    a = p.parse_args()
    if a.report_only: write(pd.read_csv(RESULTS / f'scale-{a.tag}.csv'), a); return
    if a.run:
        print('RESULT ' + json.dumps(run_one(a.run[0], a.run[1] == 'backed', a.epochs, a.threads, a.seed, a.device, a.bs))); return
    data = Path(a.data); data.mkdir(parents=True, exist_ok=True)
    runs = [(n, 'backed') for n in a.sizes] + ([] if a.no_reference else [(min(a.sizes), 'memory')])
    rows = []
    for n, mode in runs:
        f = data / f'atlas-{n}x{a.genes}.h5ad'
        if not f.exists():
            t0 = time.perf_counter(); make_atlas(f, n, a.genes, seed=a.seed)
            print(f"[scale] wrote {f} ({f.stat().st_size / 2**30:.2f} GB) in {time.perf_counter() - t0:.0f} s", flush=True)
        cmd = [sys.executable, __file__, '--run', str(f), mode, '--epochs', *map(str, a.epochs), '--threads', str(a.threads), '--seed', str(a.seed), '--device', a.device] + ([] if a.bs is None else ['--bs', str(a.bs)])
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
        t0 = time.perf_counter()
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, env=env)
            res = next((json.loads(l[7:]) for l in out.stdout.splitlines() if l.startswith('RESULT ')), None)
            status = 'ok' if res else f"failed: {(out.stderr.strip().splitlines() or ['?'])[-1][:120]}"
        except subprocess.TimeoutExpired: res, status = None, f'killed after {a.timeout} s'
        row = dict(cells=n, mode=mode, status=status, wall_s=time.perf_counter() - t0)
        if res:
            row.update(embed_s=res['embed_s'], read_s=res['read_s'], peak_rss_gb=res['peak_rss_gb'], us_per_cell=1e6 * res['embed_s'] / n,
                       gpu_peak_gb=res.get('gpu_peak_gb', float('nan')),
                       **{f'{k}_s': v for k, v in res['phases'].items()})
        rows.append(row); print(f"[scale] {row}", flush=True)
        write(pd.DataFrame(rows), a)

def write(df:pd.DataFrame, a):
    "CSV, a Markdown table with a sentence on what it shows, and the cells-vs-seconds/GB plot."
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f'scale-{a.tag}'
    write_text_atomic(stem.with_suffix('.csv'), df.to_csv(index=False))
    phases = [c for c in df if c.endswith('_s') and c not in ('embed_s', 'read_s', 'wall_s', 'prep_s')]
    if 'embed_s' in df and phases: df = df.assign(prep_s=df['embed_s'] - df[phases].sum(1))  # PCA, kNN graph, scaler: before E1
    cols = [c for c in ['cells', 'mode', 'status', 'embed_s', 'us_per_cell', 'peak_rss_gb', 'gpu_peak_gb', 'prep_s', 'E1_s', 'M.0_s', 'bank.0_s', 'E2.0_s']
            if c in df and not (c == 'gpu_peak_gb' and df[c].isna().all())]
    ok = df[df.status == 'ok']
    lines = [f"# Atlas scale: `tl.embed` on synthetic atlases ({a.genes} genes, ~10% non-zero, epochs {tuple(a.epochs)})", '',
             machine_line(a.threads) + (f' Device: {a.device} ({__import__("torch").cuda.get_device_name()}).' if a.device.startswith('cuda') else '') + (' ' + a.note if a.note else ''), '', md_table(df[cols], floatfmt='.2f'), '']
    b = ok[ok['mode'] == 'backed'].sort_values('cells')
    if len(b) >= 2:
        lo, hi = b.iloc[0], b.iloc[-1]
        lines.append(f"Peak RSS goes from {lo.peak_rss_gb:.2f} GB at {int(lo.cells):,} cells to {hi.peak_rss_gb:.2f} GB at "
                     f"{int(hi.cells):,} cells ({'flat' if hi.peak_rss_gb < 1.5 * lo.peak_rss_gb else 'growing with N'}); "
                     f"time per cell goes from {lo.us_per_cell:.0f} to {hi.us_per_cell:.0f} microseconds "
                     f"({hi.us_per_cell / lo.us_per_cell:.2f}x).")
    write_text_atomic(stem.with_suffix('.md'), '\n'.join(lines) + '\n')
    if len(ok):
        import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
        fig, axs = plt.subplots(1, 2, figsize=(9, 3.4))
        for mode, mk in (('backed', 'o-'), ('memory', 's')):
            d = ok[ok['mode'] == mode].sort_values('cells')
            if not len(d): continue
            axs[0].plot(d.cells, d.embed_s, mk, label=mode); axs[1].plot(d.cells, d.peak_rss_gb, mk, label=mode)
        for ax, yl in zip(axs, ('embedding time (s)', 'peak RSS (GB)')):
            ax.set_xscale('log'); ax.set_xlabel('cells'); ax.set_ylabel(yl); ax.legend(); ax.grid(alpha=.3)
        axs[0].set_yscale('log'); fig.suptitle(f"tl.embed on synthetic atlases, {a.threads} thread(s), epochs {tuple(a.epochs)}")
        savefig(fig, stem.with_suffix('.png'), dpi=110, bbox_inches='tight')

if __name__ == '__main__': main()
