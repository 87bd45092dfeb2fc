__version__ = "0.3.0"

import os as _os, sys as _sys
# torch's CPU threads (OpenMP) spin while they wait for work by default. diffaug's models are small, so a step is many
# short parallel regions, and on a busy machine spinning threads fight the other processes for the cores: on a 2-core
# CPU beside another torch job, a denoiser and a classifier epoch on digits took 15.7 s with 2 spinning threads and 3.2 s
# with 2 sleeping ones; idle, sleeping threads cost 1.5x (2.1 vs 1.5 s; benchmarks/results/threads.md). Ask for
# sleeping threads unless the caller chose (OMP_WAIT_POLICY=ACTIVE for the idle speed) or torch was imported already.
if 'torch' not in _sys.modules: _os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
del _os, _sys

import warnings as _warnings
with _warnings.catch_warnings():  # fastai scripts a few layers with torch.jit when imported, and torch >= 2.10 warns for each:
    _warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)  # silence that once,
    import fastai.layers  # noqa: F401  -- without changing the warning filters of the caller's process
del _warnings
