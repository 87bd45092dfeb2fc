__version__ = "0.1.1"

import warnings as _warnings
with _warnings.catch_warnings():  # fastai scripts a few layers with torch.jit when imported, and torch >= 2.10 warns for each:
    _warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)  # silence that once,
    import fastai.layers  # noqa: F401  -- without changing the warning filters of the caller's process
del _warnings
