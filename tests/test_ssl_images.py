"benchmarks/ssl_images.py: the CIFAR-10 and STL-10 paths run end to end at toy size on files the test writes, and the paired statistics are exact."
import os, pickle, subprocess, sys
from pathlib import Path
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'benchmarks'))

def run(*args):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', MPLBACKEND='Agg')
    return subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'ssl_images.py'), *args], capture_output=True, text=True, timeout=900, env=env)

def write_cifar10(root:Path, n_batch:int=10, n_test:int=20):
    "A CIFAR-10 folder in the pickled layout torchvision reads: colour blobs whose position depends on the class."
    d = root / 'cifar-10-batches-py'; d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    def rows(n):
        y = np.arange(n) % 10
        img = rng.integers(0, 60, (n, 3, 32, 32)).astype(np.uint8)
        for i, c in enumerate(y): img[i, c % 3, 3 * c:3 * c + 6, 4:28] = 230
        return img.reshape(n, 3072), [int(c) for c in y]
    for k in range(1, 6):
        data, labels = rows(n_batch)
        with open(d / f'data_batch_{k}', 'wb') as f: pickle.dump({'data': data, 'labels': labels}, f)
    data, labels = rows(n_test)
    with open(d / 'test_batch', 'wb') as f: pickle.dump({'data': data, 'labels': labels}, f)
    with open(d / 'batches.meta', 'wb') as f: pickle.dump({'label_names': [f'c{i}' for i in range(10)]}, f)

def write_stl10(root:Path, n:int=20):
    "An STL-10 folder in the binary layout torchvision reads (96x96, planes stored column-major, labels 1..10)."
    d = root / 'stl10_binary'; d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split in ('train', 'test'):
        rng.integers(0, 255, (n, 3, 96, 96)).astype(np.uint8).transpose(0, 1, 3, 2).tofile(d / f'{split}_X.bin')
        (np.arange(n) % 10 + 1).astype(np.uint8).tofile(d / f'{split}_y.bin')
    rng.integers(0, 255, (2, 3, 96, 96)).astype(np.uint8).tofile(d / 'unlabeled_X.bin')

TOY = ['--epochs', '2', '--m-epochs', '1', '--width', '4', '--bs', '16', '--seeds', '0', '--no-md5']

def test_cifar10_toy(tmp_path):
    write_cifar10(tmp_path / 'data')
    out = run('--data', 'cifar10', '--root', str(tmp_path / 'data'), *TOY, '--methods', 'raw', 'simclr', 'moco_diff', '--out', str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    d = pd.read_csv(tmp_path / 'ssl-cifar1032.csv')
    assert list(d['method']) == ['raw', 'simclr', 'moco_diff'] and (d['n_train'] == 50).all() and (d['n_test'] == 20).all()
    assert d[['linear', 'knn', 'kmeans']].apply(lambda c: c.between(0, 1)).all().all()
    assert d.loc[d['method'] == 'moco_diff', 'epochs'].item() == '1/1/1' and d.loc[d['method'] == 'simclr', 'epochs'].item() == '2/0/0'
    md = (tmp_path / 'ssl-cifar1032.md').read_text()
    assert 'CIFAR-10 at 32x32' in md and 'A toy run' in md and '50 training images' in md
    # rerunning skips the rows that are there
    again = run('--data', 'cifar10', '--root', str(tmp_path / 'data'), *TOY, '--methods', 'raw', '--out', str(tmp_path))
    assert again.returncode == 0 and len(pd.read_csv(tmp_path / 'ssl-cifar1032.csv')) == 3

def test_stl10_toy_and_refusals(tmp_path):
    write_stl10(tmp_path / 'data')
    out = run('--data', 'stl10', '--root', str(tmp_path / 'data'), '--size', '32', *TOY, '--methods', 'pca', 'simclr_diff', '--out', str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    d = pd.read_csv(tmp_path / 'ssl-stl1032.csv')
    assert (d['size'] == 32).all() and (d['n_train'] == 20).all()
    bad = run('--data', 'cifar10', '--out', str(tmp_path))
    assert bad.returncode != 0 and 'needs --root' in bad.stderr
    missing = run('--data', 'cifar10', '--root', str(tmp_path / 'nothing'), *TOY, '--methods', 'raw', '--out', str(tmp_path))
    assert missing.returncode != 0 and 'CIFAR-10 (163 MB) not found' in missing.stderr

def test_paired_test_is_exact():
    "The sign-flip p against scipy's exact Wilcoxon (equal for 5 distinct positive differences), and a hand count."
    from scipy.stats import wilcoxon
    from _report import paired_test, paired_words
    a, b = np.array([.91, .93, .90, .95, .92]), np.array([.90, .90, .90, .90, .90])
    t = paired_test(a, b)
    assert t['wins'] == 4 and t['n'] == 5 and abs(t['mean'] - 0.022) < 1e-12
    # by hand: differences (.01, .03, 0, .05, .02); the 32 sign patterns whose |mean| >= .022: the observed one and its mirror,
    # and those that flip only the zero -> 4 of 32
    assert abs(t['p'] - 4 / 32) < 1e-12
    d = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    assert abs(paired_test(d, np.zeros(5))['p'] - wilcoxon(d).pvalue) < 1e-12
    assert paired_words(paired_test(d, np.zeros(5)), scale=1) == '+1.5 ± 0.8 (5/5, p = 0.062)'
