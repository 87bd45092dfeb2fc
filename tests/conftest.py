"""Test settings: one torch thread per test process (two 2-thread processes on 2 cores can run 80x slower), and the
`slow` marker: tests marked slow are skipped unless `--runslow` is given or `-m` selects them (`-m slow`)."""
import os
for v in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'): os.environ.setdefault(v, '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
import pytest, torch
torch.set_num_threads(1)

def pytest_addoption(parser):
    parser.addoption('--runslow', action='store_true', default=False, help='also run the tests marked slow')

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes more than a few seconds; skipped unless --runslow or -m slow')

def pytest_collection_modifyitems(config, items):
    if config.getoption('--runslow') or 'slow' in (config.getoption('markexpr') or ''): return
    skip = pytest.mark.skip(reason='slow: run with --runslow (or -m slow)')
    for item in items:
        if item.get_closest_marker('slow'): item.add_marker(skip)
