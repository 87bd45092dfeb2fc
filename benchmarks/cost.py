"""DiffAug and scVI side by side on the same cells: seconds per epoch, the view bank, and peak memory (issue 24).

Cells: the synthetic atlases of `scale.py` (2,000 genes, 10 cell types, negative-binomial counts, log-normalised X,
CSR), with a batch column of 3 batches of unequal size added. Every run is its own subprocess, one torch thread, so
each peak RSS (`ru_maxrss`) is that run's alone:

  diffaug        tl.embed on the AnnData read into memory, batch_key='batch', the package defaults, epochs (1, 1, 1)
  diffaug_backed tl.embed on the AnnData read backed (X on disk unless it fits `ROWS_IN_MEMORY`), same settings
  scvi           scVI (scvi-tools) with batch_key='batch' on the counts, 2 epochs, the default model

Reported per run: the seconds of each DiffAug phase (E1, M and E2 are one epoch each here, so they are seconds per
epoch; 'prepare' is the scaler, the PCA and the kNN/MNN graph; 'bank' is one refresh of a stored bank, 0 when views
are drawn on demand), scVI's seconds per epoch, and the peak RSS in GiB (2^30 bytes: 'peak_gib'; for scVI also 'train_peak_gib', the
peak while it trains, polled every 0.2 s, without the building of its counts matrix, which the harness does). The load average of the machine is printed with
each row: on a shared machine the seconds are only comparable within one run of this script.

    python benchmarks/cost.py --sizes 10000 20000 100000        # results/cost-cpu.{csv,md}
    python benchmarks/cost.py --sizes 10000 100000 1000000 --modes diffaug_backed --epochs auto --tag cpu-defaults
    python benchmarks/cost.py --sizes 20000 --modes diffaug diffaug_backed --bs 128 512 --tag cpu-bs
    python benchmarks/cost.py --sizes 1000000 --modes scvi --scvi-epochs 1 --tag cpu-scvi-1m
    python benchmarks/cost.py --compare            # results/cost-cpu-scale.md: DiffAug and scVI from 10k to 1M cells
"""
from __future__ import annotations
import argparse, json, os, resource, shutil, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_text_atomic, positive_int, machine_line
from diffaug.report import md_table
from diffaug.contrastive import DEFAULT_BS

RESULTS = Path(__file__).resolve().parent / 'results'

def batches_of(n:int, k:int=3, seed:int=0) -> np.ndarray:
    "Batch names of `n` cells: `k` batches of unequal size (Dirichlet 2 proportions)."
    rng = np.random.default_rng(seed)
    return np.array([f'batch{i}' for i in rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 2.)))])

class RssPeak:
    "The highest resident set size of this process while the block runs, polled every 0.2 s (bytes, in `.peak`)."
    def __enter__(self):
        import threading
        self.peak, self._stop = self._rss(), threading.Event()
        def poll():
            while not self._stop.wait(0.2): self.peak = max(self.peak, self._rss())
        self._t = threading.Thread(target=poll, daemon=True); self._t.start(); return self
    def __exit__(self, *exc): self._stop.set(); self._t.join(); self.peak = max(self.peak, self._rss())
    @staticmethod
    def _rss():
        with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

def one_run(path:str, mode:str, n_batches:int, scvi_epochs:int, epochs:str='1,1,1', bs:int|None=None, checkpoint:str|None=None) -> dict:
    "One measurement (in a subprocess); returns its row."
    import torch, anndata
    torch.set_num_threads(1)
    t0 = time.time()
    if mode == 'scvi':
        import logging, scvi
        from scale import atlas_chunks
        n = anndata.read_h5ad(path, backed='r').n_obs
        import scipy.sparse as sp, gc
        a = anndata.AnnData(sp.vstack([sp.csr_matrix(c) for _, c, _ in atlas_chunks(n, 2000, chunk=10000, seed=0)], format='csr'))  # the counts, built by chunks
        a.obs['batch'] = batches_of(n, n_batches)
        scvi.settings.seed = 0; scvi.settings.verbosity = logging.ERROR
        scvi.model.SCVI.setup_anndata(a, batch_key='batch')
        m = scvi.model.SCVI(a); gc.collect()
        t1 = time.time()
        with RssPeak() as rp: m.train(max_epochs=scvi_epochs, accelerator='cpu', enable_progress_bar=False)
        t2 = time.time()
        row = dict(setup=t1 - t0, per_epoch=(t2 - t1) / scvi_epochs, train_peak_gib=rp.peak / 2**30)
    else:
        from diffaug.tl import embed
        a = anndata.read_h5ad(path, backed='r' if mode == 'diffaug_backed' else None)
        a.obs['batch'] = batches_of(a.n_obs, n_batches)
        t1 = time.time()
        embed(a, batch_key='batch', epochs=None if epochs == 'auto' else tuple(int(e) for e in epochs.split(',')), progress=False, device='cpu',
              **({} if bs is None else dict(encoder=dict(bs=bs))), **({} if checkpoint is None else dict(checkpoint=checkpoint)))
        ph, ep = a.uns['X_diffaug']['phase_seconds'], a.uns['X_diffaug']['params']['epochs_run']
        row = dict(setup=t1 - t0, prepare=time.time() - t1 - sum(ph.values()), E1=ph['E1'], M=ph['M.0'], bank=ph['bank.0'], E2=ph['E2.0'],
                   epochs='/'.join(str(int(e)) for e in ep), fit=time.time() - t1)
        row['us_per_cell'] = row['fit'] / a.n_obs * 1e6
        if a.isbacked: a.file.close()
    row.update(total=time.time() - t0, peak_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, load=os.getloadavg()[0])
    return row

SCALE_SOURCES = [  # (cells, DiffAug's CSV and mode, scVI's CSV): the rows measured for each size
    (10000, 'cost-cpu.csv', 'diffaug_backed', 'cost-cpu.csv'), (20000, 'cost-cpu.csv', 'diffaug_backed', 'cost-cpu.csv'),
    (100000, 'cost-cpu-defaults.csv', 'diffaug_backed', 'cost-cpu-scvi-100k.csv'),
    (1000000, 'cost-cpu-defaults.csv', 'diffaug_backed', 'cost-cpu-scvi-1m.csv')]

def compare(results=RESULTS) -> str:
    "DiffAug (backed AnnData, `batch_key`) and scVI (`batch_key`) from 10k to 1M cells: seconds per epoch and peak memory, as Markdown."
    rows = []
    for n, fd, mode, fs in SCALE_SOURCES:
        d, v = pd.read_csv(results / fd), pd.read_csv(results / fs)
        d = d[(d.cells == n) & (d.method == mode)].iloc[0]; v = v[(v.cells == n) & (v.method == 'scvi')].iloc[0]
        ep = [int(e) for e in str(d['epochs']).split('/')] if 'epochs' in d and pd.notna(d.get('epochs')) else [1, 1, 1]
        per = dict(E1=d['E1'] / ep[0], M=d['M'] / ep[1], E2=d['E2'] / ep[2])
        rows.append({'cells': f"{n:,}", 'DiffAug E1 s/epoch': f"{per['E1']:.1f}", 'DiffAug M s/epoch': f"{per['M']:.1f}",
                     'DiffAug E2 s/epoch': f"{per['E2']:.1f}", 'scVI s/epoch': f"{v['per_epoch']:.1f}",
                     'DiffAug / scVI (E1)': f"{per['E1'] / v['per_epoch']:.2f}x",
                     'DiffAug peak GiB': f"{d['peak_gib']:.2f}", 'scVI peak GiB': f"{v['peak_gib']:.2f}",
                     'peak ratio': f"{d['peak_gib'] / v['peak_gib']:.2f}x", 'load (DiffAug, scVI)': f"{d['load']:.1f}, {v['load']:.1f}"})
    df = pd.DataFrame(rows)
    lo_mem = sum(float(r['peak ratio'][:-1]) < 1 for r in rows)
    mem = pd.read_csv(results / 'cost-cpu.csv').set_index(['cells', 'method'])  # the in-memory AnnData rows of the same run
    inmem = '; '.join(f"{n:,} cells: encoder epoch {mem.loc[(n, 'diffaug'), 'E1'] / mem.loc[(n, 'scvi'), 'per_epoch']:.2f}x scVI's, "
                      f"peak {mem.loc[(n, 'diffaug'), 'peak_gib']:.2f} against {mem.loc[(n, 'scvi'), 'peak_gib']:.2f} GiB"
                      for n in (10000, 20000))
    faster = [r['cells'] for r in rows if float(r['DiffAug / scVI (E1)'][:-1]) < 1]
    return '\n'.join([
        '# DiffAug and scVI from 10,000 to 1,000,000 cells: seconds per epoch and peak memory', '',
        "Assembled by `benchmarks/cost.py --compare` from the committed runs of `cost.py` (synthetic atlases of 2,000 genes, 3 "
        "batches, `batch_key` in both; DiffAug on the backed `.h5ad` at the package defaults, scVI on the counts in memory; 1 torch "
        "thread each; 2-core CPU shared with other jobs, at the loads in the last column). 10k and 20k: one run with both methods "
        "(`cost-cpu`). 100k and 1M: DiffAug's rows of `cost-cpu-defaults` (phase seconds divided by the epochs run) and scVI's "
        "runs `cost-cpu-scvi-100k` and `cost-cpu-scvi-1m`, measured on other days: compare their times with care. DiffAug draws "
        "its generated views on demand at these sizes, so there is no bank refresh to time. Peak: the run's highest resident "
        "memory, including reading the data (scVI's counts matrix is built in memory; DiffAug reads rows from the file).", '',
        md_table(df), '',
        f"- **Memory: DiffAug is lower at {lo_mem} of {len(rows)} sizes**, and the gap grows with the data: at 1M cells DiffAug "
        f"peaks at {rows[-1]['DiffAug peak GiB']} GiB against scVI's {rows[-1]['scVI peak GiB']} GiB, because scVI holds the counts in "
        f"memory and DiffAug streams them from disk.",
        f"- **Time: scVI is faster per epoch at {len(rows) - len(faster)} of {len(rows)} sizes**"
        + (f" (DiffAug at {', '.join(faster)})" if faster else '') + f": DiffAug's encoder epoch costs {rows[0]['DiffAug / scVI (E1)']} "
        f"scVI's at 10k and {rows[-1]['DiffAug / scVI (E1)']} at 1M cells; its E2 epochs, which also draw generated views, cost more. "
        "scVI's default trains for more epochs at small sizes (400 at 20k cells) and fewer at large ones (its rule gives 8 at 1M), "
        "DiffAug's `auto_epochs` gives 10/13/10 at 10k and 1/1/1 at 1M.",
        f"- **With the AnnData in memory** (10k and 20k, the same run) DiffAug is closer in time and not lower in memory at 20k: {inmem}.", ''])

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sizes', type=positive_int, nargs='+', default=[10000, 20000, 100000])
    p.add_argument('--batches', type=positive_int, default=3)
    p.add_argument('--scvi-epochs', type=positive_int, default=2)
    p.add_argument('--modes', nargs='+', default=['diffaug', 'diffaug_backed', 'scvi'])
    p.add_argument('--data', default='/tmp/diffaug-atlases')
    p.add_argument('--tag', default='cpu')
    p.add_argument('--bs', type=positive_int, nargs='+', default=[None], help="DiffAug encoder batch sizes to compare (default: the package's)")
    p.add_argument('--epochs', default='1,1,1', help="DiffAug's epochs (E1,M,E2), or 'auto' for the package's default (`auto_epochs`)")
    p.add_argument('--run', nargs=2, help=argparse.SUPPRESS)
    p.add_argument('--checkpoint', help="DiffAug runs write a progress checkpoint after every phase into a fresh folder under this one (the phase seconds of a run cut short are then in its config.json)")
    p.add_argument('--from-csv', action='store_true', help="write the Markdown from results/cost-TAG.csv without running anything")
    p.add_argument('--compare', action='store_true', help="write results/cost-cpu-scale.md (DiffAug and scVI, 10k-1M) from the committed CSVs")
    a = p.parse_args()
    if a.compare:
        md = compare(); write_text_atomic(RESULTS / 'cost-cpu-scale.md', md + '\n'); print(md); return
    if a.run:
        print(json.dumps(one_run(a.run[0], a.run[1], a.batches, a.scvi_epochs, a.epochs, a.bs[0], a.checkpoint))); return
    from scale import make_atlas
    rows = []
    for n in ([] if a.from_csv else a.sizes):
        path = Path(a.data) / f'atlas-{n}.h5ad'
        if not path.exists(): make_atlas(path, n)
        for mode, bs in [(m, b) for m in a.modes for b in (a.bs if m != 'scvi' else [None])]:
            ck = None
            if a.checkpoint and mode != 'scvi':
                ck = Path(a.checkpoint) / f"{n}-{mode}-{bs or 'default'}"
                if ck.exists(): shutil.rmtree(ck)
            r = subprocess.run([sys.executable, __file__, '--run', str(path), mode, '--batches', str(a.batches), '--scvi-epochs', str(a.scvi_epochs), '--epochs', a.epochs]
                               + ([] if bs is None else ['--bs', str(bs)]) + ([] if ck is None else ['--checkpoint', str(ck)]), capture_output=True, text=True)
            if r.returncode:
                print(r.stderr[-3000:]); rows.append(dict(cells=n, method=mode, error=(r.stderr.strip().splitlines() or [f'exit status {r.returncode}'])[-1][:200])); continue
            row = dict(cells=n, method=mode, **({} if bs is None else dict(bs=bs)), **json.loads(r.stdout.strip().splitlines()[-1]))
            rows.append(row); print(row, flush=True)
            df = pd.DataFrame(rows)
            write_text_atomic(RESULTS / f'cost-{a.tag}.csv', df.to_csv(index=False))
    df = pd.read_csv(RESULTS / f'cost-{a.tag}.csv') if a.from_csv else pd.DataFrame(rows)
    if 'bs' in df: df['bs'] = df['bs'].astype('Int64')
    lines = [f"# DiffAug and scVI on the same cells: seconds per epoch and peak memory", '',
             f"Written by `benchmarks/cost.py`. {machine_line(1)} Synthetic atlases of 2,000 genes with {a.batches} batches; "
             + ("" if not any(m.startswith('diffaug') for m in a.modes) else "DiffAug ")
             + ("" if not any(m.startswith('diffaug') for m in a.modes) else
                f"with `batch_key` at the package defaults, one epoch per phase (so E1, M and E2 are seconds per epoch); " if a.epochs == '1,1,1' else
                f"with `batch_key` at the package defaults including the default epochs (`auto_epochs`: column 'epochs' as E1/M/E2, so E1, M and E2 are "
                f"seconds per phase); 'fit' is the whole `tl.embed` call and 'us_per_cell' that time per cell; " if a.epochs == 'auto' else
                f"with `batch_key` at the package defaults and epochs {a.epochs} (E1, M and E2 are seconds per phase); ")
             + (f"encoder batch size as in column 'bs' (the package's default is {DEFAULT_BS}); " if a.bs != [None] else '')
             + (f"scVI with `batch_key`, {a.scvi_epochs} epoch{'s' if a.scvi_epochs > 1 else ''} (its seconds per epoch in 'per_epoch'; 'setup' includes building the counts matrix). " if 'scvi' in a.modes else '') + "'load' is the 1-minute load average at the end of the run: the machine is shared, "
             f"so compare rows of one run only.", '']
    show = df.copy()
    for c in ('setup', 'prepare', 'E1', 'M', 'bank', 'E2', 'per_epoch', 'fit', 'total', 'us_per_cell'):
        if c in show: show[c] = show[c].map(lambda v: '' if pd.isna(v) else f"{v:.1f}")
    show['peak_gib'] = show['peak_gib'].map(lambda v: '' if pd.isna(v) else f"{v:.2f}")
    show['load'] = show['load'].map(lambda v: '' if pd.isna(v) else f"{v:.1f}")
    show = show.fillna('')
    if 'fit' in show and 'total' in show: show = show.drop(columns='total')  # the fit plus reading the file: a column too many for the page
    if 'method' in show and show['method'].nunique() == 1: show = show.drop(columns='method')  # one method: the sentence above names it
    show = show[[c for c in show if (show[c].astype(str).str.strip() != '').any()]]  # no empty columns (e.g. 'error' when every run succeeded)
    lines += [md_table(show), '']
    words = []
    for n, d in df.groupby('cells'):
        d = d.set_index('method')
        if {'diffaug', 'scvi'} <= set(d.index) and 'E1' in d:
            de, sv = d.loc['diffaug'], d.loc['scvi']
            words.append(f"{n:,} cells: DiffAug E {de['E1']:.0f} s and M {de['M']:.0f} s per epoch against scVI's {sv['per_epoch']:.0f} s; "
                         f"peak {de['peak_gib']:.2f} GiB against {sv['peak_gib']:.2f} GiB ({'DiffAug' if de['peak_gib'] < sv['peak_gib'] else 'scVI'} lower).")
    if 'us_per_cell' in df and df['us_per_cell'].notna().sum() > 1 and df['cells'].nunique() > 1 and 'bs' not in df:
        d = df.dropna(subset=['us_per_cell']).sort_values('cells')
        lo, hi = d.iloc[0], d.iloc[-1]
        words.append(f"Time per cell at the defaults: {lo['us_per_cell']:.0f} us at {lo['cells']:,} cells, {hi['us_per_cell']:.0f} us at {hi['cells']:,} "
                     f"({hi['us_per_cell'] / lo['us_per_cell']:.2f}x); the whole fit {lo['fit'] / 60:.1f} and {hi['fit'] / 60:.1f} minutes; "
                     f"peak {d['peak_gib'].max():.2f} GiB at most ({d['peak_gib'].max() * 2**30 / 1e9:.2f} GB).")
    if 'bs' in df and df['bs'].nunique() > 1:
        for (n, meth), d in df.dropna(subset=['fit']).groupby(['cells', 'method']):
            d = d.sort_values('fit'); f, sl = d.iloc[0], d.iloc[-1]
            words.append(f"{n:,} cells, {meth}: batch {f['bs']} is the faster, {f['fit']:.0f} s against {sl['fit']:.0f} s for batch {sl['bs']} "
                         f"({sl['fit'] / f['fit']:.2f}x; E1 {f['E1']:.1f} vs {sl['E1']:.1f} s, E2 {f['E2']:.1f} vs {sl['E2']:.1f} s), at loads "
                         f"{f['load']:.1f} and {sl['load']:.1f}.")
    lines += ['\n'.join(f"- {w}" for w in words), '']
    write_text_atomic(RESULTS / f'cost-{a.tag}.md', '\n'.join(lines) + '\n')
    print('\n'.join(lines))

if __name__ == '__main__': main()
