"""Throughput of DiffAug contrastive learning on CIFAR-10-sized images (3x32x32), end to end through `DiffAug.fit`.

It times each phase of one E1 -> M -> E2 run (fastai loops, callbacks and EMA included) on `--n` images and reports
  - E1 and E2 encoder throughput in originals per second (the ResNet-18 trunk sees two rows per original),
  - M generator throughput in samples per second (the conditional UNet of `default_net`),
  - one view-bank refresh in ms per view (DDIM-10 here; add `--ddpm` for the reference DDPM-1000),
on CUDA when present (or `--device`). Throughput does not depend on image content, so the images are random
(seeded) unless `--cifar FOLDER` points at an extracted `cifar-10-batches-py` (nothing is downloaded).

    python benchmarks/contrastive_images.py                       # CUDA if present: 10000 images, width 64
    python benchmarks/contrastive_images.py --device cpu --n 512 --width 16 --threads 2
Results are appended to benchmarks/results/contrastive-images.csv and printed as a table.
"""
import argparse, os, platform, time
from pathlib import Path
import numpy as np, pandas as pd
import torch

from diffaug.contrastive import DiffAug
from diffaug.augment import ViewBank
from diffaug.core import make_generator
from _report import positive_int

def images(n, cifar=None, seed=0):
    "`n` images `(n, 3, 32, 32)` in [-1, 1]: CIFAR-10 training images from a local folder, or seeded random ones."
    if cifar:
        from diffaug.datasets import load_cifar10
        x, _ = load_cifar10(cifar, train=True)
        return x[:n]
    g = make_generator(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default=None, help='cuda or cpu (default: cuda when available)')
    p.add_argument('--n', type=positive_int, default=None, help='images (default 10000 on CUDA, 512 on CPU)')
    p.add_argument('--width', type=positive_int, default=None, help='ResNet-18 base width (default 64 on CUDA, 16 on CPU)')
    p.add_argument('--bs', type=positive_int, default=500, help='encoder batch size (reference 500)')
    p.add_argument('--gen-bs', type=positive_int, default=128, help='generator batch size')
    p.add_argument('--epochs', type=positive_int, nargs=3, default=[2, 2, 2], help='E1 M E2 epochs')
    p.add_argument('--ddpm', action='store_true', help='also time a DDPM-1000 bank refresh (slow on a CPU)')
    p.add_argument('--cifar', default=None, help='folder with cifar-10-batches-py (optional)')
    p.add_argument('--threads', type=positive_int, default=None, help='torch CPU threads')
    p.add_argument('--out', default=str(Path(__file__).parent / 'results'))
    args = p.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    dev = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    cuda = dev.type == 'cuda'
    n, width = args.n or (10000 if cuda else 512), args.width or (64 if cuda else 16)
    x = images(n, args.cifar)
    name = torch.cuda.get_device_name(dev) if cuda else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    e1, em, e2 = args.epochs
    m = DiffAug(epochs=(e1, em, e2), device=dev,
                random_state=0, progress=False, encoder=dict(bs=args.bs, net={'width': width}), gen=dict(bs=args.gen_bs))
    t0 = time.time(); m.fit(x); total = time.time() - t0
    pt = m.phase_times
    rows = [dict(what='E1 encoder', value=n * e1 / pt['E1'], unit='originals/s'),
            dict(what='M generator', value=n * em / pt['M.0'], unit='samples/s'),
            dict(what='bank refresh DDIM-10', value=1000 * pt['bank.0'] / n, unit='ms/view'),
            dict(what='E2 encoder (with bank)', value=n * e2 / pt['E2.0'], unit='originals/s'),
            dict(what='whole fit', value=total, unit='s')]
    if args.ddpm:
        k = min(n, 1000 if cuda else 16)
        xs = x[:k].to(dev)
        b = ViewBank(k, sampler='ddpm', steps=1000).set_shape(m.in_shape)
        b.refresh(m.generator, m.model.embed(xs), generator=make_generator(0, dev))
        rows.append(dict(what=f'bank refresh DDPM-1000 ({k} views)', value=1000 * b.log[-1]['seconds'] / k, unit='ms/view'))
    enc_params = sum(p.numel() for p in m.model.parameters())
    gen_params = sum(p.numel() for p in m.generator.net.parameters())
    df = pd.DataFrame(rows).assign(device=name, n=n, width=width, bs=args.bs, epochs='/'.join(map(str, args.epochs)),
                                   encoder_params=enc_params, generator_params=gen_params, torch=torch.__version__,
                                   data='CIFAR-10' if args.cifar else 'random 3x32x32')
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    f = out / 'contrastive-images.csv'
    df.to_csv(f, mode='a', header=not f.exists(), index=False)
    print(f"{name}: {n} images, ResNet-18 width {width} ({enc_params / 1e6:.1f}M params with head), "
          f"UNet generator {gen_params / 1e6:.1f}M params, epochs E1/M/E2 {e1}/{em}/{e2}")
    for r in rows: print(f"  {r['what']:<34} {r['value']:10.2f} {r['unit']}")

if __name__ == '__main__': main()
