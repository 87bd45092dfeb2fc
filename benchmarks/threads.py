"""Torch's CPU threads on a busy machine: does a small diffaug training step survive background load?

torch's OpenMP threads spin while they wait for work (`OMP_WAIT_POLICY=ACTIVE`, the usual default). diffaug's models
are small, so a training step is many short parallel regions; when other processes keep the cores busy, spinning
threads compete with them and with each other. `import diffaug` therefore asks for sleeping threads
(`OMP_WAIT_POLICY=PASSIVE`) unless the caller set the variable or had imported torch first. This script measures the
choice side by side in one run: one denoiser epoch (the digits UNet) and one DA-classifier epoch on 1257 digits, in a
fresh process per cell (the policy is read when torch loads), for

  threads: 1 | 2 spinning (ACTIVE) | 2 sleeping (PASSIVE)
  x background: idle | --busy N busy-looping processes | another torch training job with 2 spinning threads (as when
                two notebooks or two test workers run side by side)

It reports the median of --repeats runs in seconds and the worker's peak RSS, and writes threads.{md,csv} to --out.

    python benchmarks/threads.py                 # about 3 minutes on a 2-core CPU; more when spinning threads stall
    python benchmarks/threads.py --busy 2 --repeats 3 --timeout 180
"""
from __future__ import annotations
import argparse, json, multiprocessing as mp, os, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import pandas as pd
from _report import write_text_atomic, positive_int
from diffaug.report import md_table

WORKER = r'''
import json, resource, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from diffaug.datasets import digits_images
from diffaug.training import train_denoiser
from diffaug.classifier import fit_classifier
x, y = digits_images(); x, y = x[:1257], y[:1257]
t = time.perf_counter(); den = train_denoiser(x, epochs=1, progress=False, random_state=0); a = time.perf_counter() - t
t = time.perf_counter(); fit_classifier(x, y, mode='da', denoiser=den, epochs=1, progress=False, valid_pct=0); b = time.perf_counter() - t
print(json.dumps(dict(denoiser_epoch=a, da_epoch=b, rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)))
'''
SETTINGS = [('1 thread', 1, 'PASSIVE'), ('2 threads, spinning (ACTIVE)', 2, 'ACTIVE'), ('2 threads, sleeping (PASSIVE)', 2, 'PASSIVE')]

def _busy():
    while True: pass

def _torch_job():
    "Another torch training job, over and over: 2 threads that spin (the usual default), the common neighbour of a run."
    env = {k: v for k, v in os.environ.items() if k not in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    env['OMP_WAIT_POLICY'] = 'ACTIVE'
    while True: subprocess.run([sys.executable, '-c', WORKER, '2'], capture_output=True, env=env)

def run_cell(threads, policy, timeout):
    env = {k: v for k, v in os.environ.items() if k not in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OMP_WAIT_POLICY')}
    env['OMP_WAIT_POLICY'] = policy
    try:
        r = subprocess.run([sys.executable, '-c', WORKER, str(threads)], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired: return None
    if r.returncode: raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])

def report(df, command, repeats, timeout, load0, minutes) -> str:
    "The markdown report of a run's rows: the median table and, per background, which setting wins."
    import platform, torch
    s = df.groupby(['background', 'setting'], sort=False).agg(denoiser_epoch_s=('denoiser_epoch', 'median'), da_epoch_s=('da_epoch', 'median'),
                                                              peak_rss_gb=('rss_gb', 'max'), timed_out=('timed_out', 'sum')).reset_index()
    s['both_s'] = s.denoiser_epoch_s + s.da_epoch_s
    ref = s[(s.background == 'idle') & (s.setting == '1 thread')].both_s.iloc[0]
    s['vs 1 thread idle'] = [f"{v / ref:.2f}x" for v in s.both_s]
    words = []
    for bg, g in s.groupby('background', sort=False):
        w = g.loc[g.both_s.idxmin()]; l = g.loc[g.both_s.idxmax()]
        words.append(f"- **{bg}: {w.setting} wins** ({w.both_s:.2f} s); the slowest is {l.setting} ({l.both_s:.2f} s, {l.both_s / w.both_s:.1f}x).")
    return (f"# Torch threads on a busy CPU\n\n{command}: {os.cpu_count()} cores ({platform.machine()}), torch {torch.__version__}; "
            f"median of {repeats} runs per cell, each in a fresh process; one denoiser epoch and one DA-classifier epoch on 1257 "
            f"digits (seconds). A cell that passed {timeout} s is NaN and counted in `timed_out`. Load average when it "
            f"started: {load0:.2f}. Total {minutes:.1f} min.\n\n" + md_table(s, floatfmt='.2f') + "\n\n" + '\n'.join(words) + "\n\n"
            "Spinning threads are fastest on an idle machine and the slowest, and the least predictable, as soon as anything "
            "else runs; sleeping threads lose a little when idle and keep their speed under load. `import diffaug` asks for "
            "sleeping threads (`OMP_WAIT_POLICY=PASSIVE`) unless the variable is set or torch was imported first; set "
            "`OMP_WAIT_POLICY=ACTIVE` before starting Python for the idle-machine speed.\n")

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--busy', type=positive_int, default=2, help='busy background processes in the loaded rows (default 2)')
    p.add_argument('--repeats', type=positive_int, default=2, help='runs per cell; the median is reported (default 2)')
    p.add_argument('--timeout', type=positive_int, default=150, help='seconds before a cell is given up (default 150)')
    p.add_argument('--out', default=str(Path(__file__).resolve().parent / 'results'), help='output folder')
    a = p.parse_args(argv)
    rows, T0, load0 = [], time.time(), os.getloadavg()[0]
    for load, bg in ((0, 'idle'), (a.busy, f'{a.busy} busy processes'), (1, 'another torch job, 2 spinning threads')):
        procs = [mp.Process(target=_torch_job if bg.startswith('another') else _busy, daemon=True) for _ in range(load)]
        for q in procs: q.start()
        if bg.startswith('another'): time.sleep(5)  # let it start training
        try:
            for name, th, pol in SETTINGS:
                for rep in range(a.repeats):
                    r = run_cell(th, pol, a.timeout)
                    rows.append(dict(background=bg, setting=name, repeat=rep,
                                     **(r or dict(denoiser_epoch=float('nan'), da_epoch=float('nan'), rss_gb=float('nan'))), timed_out=r is None))
                    print(f"[{time.time() - T0:6.0f}s] {rows[-1]}", flush=True)
        finally:
            for q in procs: q.terminate()
            if bg.startswith('another'): subprocess.run(['pkill', '-f', 'torch.set_num_threads(int(sys.argv[1]))'], capture_output=True)
    df = pd.DataFrame(rows)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / 'threads.csv', df.to_csv(index=False))
    text = report(df, f"`python benchmarks/threads.py --busy {a.busy} --repeats {a.repeats}`", a.repeats, a.timeout, load0, (time.time() - T0) / 60)
    write_text_atomic(out / 'threads.md', text)
    print(text)

if __name__ == '__main__':
    main()
