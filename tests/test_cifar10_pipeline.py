"The CIFAR-10 pipeline script (benchmarks/cifar10.py) runs end to end at toy size on a CPU, and reads its own cache back."
import os, subprocess, sys
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

def run(*args, tmp):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', MPLBACKEND='Agg')
    return subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'cifar10.py'), '--toy', '--quiet', '--out', str(tmp), *args],
                          capture_output=True, text=True, timeout=600, env=env)

def test_toy_pipeline(tmp_path):
    out = run('--set', 'kinds=["gaussian_noise","fog","glass_blur"]', tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    md = (tmp_path / 'cifar10-toy.md').read_text()
    for s in ('| plain + DE |', '| DiffAug + DE |', 'DiffAug step / floor', 'images/s', 'peak memory', '| fog |'):
        assert s in md, s
    cache = tmp_path / 'cache-n30-seed0'
    a = np.load(cache / 'fog.npy')
    assert a.shape == (150, 32, 32, 3) and a.dtype == np.uint8  # the CIFAR-10-C layout: 5 severities x 30 images
    # the cache is read back as CIFAR-10-C files; a kind it lacks is named
    out2 = run('--cifar10c', str(cache), '--set', 'kinds=["fog"]', '--tag', 'again', tmp=tmp_path)
    assert out2.returncode == 0, out2.stderr[-3000:]
    assert '| fog |' in (tmp_path / 'cifar10-again.md').read_text()
    out3 = run('--cifar10c', str(cache), '--set', 'kinds=["snow"]', '--tag', 'bad', tmp=tmp_path)
    assert out3.returncode != 0 and "lacks the corruption(s) 'snow'" in out3.stderr

def test_robustness_cifar_path(tmp_path):
    "benchmarks/robustness.py runs every part at CIFAR-10 shapes (fake files, toy settings)."
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', MPLBACKEND='Agg')
    sets = ['den_epochs=1', 'cls_epochs=1', 'den_base=8', 'width=8', 'kinds=["fog"]', 'severities=[5]', 'de_steps=[0,100]',
            'budget_steps=4', 'budgets=[0.1]', 'cert_n=20', 'cert_n0=5', 'cert_images=10', 'grad_images=10', 'bs=32']
    out = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'robustness.py'), '--data', 'cifar10', '--toy', '--quick', '--seeds', '1',
                          '--quiet', '--out', str(tmp_path), '--set', *sets], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    md = (tmp_path / 'robustness-cifar10-quick.md').read_text()
    for s in ('## 1. AugMix + DiffAug', '## 2. Out-of-distribution', '## 3. Certified', '## 4. Perceptually aligned', '## 5. Label budgets'):
        assert s in md, s

def test_floor_timing_leaves_the_classifier_untouched():
    "The floor is timed with optimiser steps on random labels: on a copy, never on the classifier evaluated afterwards."
    import torch
    sys.path.insert(0, str(ROOT / 'benchmarks'))
    from cifar10 import floor_seconds
    from diffaug.denoiser import Denoiser
    from diffaug.nets import UNet
    from diffaug.schedule import VPSchedule
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    model(torch.zeros(2, 3, 8, 8)); model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    den = Denoiser(UNet(3, base=8, mults=(1, 2)), VPSchedule())
    res = floor_seconds(model, den, torch.rand(16, 3, 8, 8) * 2 - 1, bs=4, n_batches=2, precision=None)
    assert set(res) == {'classifier fwd+bwd on 2B', 'denoiser forward on B'} and all(v > 0 for v in res.values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and not model.training
