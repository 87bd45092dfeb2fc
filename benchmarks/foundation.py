"""Benchmark the diffusion foundation: denoiser training throughput and sampling cost.

For the digits UNet (1x8x8) and the single-cell ResMLP (765-d, pbmc68k_reduced) it measures
  - training throughput (samples/s) of `train_denoiser`-style fastai training (DiffusionCB + EMA),
  - sampling cost in ms per sample for DDPM-1000, DDIM-50 and one-step diffuse-and-denoise,
each as the median of `--repeats` runs, on the CPU (with the thread count given) and on CUDA when available.

    python benchmarks/foundation.py                 # full
    python benchmarks/foundation.py --quick         # smoke test
Results are printed and written to benchmarks/results/foundation-<device>.md/.csv.
"""
import argparse, statistics, sys, time, platform
from pathlib import Path
import pandas as pd
import torch

from diffaug.core import make_generator
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_text_atomic, positive_int
from diffaug.datasets import digits_images, pbmc68k_reduced
from diffaug.rows import VectorScaler
from diffaug.training import train_denoiser, default_net
from diffaug.denoiser import diffuse_denoise
from diffaug.sampling import sample_ddpm, sample_ddim

def _sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def timed(f, device, repeats):
    ts = []
    for _ in range(repeats):
        _sync(device); t0 = time.perf_counter(); f(); _sync(device); ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts

def bench(name, x, device, args):
    rows = []
    x = x.to(device)
    epochs = 1 if args.quick else args.epochs
    # training throughput: median over repeats of full fits of `epochs` epochs (fastai loop, callbacks, EMA)
    n_train = int(len(x) * 0.9)
    med, _ = timed(lambda: train_denoiser(x, epochs=epochs, bs=args.bs, progress=False, device=device), device, args.repeats)
    n_params = sum(p.numel() for p in default_net(x).parameters())
    rows.append(dict(model=name, params=n_params, what=f'training (bs {args.bs})', value=n_train * epochs / med, unit='samples/s'))
    den = train_denoiser(x, epochs=1, bs=args.bs, progress=False, device=device)
    n = args.n_samples
    shape = (n,) + tuple(x.shape[1:])
    g = make_generator(0, device)
    for label, f in [('DDPM-1000', lambda: sample_ddpm(den, shape, generator=g, progress=False)),
                     ('DDIM-50', lambda: sample_ddim(den, shape, steps=50, generator=g, progress=False)),
                     ('DDIM-10', lambda: sample_ddim(den, shape, steps=10, generator=g, progress=False)),
                     ('one-step diffuse-denoise', lambda: diffuse_denoise(den, x[:n], 300, generator=g))]:
        if args.quick and label == 'DDPM-1000': continue
        med, _ = timed(f, device, args.repeats)
        rows.append(dict(model=name, params=n_params, what=f'{label} (batch {n})', value=med / n * 1000, unit='ms/sample'))
    return rows

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true')
    p.add_argument('--repeats', type=positive_int, default=3)
    p.add_argument('--epochs', type=positive_int, default=3)
    p.add_argument('--bs', type=positive_int, default=128)
    p.add_argument('--n-samples', type=positive_int, default=64)
    p.add_argument('--threads', type=positive_int, default=None, help='torch CPU threads (default: torch default)')
    p.add_argument('--devices', nargs='+', default=None, help="default: cpu, plus cuda when available")
    p.add_argument('--out', default=str(Path(__file__).parent / 'results'))
    args = p.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    if args.quick: args.repeats = 1
    devices = args.devices or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    xd, _ = digits_images()
    ad = pbmc68k_reduced()
    xp = VectorScaler('standard', clip=3.0).fit_transform(torch.as_tensor(ad.X, dtype=torch.float32))
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    for dev in devices:
        device = torch.device(dev)
        desc = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads'
        rows = bench('UNet digits 1x8x8', xd, device, args) + bench('ResMLP pbmc68k 765-d', xp, device, args)
        df = pd.DataFrame(rows)
        df['value'] = df['value'].round(2)
        print(f'\n## {dev} ({desc}), median of {args.repeats} runs\n')
        print(df.to_string(index=False))
        tag = dev.replace(':', '')
        df.to_csv(out / f'foundation-{tag}.csv', index=False)
        write_text_atomic(out / f'foundation-{tag}.md', f'# Foundation benchmark on {dev} ({desc})\n\nmedian of {args.repeats} runs, '
                                                  f'torch {torch.__version__}\n\n```\n{df.to_string(index=False)}\n```\n')

if __name__ == '__main__': main()
