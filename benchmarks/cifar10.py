"""CIFAR-10 pipeline of the second method: a denoiser, ResNet-18 plain vs DiffAug, and their accuracy on clean, corrupted
and DiffAug-Ensemble inputs, with what each step costs.

Per seed it
  1  trains a CIFAR-10 denoiser (a diffaug UNet) or loads one: `--denoiser DIR` (saved by `Denoiser.save`) or
     `--diffusers DIR` (a pretrained diffusers UNet + scheduler written by `save_pretrained`);
  2  trains the built-in CIFAR ResNet-18 (3x3 stem, time-free) twice: plain, and with DiffAug views (`mode='diffaug'`);
  3  corrupts the test set with the 15 standard corruptions x 5 severities (imagecorruptions, `pip install
     'diffaug[corruptions]'`), cached on disk in the CIFAR-10-C layout (`<kind>.npy` of uint8 (5N, 32, 32, 3), severity
     major, and `labels.npy`); `--cifar10c DIR` reads the real CIFAR-10-C files instead;
  4  measures accuracy on clean and corrupted test images, with and without the DiffAug Ensemble (DE, on the first
     `n_test_de` test images, since it costs 10 denoiser passes per image);
  5  measures cost: training images/s, the DiffAug training step against its floor (the classifier's forward and
     backward on 2B images + one denoiser forward on B images, timed alone on the same batches), DE images/s, and
     peak GPU memory per phase (peak RSS on a CPU).
It writes cifar10-<tag>.{md,csv} and cifar10-<tag>-cost.csv into --out, atomically, after every seed.

    python benchmarks/cifar10.py --data ~/data                 # full size (a GPU: hours; see --set for shorter runs)
    python benchmarks/cifar10.py --data ~/data --set cls_epochs=30 n_test_de=1000 --tag short
    python benchmarks/cifar10.py --toy --out /tmp/c10          # toy size on a CPU (under a minute): writes fake CIFAR files first
"""
from __future__ import annotations
import argparse, copy, math, pickle, resource, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, write_text_atomic, positive_int, setting_arg
from diffaug.report import md_table

from diffaug.core import Seeds
from diffaug.datasets import load_cifar10
from diffaug.corruptions import corrupted_set, save_corrupted, load_corrupted, CORRUPTIONS, EXTRA_CORRUPTIONS
from diffaug.training import train_denoiser
from diffaug.denoiser import Denoiser, load_diffusers
from diffaug.nets import UNet
from diffaug.classifier import fit_classifier, predict_proba, model_of, DE_STEPS
from diffaug.learner import amp_dtype

RESULTS = Path(__file__).resolve().parent / 'results'

FULL = dict(n_train=None, n_test=None, n_test_de=2000, den_epochs=100, den_bs=256, den_lr=2e-4, den_base=64,
            cls_epochs=100, cls_bs=256, cls_lr=1e-3, width=64, diffaug_t_max=500, kinds=list(CORRUPTIONS),
            severities=[1, 2, 3, 4, 5], de_steps=list(DE_STEPS), precision='auto', floor_batches=20)
TOY = dict(FULL, n_train=200, n_test=30, n_test_de=30, den_epochs=1, den_bs=32, den_lr=2e-3, den_base=16, cls_epochs=1,
           cls_bs=32, width=8, severities=[1, 5], de_steps=[0, 100, 200], floor_batches=2)

# ---------------------------------------------------------------------------------------------------- data

def write_toy_cifar(root:Path, n_train:int, n_test:int, seed:int=0):
    "Fake CIFAR-10 python batches (5 training batches, the test batch, the meta file) of smooth class-coloured images."
    g = np.random.default_rng(seed)
    d = root / 'cifar-10-batches-py'; d.mkdir(parents=True, exist_ok=True)
    base = g.uniform(40, 215, (10, 3))
    def batch(n):
        y = np.arange(n) % 10
        low = g.normal(0, 30, (n, 3, 4, 4)).repeat(8, 2).repeat(8, 3)
        x = np.clip(base[y][:, :, None, None] + low + g.normal(0, 8, (n, 3, 32, 32)), 0, 255).astype(np.uint8)
        return {'data': x.reshape(n, -1), 'labels': y.tolist()}
    per = -(-n_train // 5)
    for k in range(1, 6):
        with open(d / f'data_batch_{k}', 'wb') as f: pickle.dump(batch(per), f)
    with open(d / 'test_batch', 'wb') as f: pickle.dump(batch(n_test), f)
    with open(d / 'batches.meta', 'wb') as f: pickle.dump({'label_names': [f'class{i}' for i in range(10)]}, f)
    return root

def corrupted_cifar(xte, cfg, cache:Path|None, cifar10c:Path|None, seed:int, log) -> dict:
    "`{(kind, severity): images}` from CIFAR-10-C-style files (the real ones, or this script's cache), made and cached when missing."
    n, src = len(xte), cifar10c or cache
    have = [k for k in cfg['kinds'] if src is not None and (src / f'{k}.npy').is_file()]
    out = load_corrupted(src, have, cfg['severities'], n=n)[0] if have else {}
    missing = [k for k in cfg['kinds'] if k not in have]
    if missing:
        t0 = time.time()
        made = corrupted_set(xte, missing, (1, 2, 3, 4, 5), random_state=seed)
        log(f"corrupted {n} test images x {len(missing)} kinds x 5 severities in {time.time() - t0:.0f}s")
        if cache is not None: save_corrupted(cache, made)
        out.update({(k, s): made[(k, s)] for k in missing for s in cfg['severities']})
    return {(k, s): out[(k, s)] for k in cfg['kinds'] for s in cfg['severities']}

# ---------------------------------------------------------------------------------------------------- cost

def _sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

def peak_memory(dev) -> float:
    "Peak GPU memory (GB) since the last reset on CUDA, else the process's peak RSS (GB)."
    if dev.type == 'cuda': return torch.cuda.max_memory_allocated(dev) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6

def reset_peak(dev):
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)

def floor_seconds(learn, den, x, bs, n_batches, precision) -> dict:
    """Seconds per batch of the DiffAug floor: the classifier's forward/backward/step on 2B images plus one denoiser forward on B.
    The classifier steps are timed on a copy of the model, so the trained classifier that is evaluated next is untouched."""
    model = copy.deepcopy(model_of(learn))
    dev = next(model.parameters()).device
    dt = amp_dtype(precision, dev)
    ac = (lambda: torch.autocast(dev.type, dtype=dt)) if dt is not None else (lambda: torch.autocast(dev.type, enabled=False))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator(device='cpu').manual_seed(0)
    xb = x[torch.randint(0, len(x), (bs,), generator=g)].to(dev)
    yb = torch.randint(0, 10, (2 * bs,), generator=g).to(dev)
    t = torch.randint(0, 500, (bs,), generator=g).to(dev)
    xt = den.schedule.diffuse(xb, t, generator=torch.Generator(device=dev).manual_seed(0))[0]
    cl = dev.type == 'cuda'
    x2 = torch.cat([xb, xb]).contiguous(memory_format=torch.channels_last) if cl else torch.cat([xb, xb])
    model.train()
    def cls_step():
        with ac(): loss = F.cross_entropy(model(x2), yb)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    def den_fwd():
        with torch.no_grad(), ac(): den(xt, t, clip=True)
    res = {}
    for name, fn in (('classifier fwd+bwd on 2B', cls_step), ('denoiser forward on B', den_fwd)):
        for _ in range(2): fn()  # warm-up
        _sync(dev); t0 = time.perf_counter()
        for _ in range(n_batches): fn()
        _sync(dev); res[name] = (time.perf_counter() - t0) / n_batches
    del model, opt
    return res

# ---------------------------------------------------------------------------------------------------- one seed

def run_seed(seed, cfg, data, den_src, out, dev, log):
    xtr, ytr, xte, yte = data
    rows, cost = [], []
    reset_peak(dev)
    if den_src is None:
        net = UNet(3, base=cfg['den_base'], mults=(1, 2, 2, 2))
        den = train_denoiser(xtr, net=net, epochs=cfg['den_epochs'], bs=cfg['den_bs'], lr=cfg['den_lr'], random_state=seed,
                             device=dev, progress=False)
        den.save(out / f'denoiser-seed{seed}')
        cost.append(dict(seed=seed, what='denoiser training', value=den.train_seconds, unit='s'))
        cost.append(dict(seed=seed, what='denoiser training, peak memory', value=peak_memory(dev), unit='GB'))
        log(f"seed {seed}: denoiser trained in {den.train_seconds:.0f}s")
    else: den = den_src
    learners = {}
    for mode in ('plain', 'diffaug'):
        reset_peak(dev)
        l = fit_classifier(xtr, ytr, mode=mode, denoiser=den if mode == 'diffaug' else None, schedule=den.schedule,
                           epochs=cfg['cls_epochs'], bs=cfg['cls_bs'], lr=cfg['cls_lr'], valid_pct=0, random_state=seed,
                           model_kw=dict(trunk='resnet18', width=cfg['width']), t_max=cfg['diffaug_t_max'],
                           precision=cfg['precision'], progress=False, device=dev)
        learners[mode] = l
        secs = l.epoch_seconds[1:] or l.epoch_seconds  # the first epoch includes warm-up
        ep = float(np.mean(secs))
        n_batches = math.ceil(len(xtr) / cfg['cls_bs'])
        cost += [dict(seed=seed, what=f'{mode} training', value=len(xtr) / ep, unit='images/s'),
                 dict(seed=seed, what=f'{mode} training step', value=ep / n_batches, unit='s'),
                 dict(seed=seed, what=f'{mode} training, peak memory', value=peak_memory(dev), unit='GB')]
        log(f"seed {seed}: {mode} ResNet-18 trained ({ep:.1f}s per epoch)")
    fl = floor_seconds(learners['diffaug'], den, xtr, cfg['cls_bs'], cfg['floor_batches'], cfg['precision'])
    step = next(c['value'] for c in cost if c['what'] == 'diffaug training step' and c['seed'] == seed)
    cost += [dict(seed=seed, what=k, value=v, unit='s') for k, v in fl.items()]
    cost.append(dict(seed=seed, what='DiffAug step / floor', value=step / sum(fl.values()), unit='x'))

    sets = {('clean', 0): xte, **corrupted_cifar(xte, cfg, out / f'cache-n{len(xte)}-seed{seed}', cfg.get('cifar10c'), seed, log)}
    nde = min(cfg['n_test_de'], len(xte))
    for mode, l in learners.items():
        name = 'plain' if mode == 'plain' else 'DiffAug'
        for (kind, sev), xs in sets.items():
            p = predict_proba(l, xs, bs=1024)
            ok = (p.argmax(1).cpu() == yte).float()
            rows += [dict(seed=seed, method=name, corruption=kind, severity=sev, subset='all', acc=float(ok.mean())),
                     dict(seed=seed, method=name, corruption=kind, severity=sev, subset='de', acc=float(ok[:nde].mean()))]
        reset_peak(dev); _sync(dev); t0 = time.perf_counter(); n_de = 0
        for (kind, sev), xs in sets.items():
            p = predict_proba(l, xs[:nde], ensemble=True, denoiser=den, steps=tuple(cfg['de_steps']), generator=Seeds(seed).seed('ensemble'), bs=1024)
            n_de += nde
            rows.append(dict(seed=seed, method=name + ' + DE', corruption=kind, severity=sev, subset='de',
                             acc=float((p.argmax(1).cpu() == yte[:nde]).float().mean())))
        _sync(dev)
        cost += [dict(seed=seed, what=f'{name} + DE prediction', value=n_de / (time.perf_counter() - t0), unit='images/s'),
                 dict(seed=seed, what=f'{name} + DE prediction, peak memory', value=peak_memory(dev), unit='GB')]
        log(f"seed {seed}: {name} evaluated on {len(sets)} sets (DE on {nde} images each)")
    return rows, cost

# ---------------------------------------------------------------------------------------------------- report

def _fmt(vals):
    vals = [100 * v for v in vals]
    return f"{vals[0]:.1f}" if len(vals) == 1 else f"{np.mean(vals):.1f} ± {np.std(vals, ddof=1):.1f}"

def report(df, cost, cfg, meta) -> str:
    seeds = sorted(int(s) for s in df.seed.unique())
    one = len(seeds) == 1
    de = df[df.subset == 'de']
    methods = ['plain', 'plain + DE', 'DiffAug', 'DiffAug + DE']
    sev = sorted(s for s in de.severity.unique() if s > 0)
    tab = []
    for m in methods:
        r = de[de.method == m]
        per_seed = lambda q: [q[q.seed == s].acc.mean() for s in seeds]
        row = {'method': m, 'clean': _fmt(per_seed(r[r.corruption == 'clean'])),
               'corrupted mean': _fmt(per_seed(r[r.corruption != 'clean']))}
        for s in sev: row[f'sev {s}'] = _fmt(per_seed(r[(r.corruption != 'clean') & (r.severity == s)]))
        tab.append(row)
    tab = pd.DataFrame(tab)
    mean_of = lambda m, clean: np.mean([de[(de.method == m) & ((de.corruption == 'clean') == clean) & (de.seed == s)].acc.mean() for s in seeds])
    cor = {m: mean_of(m, False) for m in methods}; cln = {m: mean_of(m, True) for m in methods}
    best = max(cor, key=cor.get)
    L = [f"# CIFAR-10: plain vs DiffAug ResNet-18, with and without the DiffAug Ensemble ({meta['tag']})", '',
         f"{meta['data']}; {len(seeds)} seed(s) {seeds}{' (one seed: single values, no spread)' if one else '; mean ± std over seeds'}. "
         f"Denoiser: {meta['denoiser']}. Classifiers: built-in CIFAR ResNet-18 (width {cfg['width']}), {cfg['cls_epochs']} epochs, "
         f"batch {cfg['cls_bs']}, DiffAug views for t <= {cfg['diffaug_t_max']}. Corruptions: {meta['corruptions']}. "
         f"Device: {meta['device']}; precision {meta['precision']}. Total time {meta['minutes']:.1f} min.", '',
         f"## Accuracy (%) on the first {meta['n_de']} test images (the DE subset)", '', md_table(tab), '',
         (f"**Which row wins:** on corrupted images, **{best}** ({100 * cor[best]:.1f}%). " if max(cor.values()) - min(cor.values()) > 5e-4
          else f"**No row wins:** all four are at {100 * cor[best]:.1f}% on corrupted images. ") +
         f"DiffAug + DE vs plain: corrupted {100 * (cor['DiffAug + DE'] - cor['plain']):+.1f} points, clean "
         f"{100 * (cln['DiffAug + DE'] - cln['plain']):+.1f} points; DiffAug alone vs plain: corrupted "
         f"{100 * (cor['DiffAug'] - cor['plain']):+.1f}, clean {100 * (cln['DiffAug'] - cln['plain']):+.1f}. "
         f"The paper's direction (DiffAug + DE above plain on corrupted accuracy, clean within 1 point) is "
         f"{'reproduced' if cor['DiffAug + DE'] > cor['plain'] and abs(cln['DiffAug + DE'] - cln['plain']) <= 0.01 else 'NOT reproduced'} here.", '']
    full = df[df.subset == 'all']
    if len(full) and meta['n_de'] < meta['n_test']:
        t2 = pd.DataFrame([{'method': m, 'clean': _fmt([full[(full.method == m) & (full.corruption == 'clean') & (full.seed == s)].acc.mean() for s in seeds]),
                            'corrupted mean': _fmt([full[(full.method == m) & (full.corruption != 'clean') & (full.seed == s)].acc.mean() for s in seeds])}
                           for m in ('plain', 'DiffAug')])
        L += [f"Without the ensemble on all {meta['n_test']} test images:", '', md_table(t2), '']
    pk = de[de.corruption != 'clean'].groupby(['corruption', 'method']).acc.mean().unstack('method')[methods] * 100
    pk = pk.reindex([k for k in cfg['kinds'] if k in pk.index]).reset_index()
    L += ['Per corruption (mean over severities and seeds, %):', '', md_table(pk, floatfmt='.1f'), '']
    c = cost.groupby(['what', 'unit'], sort=False).value.agg(['mean', 'std', 'count']).reset_index()
    c['value'] = [f"{m:.4g}" if n == 1 or np.isnan(s) else f"{m:.4g} ± {s:.2g}" for m, s, n in zip(c['mean'], c['std'], c['count'])]
    ratio = cost[cost.what == 'DiffAug step / floor'].value.mean()
    L += ['## Cost', '', md_table(c[['what', 'value', 'unit']]), '',
          f"The DiffAug training step takes **{ratio:.2f}x** its floor (target: at most 1.3x). Peak memory is GPU memory "
          f"(`torch.cuda.max_memory_allocated`) on CUDA and the process's peak RSS on a CPU.", '']
    return '\n'.join(L)

# ---------------------------------------------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default=None, help='folder holding cifar-10-batches-py/ (nothing is downloaded unless --download)')
    p.add_argument('--download', action='store_true', help='let torchvision download CIFAR-10 (163 MB) into --data')
    p.add_argument('--toy', action='store_true', help='write small fake CIFAR-10 files and run at toy size (CPU, under a minute)')
    p.add_argument('--denoiser', default=None, help='folder of a saved diffaug Denoiser (skip its training)')
    p.add_argument('--diffusers', default=None, help='folder of a pretrained diffusers UNet + scheduler (save_pretrained)')
    p.add_argument('--cifar10c', default=None, help='folder of the real CIFAR-10-C .npy files (else the corruptions are made and cached)')
    p.add_argument('--seeds', type=positive_int, default=1, help='number of seeds (default 1)')
    p.add_argument('--device', default=None, help='cuda or cpu (default: cuda when available)')
    p.add_argument('--set', nargs='+', type=setting_arg, default=[], metavar='KEY=VALUE', help='override settings: ' + ', '.join(FULL))
    p.add_argument('--out', default=str(RESULTS), help='output folder (default benchmarks/results)')
    p.add_argument('--tag', default=None, help="name of the report files (default 'toy' or 'full')")
    p.add_argument('--quiet', action='store_true', help='no progress lines')
    a = p.parse_args(argv)
    if not a.toy and not a.data: p.error('give --data FOLDER (CIFAR-10) or --toy')
    if a.denoiser and a.diffusers: p.error('give --denoiser or --diffusers, not both')
    cfg = dict(TOY if a.toy else FULL)
    bad = {k for k, _ in a.set} - set(cfg)
    if bad: p.error(f"unknown settings {sorted(bad)}; known: {sorted(cfg)}")
    cfg.update(dict(a.set))
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    tag = a.tag or ('toy' if a.toy else 'full')
    dev = torch.device(a.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    T0 = time.time()
    log = (lambda m: None) if a.quiet else (lambda m: print(f"[{time.time() - T0:7.1f}s] {m}", flush=True))
    bad_kinds = [k for k in cfg['kinds'] if k not in CORRUPTIONS + EXTRA_CORRUPTIONS]
    if bad_kinds: p.error(f"unknown corruptions {bad_kinds}; choose from {list(CORRUPTIONS + EXTRA_CORRUPTIONS)}")
    if a.toy:
        root = write_toy_cifar(out / 'toy-data', cfg['n_train'], cfg['n_test'])
        (xtr, ytr), (xte, yte) = load_cifar10(root, check_md5=False), load_cifar10(root, train=False, check_md5=False)
        data_line = f"toy data (fake CIFAR-10 files written by the script): {cfg['n_train']} training and {cfg['n_test']} test images"
    else:
        (xtr, ytr), (xte, yte) = load_cifar10(a.data, download=a.download), load_cifar10(a.data, train=False, download=a.download)
        data_line = 'CIFAR-10'
    if cfg['n_train']: xtr, ytr = xtr[:cfg['n_train']], ytr[:cfg['n_train']]
    if cfg['n_test']: xte, yte = xte[:cfg['n_test']], yte[:cfg['n_test']]
    if not a.toy: data_line += f" ({len(xtr)} training, first {len(xte)} test images)"
    cfg['cifar10c'] = Path(a.cifar10c).expanduser() if a.cifar10c else None
    if cfg['cifar10c'] is not None:  # before any training
        lack = [k for k in cfg['kinds'] if not (cfg['cifar10c'] / f'{k}.npy').is_file()]
        if lack: p.error(f"{cfg['cifar10c']} lacks the corruption(s) {', '.join(repr(k) for k in lack)} ({', '.join(k + '.npy' for k in lack)})")
    den_src, den_line = None, f"diffaug UNet (base {cfg['den_base']}, mults 1-2-2-2), {cfg['den_epochs']} epochs, batch {cfg['den_bs']}, lr {cfg['den_lr']}"
    if a.denoiser: den_src, den_line = Denoiser.load(a.denoiser, device=dev), f"loaded from {a.denoiser}"
    if a.diffusers: den_src, den_line = load_diffusers(a.diffusers, device=dev), f"pretrained diffusers model from {a.diffusers}"
    if den_src is not None: den_src.data_shape = den_src.data_shape or (3, 32, 32)
    dt = amp_dtype(cfg['precision'], dev)
    meta = dict(tag=tag, data=data_line, denoiser=den_line, n_test=len(xte), n_de=min(cfg['n_test_de'], len(xte)),
                corruptions=('real CIFAR-10-C files' if cfg['cifar10c'] else f"{len(cfg['kinds'])} kinds ({', '.join(cfg['kinds']) if len(cfg['kinds']) < 5 else 'imagecorruptions, ImageNet-C parameters'})")
                + f", severities {cfg['severities']}",
                device=(torch.cuda.get_device_name(dev) if dev.type == 'cuda' else machine_line().removeprefix('Machine: ').rstrip('.')),
                precision=str(dt).replace('torch.', '') if dt is not None else 'float32')
    rows, cost = [], []
    for seed in range(a.seeds):
        r, c = run_seed(seed, cfg, (xtr, ytr, xte, yte), den_src, out, dev, log)
        rows += r; cost += c
        df, cdf = pd.DataFrame(rows), pd.DataFrame(cost)
        meta['minutes'] = (time.time() - T0) / 60
        write_text_atomic(out / f'cifar10-{tag}.csv', df.to_csv(index=False))
        write_text_atomic(out / f'cifar10-{tag}-cost.csv', cdf.to_csv(index=False))
        write_text_atomic(out / f'cifar10-{tag}.md', report(df, cdf, cfg, meta))
        log(f"wrote {out / f'cifar10-{tag}.md'} ({seed + 1} of {a.seeds} seeds)")
    return out / f'cifar10-{tag}.md'

if __name__ == '__main__':
    main()
