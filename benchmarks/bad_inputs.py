"""Bad-input harness: throw ~310 bad inputs at diffaug's public API, the way a demanding user would, and classify what happens.

Not a test and not part of the library: it documents, case by case, whether a wrong input gets a clear error, a crash
deep inside another library, a silent wrong result, or a loss of the caller's data. Run it from the repository root:

    python benchmarks/bad_inputs.py                                      # benchmarks/results/bad-inputs.md and .csv
    PYTHONPATH=/path/to/old/checkout python benchmarks/bad_inputs.py --out /tmp/bad-inputs-old   # an older version
    python benchmarks/bad_inputs.py --only checkpoint --out /tmp/ck      # one group (see --list)
    python benchmarks/bad_inputs.py --match embed_file --out /tmp/ef     # cases whose name contains a string

It writes PREFIX.csv (one row per case) and PREFIX.md (counts per group and outcome, then every case that is not
`clear` / `ran`, with its message), both atomically. Every case runs on tiny data (a few dozen rows, one epoch), so a
case takes seconds; the whole run takes a few minutes on one core. Nothing is downloaded; all files go to temporary
folders. Use one thread per process on a shared machine (OMP_NUM_THREADS=1).

Groups (classes of bad input):
  atomic      data loss and atomic writes: failures injected mid-write (embed_file in place, checkpoints, figures, text)
  checkpoint  corrupted, truncated, empty, missing or mislabelled checkpoint files, for every loader
  late        errors that should come before the work (bad output paths) and `epochs` bounding every phase
  dtype       dtypes and layouts: float16/bfloat16/uint8/object/complex, channels-last, wrong sizes, sparse, backed AnnData
  args        argument types and ranges of every public function
  cli         the `diffaug` command (`embed`, `demo`) run in-process
  caller      the caller's arrays, AnnData, modules, training flags and global RNGs left as they were
  holdout     out-of-sample cases written after the fixes by someone else, across the whole public API (metrics, guidance,
              sampling, augment, data, semisup, generate_views, save/load, explore, tl, CLI); `want` chosen before running

Outcomes. For a case that must fail (expect='error'):
  clear    raised by diffaug's own code (the innermost traceback frame is a `raise` statement inside the imported
           diffaug package) and the message holds every `want` group (each a tuple of alternative substrings, matched
           case-insensitively; `want` was chosen from the problem, before looking at any message)
  crash    raised inside another library (torch, numpy, pandas, h5py, pickle, json, ...) or by a Python builtin or
           operator on a diffaug line that is not a `raise`, or of a type nobody should see (AttributeError, KeyError,
           IndexError, NameError, UnboundLocalError, ZeroDivisionError, AssertionError, RecursionError)
  unclear  raised by diffaug, but the message misses a `want` group
  silent   no exception: the call ran on wrong input (or a check found a wrong result, e.g. a phase ran more epochs)
  late     the right (clear) error, but after more than 10 s or, for cases marked `early`, after training had started
           (a spy on fastai's `Learner.fit` counts the fits)
For a case whose input should be accepted (expect='ok'): `ran` (no exception and its check passes) or `failed`.
expect='either' (converting or refusing are both fine): `ran` when it runs and its check passes, else as 'error'.
Cases with an injected failure (group atomic) are `clear` when the injected failure propagates and nothing is lost;
`skipped` when the injection point was never reached (the code writes some other way).
CLI cases call `diffaug.cli.main(argv)` with stdout/stderr captured: `clear` iff the exit code is 2, the output has
no 'Traceback', the error part (stderr without argparse's usage lines) is at most 3 lines and holds the `want`
groups; an exception escaping `main` is a `crash` (a CLI user sees a traceback).
Integrity (any case): `lost` when an input file changed, a failed write left a half-written target or a temporary
file, or the caller's array / AnnData / module / training flag / requires_grad / global RNG changed ('modified').
`skipped`: the case cannot run here (e.g. chmod does not block root); `setup-error`: the harness's own preparation
failed (e.g. a renamed API); `timeout`: the case ran past the per-case limit.
"""
from __future__ import annotations
import argparse, contextlib, copy, csv, errno, hashlib, io, json, linecache, os, re, shutil, signal, sys, tempfile, time
import traceback, warnings
from dataclasses import dataclass, field
from pathlib import Path

GROUPS = {
    'atomic': 'data loss / atomic writes (failures injected mid-write)',
    'checkpoint': 'checkpoint integrity (corrupted, truncated, empty, missing, mislabelled files)',
    'late': 'failing only after the work (bad output paths) and `epochs` bounding every phase',
    'dtype': 'dtypes and layouts',
    'args': 'argument types and ranges',
    'cli': 'the `diffaug` command',
    'caller': "the caller's objects left as they were",
    'holdout': 'out-of-sample cases written after the fixes, across the whole public API',
}
OUTCOMES = ['clear', 'ran', 'unclear', 'crash', 'silent', 'late', 'lost', 'failed', 'timeout', 'skipped', 'setup-error',
            'present', 'absent']
CASE_TIMEOUT, LATE_S = 90, 10.

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='Outcomes and groups: see the docstring at the top of this file.')
    p.add_argument('--out', default='benchmarks/results/bad-inputs', help='prefix of the .csv and .md written (default: %(default)s)')
    p.add_argument('--only', nargs='+', choices=list(GROUPS), help='run only these groups')
    p.add_argument('--match', default=None, help='run only cases whose name contains this string')
    p.add_argument('--list', action='store_true', help='list the cases and exit')
    p.add_argument('--timeout', type=int, default=CASE_TIMEOUT, help='per-case limit in seconds (default: %(default)s)')
    p.add_argument('--quiet', action='store_true', help='no line per case')
    return p.parse_args(argv)

# ---------------------------------------------------------------------------------------------------------------------
# case records and the per-case state the helpers write into

@dataclass
class Case:
    group: str
    name: str
    fn: object
    expect: str = 'error'          # 'error', 'ok', 'either', 'info'
    want: list = field(default_factory=list)
    check: object = None           # check(result) -> None/True (pass), False or a string (what is wrong)
    early: bool = False            # the error must come before any training
    injected: bool = False         # the failure is injected by the harness (group atomic)
    cli: bool = False              # `fn` returns a CliResult
    fail_outcome: str = 'failed'   # outcome of an 'ok' case whose check fails ('silent' for epochs bounding)

class Injected(Exception):
    "The failure the harness injects."

class CaseTimeout(BaseException): pass
class Skip(Exception): pass
class FixtureError(Exception): pass

class _State:
    def reset(self):
        self.lost, self.notes, self.fired, self.used_call, self.t_call, self.fits_call = [], [], False, False, None, None
ST = _State(); ST.reset()
FITS = [0]

@contextlib.contextmanager
def call():
    "Marks the call under test: its exceptions are the API's; the clock and the fit counter start here."
    ST.used_call, ST.t_call, ST.fits_call = True, time.perf_counter(), FITS[0]
    try: yield
    except BaseException as e:
        try: e._bad_inputs_api = True
        except Exception: pass
        raise

CASES: list[Case] = []
def add(group, name, fn, expect='error', want=(), **kw):
    want = [w if isinstance(w, tuple) else (w,) for w in want]
    CASES.append(Case(group, name, fn, expect, want, **kw))

def arg(name):
    "Alternatives that name a (short) argument in a message."
    d = name.replace('_', '-')
    return (f'`{name}`', f'{name}=', f' {name} ', f"'{name}'", f'"{name}"', f' {name},', f' {name}.', f' {name}:',
            f'({name}', f' {name})', f'--{d}')

def P(path):
    "A path as the user gave it, or resolved."
    return tuple(dict.fromkeys([str(path), str(Path(path).resolve())]))

# ---------------------------------------------------------------------------------------------------------------------
# integrity guards

def _sha(p:Path):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''): h.update(b)
    return h.hexdigest()

def _tree(p):
    "None (absent), the hash of a file, or {relative path: hash} of a folder."
    p = Path(p)
    if not p.exists(): return None
    if p.is_file(): return _sha(p)
    return {str(q.relative_to(p)): (_sha(q) if q.is_file() else 'dir') for q in sorted(p.rglob('*'))}

@contextlib.contextmanager
def keep_files(*paths, label='input'):
    "The files (or folders) must be byte-identical afterwards."
    before = {str(p): _tree(p) for p in paths}
    try: yield
    finally:
        for p, h in before.items():
            now = _tree(p)
            if now != h:
                if isinstance(h, dict) and isinstance(now, dict):
                    ch = sorted(k for k in set(h) | set(now) if h.get(k) != now.get(k))
                    ST.lost.append(f"{label} {p} changed: {ch[:5]}")
                else: ST.lost.append(f"{label} {p} changed ({'deleted' if now is None else 'rewritten'})")

def _listing(folder):
    return {str(q.relative_to(folder)) for q in Path(folder).rglob('*') if q.is_file()} if Path(folder).exists() else set()

@contextlib.contextmanager
def no_debris(folder, target=None):
    "No new file in `folder` afterwards, except `target` (file or folder) when the call succeeded."
    before = _listing(folder)
    ok = False
    try:
        yield
        ok = True
    finally:
        new = _listing(folder) - before
        if ok and target is not None:
            rel = str(Path(target).resolve().relative_to(Path(folder).resolve()))
            new = {n for n in new if n != rel and not n.startswith(rel + os.sep)}
        if new: ST.lost.append(f"left behind in {folder}: {sorted(new)[:6]}" + ('' if ok else ' (after a failed write)'))

def _snap(o):
    import numpy as np, torch, anndata, pandas as pd, scipy.sparse as sp
    from torch import nn
    if isinstance(o, torch.Tensor):
        return ('tensor', o.detach().clone(), o.dtype, o.requires_grad, str(o.device), o.is_leaf)
    if isinstance(o, np.ndarray): return ('array', o.copy(), o.dtype, o.flags.writeable)
    if sp.issparse(o): return ('sparse', o.copy())
    if isinstance(o, pd.DataFrame): return ('frame', o.copy(deep=True))
    if isinstance(o, nn.Module):
        return ('module', {k: v.detach().clone() for k, v in o.state_dict().items()},
                {n: m.training for n, m in o.named_modules()}, {n: p.requires_grad for n, p in o.named_parameters()})
    if isinstance(o, anndata.AnnData):
        return ('adata', _snap(o.X) if o.X is not None else None, o.shape, list(o.obs_names), list(o.var_names),
                o.obs.copy(deep=True), {k: _snap(np.asarray(v)) for k, v in o.obsm.items()}, sorted(o.uns.keys()),
                sorted(o.layers.keys()), sorted(o.obsp.keys()))
    if hasattr(o, 'model') and isinstance(getattr(o, 'model'), nn.Module): return ('learner', _snap(o.model))
    raise TypeError(f"cannot snapshot {type(o).__name__}")

def _eq_tensor(a, b):
    import torch
    if a.shape != b.shape or a.dtype != b.dtype: return False
    if a.is_floating_point() or a.is_complex():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return torch.equal(a, b)

def _diff(a, b, path='') -> list:
    import numpy as np, torch, pandas as pd, scipy.sparse as sp
    if type(a) is not type(b): return [f"{path}: type"]
    if isinstance(a, torch.Tensor): return [] if _eq_tensor(a, b) else [f"{path}: values"]
    if isinstance(a, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype: return [f"{path}: shape/dtype"]
        return [] if np.array_equal(a, b, equal_nan=a.dtype.kind in 'fc') else [f"{path}: values"]
    if sp.issparse(a): return [] if (a.shape == b.shape and (a != b).nnz == 0) else [f"{path}: values"]
    if isinstance(a, pd.DataFrame): return [] if a.equals(b) else [f"{path}: frame"]
    if isinstance(a, dict):
        out = [f"{path}: keys {sorted(set(a) ^ set(b))[:5]}"] if set(a) != set(b) else []
        for k in a:
            if k in b: out += _diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, (tuple, list)):
        if len(a) != len(b): return [f"{path}: length"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)): out += _diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"[:120]]

_SNAP_NAMES = {'tensor': ['', 'values', 'dtype', 'requires_grad', 'device', 'is_leaf'],
               'array': ['', 'values', 'dtype', 'writeable'],
               'module': ['', 'weights', 'training', 'requires_grad'],
               'adata': ['', 'X', 'shape', 'obs_names', 'var_names', 'obs', 'obsm', 'uns keys', 'layers keys', 'obsp keys']}

_KINDS = {'tensor', 'array', 'sparse', 'frame', 'module', 'adata', 'learner'}
def _is_snap(x): return isinstance(x, tuple) and len(x) > 0 and isinstance(x[0], str) and x[0] in _KINDS

def _describe(sa, sb):
    if sa[0] != sb[0] or len(sa) != len(sb): return ['type']
    names = _SNAP_NAMES.get(sa[0], [])
    out = []
    for i in range(1, len(sa)):
        nm = names[i] if i < len(names) else ''
        x, y = sa[i], sb[i]
        if _is_snap(x) and _is_snap(y): out += [f"{nm}{'.' if nm else ''}{e}" for e in _describe(x, y)]
        else: out += [f"{nm}{e}" for e in _diff(x, y)]
    return out

@contextlib.contextmanager
def keep(o, label, only_on_error=False):
    "The caller's object must be unchanged afterwards (values, dtype, training flags, requires_grad, keys)."
    s = _snap(o)
    failed = True
    try:
        yield
        failed = False
    finally:
        if failed or not only_on_error:
            d = _describe(s, _snap(o))
            if d: ST.lost.append(f"modified: {label}: {', '.join(d[:5])}")

@contextlib.contextmanager
def keep_rng(label='global RNG'):
    import numpy as np, torch, random
    t, n, r = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try: yield
    finally:
        ch = [k for k, same in [('torch', torch.equal(t, torch.get_rng_state())),
                                 ('numpy', all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
                                               for a, b in zip(n, np.random.get_state()))),
                                 ('random', r == random.getstate())] if not same]
        if ch: ST.lost.append(f"modified: {label} ({', '.join(ch)}) state advanced")

# ---------------------------------------------------------------------------------------------------------------------
# failure injection

_MISSING = object()

@contextlib.contextmanager
def patched(obj, name, new):
    old = vars(obj).get(name, _MISSING) if isinstance(obj, type) or hasattr(obj, '__dict__') else _MISSING
    orig = getattr(obj, name)
    setattr(obj, name, new(orig) if callable(new) and getattr(new, '_factory', False) else new)
    try: yield orig
    finally:
        if old is _MISSING:
            try: delattr(obj, name)
            except AttributeError: setattr(obj, name, orig)
        else: setattr(obj, name, old)

def factory(f): f._factory = True; return f

def _fail(how):
    ST.fired = True
    if how == 'kbd': raise KeyboardInterrupt('injected KeyboardInterrupt (bad_inputs harness)')
    if how == 'enospc': raise OSError(errno.ENOSPC, 'No space left on device (injected by the bad_inputs harness)')
    raise Injected('injected failure (bad_inputs harness)')

def _truncate(path, frac=0.5):
    p = Path(path)
    if p.is_file():
        b = p.read_bytes(); p.write_bytes(b[:int(len(b) * frac)])

@contextlib.contextmanager
def fail_torch_save(how='error'):
    "torch.save writes the first half of the file, then fails."
    import torch
    @factory
    def mk(orig):
        def save(obj, f, *a, **k):
            buf = io.BytesIO(); orig(obj, buf, *a, **k); part = buf.getvalue()[:len(buf.getvalue()) // 2]
            if isinstance(f, (str, os.PathLike)):
                with _REAL_OPEN(f, 'wb') as fh: fh.write(part)
            else: f.write(part)
            _fail(how)
        return save
    with patched(torch, 'save', mk): yield

@contextlib.contextmanager
def fail_json(how='error'):
    "Serialising the checkpoint's config.json fails (json.dumps / json.dump)."
    def dumps(*a, **k): _fail(how)
    with patched(json, 'dumps', dumps), patched(json, 'dump', dumps): yield

@contextlib.contextmanager
def fail_write_h5ad(how='error'):
    "Writing an .h5ad (AnnData.write_h5ad, or embed_file's copy-and-add writer) writes the file, truncates it to half, then fails."
    import anndata, diffaug.tl
    @factory
    def mk(orig):
        def w(self, filename=None, *a, **k):
            orig(self, filename, *a, **k); _truncate(filename); _fail(how)
        return w
    @factory
    def mk_copy(orig):
        def w(src, dst, *a, **k):
            orig(src, dst, *a, **k); _truncate(dst); _fail(how)
        return w
    with contextlib.ExitStack() as stack:
        stack.enter_context(patched(anndata.AnnData, 'write_h5ad', mk)); stack.enter_context(patched(anndata.AnnData, 'write', mk))
        if hasattr(diffaug.tl, '_copy_with_added'): stack.enter_context(patched(diffaug.tl, '_copy_with_added', mk_copy))  # 0.1.1 on
        yield

@contextlib.contextmanager
def fail_replace(folder):
    "os.replace / os.rename into `folder` fail (e.g. a crash between writing the temporary file and moving it)."
    folder = Path(folder).resolve()
    @factory
    def mk(orig):
        def rep(src, dst, *a, **k):
            if Path(dst).resolve().parent == folder: _fail('error')
            return orig(src, dst, *a, **k)
        return rep
    with patched(os, 'replace', mk), patched(os, 'rename', mk): yield

@contextlib.contextmanager
def fail_savefig(how='error'):
    import matplotlib.figure
    @factory
    def mk(orig):
        def sf(self, fname, *a, **k):
            orig(self, fname, *a, **k)
            if isinstance(fname, (str, os.PathLike)): _truncate(fname)
            _fail(how)
        return sf
    with patched(matplotlib.figure.Figure, 'savefig', mk): yield

_REAL_OPEN = open

@contextlib.contextmanager
def fail_text_write(folder, how='error'):
    "Any text/bytes write into `folder` (Path.write_text/write_bytes, open(..., 'w')) writes a few bytes, then fails."
    import builtins, pathlib
    folder = Path(folder).resolve()
    def inside(p):
        try: return Path(p).resolve().parent == folder
        except Exception: return False
    def opener(file, mode='r', *a, **k):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in 'wax') and inside(file):
            with _REAL_OPEN(file, 'wb') as fh: fh.write(b'PARTIAL')
            _fail(how)
        return _REAL_OPEN(file, mode, *a, **k)
    @factory
    def mk_text(orig):
        def wt(self, data, *a, **k):
            if inside(self):
                with _REAL_OPEN(self, 'wb') as fh: fh.write(b'PARTIAL')
                _fail(how)
            return orig(self, data, *a, **k)
        return wt
    with patched(builtins, 'open', opener), patched(io, 'open', opener), \
         patched(pathlib.Path, 'write_text', mk_text), patched(pathlib.Path, 'write_bytes', mk_text): yield

# ---------------------------------------------------------------------------------------------------------------------
# fixtures (built once, lazily; a failure is a setup error of the cases that need it)

SESSION = None
_FX = {}

def _kw(f, **kw):
    "Keep only the keyword arguments `f` takes (fixtures survive a renamed option)."
    import inspect
    try: ps = inspect.signature(f).parameters
    except (TypeError, ValueError): return kw
    if any(p.kind == p.VAR_KEYWORD for p in ps.values()): return kw
    return {k: v for k, v in kw.items() if k in ps}

def fx(name):
    if name not in _FX:
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter('ignore')
                _FX[name] = _BUILD[name]()
        except BaseException as e:
            _FX[name] = FixtureError(f"fixture {name!r} failed: {type(e).__name__}: {e}")
    v = _FX[name]
    if isinstance(v, FixtureError): raise v
    return v

def _digits():
    import numpy as np, torch
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.from_numpy((d.images[:96] / 8 - 1).astype(np.float32)).unsqueeze(1)
    return x, torch.from_numpy(d.target[:96].astype(np.int64))

def _wine():
    import numpy as np
    from sklearn.datasets import load_wine
    return np.ascontiguousarray(load_wine().data[::3][:60].astype(np.float32))

DA_FAST = dict(n_latent=4, epochs=(1, 1, 1), progress=False, generator=dict(steps=2))

def _diffaug(**over):
    from diffaug.contrastive import DiffAug
    kw = dict(DA_FAST, **over)
    try: return DiffAug(**_kw(DiffAug, **kw))
    except (TypeError, ValueError):
        kw.pop('generator', None); return DiffAug(**_kw(DiffAug, **kw))

def _train_den(x, **kw):
    from diffaug.training import train_denoiser
    return train_denoiser(x, **_kw(train_denoiser, epochs=1, progress=False, **kw))

def _fit_cls(x, y, **kw):
    from diffaug.classifier import fit_classifier
    return fit_classifier(x, y, **_kw(fit_classifier, epochs=1, progress=False, **kw))

def _adata(x=None, sparse=False):
    import numpy as np, pandas as pd, anndata, scipy.sparse as spm
    x = _wine() if x is None else x
    n = len(x)
    a = anndata.AnnData(spm.csr_matrix(x) if sparse else x.copy(),
                        obs=pd.DataFrame({'label': pd.Categorical([f'k{i % 3}' for i in range(n)])}, index=[f'c{i}' for i in range(n)]),
                        var=pd.DataFrame(index=[f'g{j}' for j in range(x.shape[1])]))
    a.obsm['X_pca'] = np.random.default_rng(0).normal(size=(n, 5)).astype(np.float32)
    return a

def _save_ck(obj_saver, name):
    p = SESSION / 'pristine' / name
    obj_saver(p)
    return p

def _build():
    import torch
    b = {}
    b['digits'] = _digits
    b['x3'] = lambda: (fx('digits')[0].repeat(1, 3, 1, 1), fx('digits')[1])
    b['x16'] = lambda: (fx('digits')[0].repeat_interleave(2, 2).repeat_interleave(2, 3), fx('digits')[1])
    b['wine'] = _wine
    b['den'] = lambda: _train_den(fx('digits')[0])
    b['den_np'] = lambda: _train_den(fx('digits')[0], prior=None)
    b['plain'] = lambda: _fit_cls(*fx('digits'))
    b['noisy'] = lambda: _fit_cls(*fx('digits'), mode='noisy', schedule=fx('den').schedule)
    b['da'] = lambda: _fit_cls(*fx('digits'), mode='da', denoiser=fx('den'))
    b['plain16'] = lambda: _fit_cls(*fx('x16'))
    b['plain3'] = lambda: _fit_cls(*fx('x3'))
    b['dam'] = lambda: _diffaug().fit(fx('wine'))
    def h5():
        p = SESSION / 'pristine' / 'cells.h5ad'; p.parent.mkdir(parents=True, exist_ok=True)
        _adata().write_h5ad(p); return p
    b['h5ad'] = h5
    def h5sp():
        p = SESSION / 'pristine' / 'cells_sparse.h5ad'; p.parent.mkdir(parents=True, exist_ok=True); _adata(sparse=True).write_h5ad(p); return p
    b['h5ad_sparse'] = h5sp
    def ck_da(): return _save_ck(fx('dam').save, 'ck_diffaug')
    def ck_den(): return _save_ck(fx('den').save, 'ck_denoiser')
    def ck_cls():
        from diffaug.classifier import save_classifier
        return _save_ck(lambda p: save_classifier(fx('plain'), p), 'ck_classifier')
    b['ck_diffaug'], b['ck_denoiser'], b['ck_classifier'] = ck_da, ck_den, ck_cls
    def den2():  # another denoiser of the same architecture (other weights): saving it over ck_denoiser changes the bytes
        d = copy.deepcopy(fx('den'))
        with torch.no_grad():
            for p in d.parameters(): p.add_(0.01)
        return d
    b['den2'] = den2
    b['dam2'] = lambda: _diffaug(random_state=1).fit(fx('wine'))
    b['plain2'] = lambda: _fit_cls(*fx('digits'), random_state=1)
    b['dam_knn'] = lambda: _diffaug(augment='knnmix').fit(fx('wine'))
    return b

_BUILD = {}

def tmpdir():
    d = Path(tempfile.mkdtemp(prefix='case-', dir=SESSION)); return d

def copy_ck(name, d=None):
    d = d or tmpdir(); dst = d / 'ck'
    shutil.copytree(fx(name), dst); return dst

def h5copy(d=None, name='cells.h5ad', src='h5ad'):
    d = d or tmpdir(); p = d / name; shutil.copy(fx(src), p); return p

def ro_dir():
    "A folder chmod 555; skip the case when that does not block writes (running as root)."
    d = tmpdir() / 'readonly'; d.mkdir(); os.chmod(d, 0o555)
    try:
        (d / 'probe').write_bytes(b'x')
    except OSError: return d
    (d / 'probe').unlink(); os.chmod(d, 0o755)
    raise Skip('chmod 555 does not block writes here (running as root)')

# ---------------------------------------------------------------------------------------------------------------------
# the CLI

@dataclass
class CliResult:
    code: object
    out: str
    err: str

def cli(argv):
    import diffaug.cli
    o, e = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try: code = diffaug.cli.main([str(a) for a in argv])
        except SystemExit as ex: code = ex.code
    return CliResult(code, o.getvalue(), e.getvalue())

def _error_part(err:str) -> list:
    "stderr lines without argparse's usage block."
    lines, out, in_usage = err.splitlines(), [], False
    for l in lines:
        if l.startswith('usage:'): in_usage = True; continue
        if in_usage and (l.startswith(' ') or not l.strip()): continue
        in_usage = False
        if l.strip(): out.append(l)
    return out

CLI_FAST = ['--epochs', '(1,1,1)', '--n-latent', '4', '--generator', "{'steps': 2}", '--no-progress']

# ---------------------------------------------------------------------------------------------------------------------
# classification

NOBODY = (AttributeError, KeyError, IndexError, UnboundLocalError, NameError, ZeroDivisionError, AssertionError, RecursionError)

def _origin(exc):
    "File, line and whether the innermost frame raised it with a `raise` statement (not a builtin or operator)."
    tb, last = exc.__traceback__, None
    while tb is not None: last, tb = tb, tb.tb_next
    if last is None: return '', 0, False
    f, ln = last.tb_frame.f_code.co_filename, last.tb_lineno
    by_raise = None
    try:
        import dis
        for ins in dis.get_instructions(last.tb_frame.f_code):
            if ins.offset == last.tb_lasti: by_raise = ins.opname in ('RAISE_VARARGS', 'RERAISE'); break
    except Exception: pass
    if by_raise is None: by_raise = re.search(r'\braise\b', linecache.getline(f, ln)) is not None
    return f, ln, by_raise

def _where(f, ln):
    if not f: return ''
    s = str(f)
    for key in ('site-packages/', 'dist-packages/'):
        if key in s: return f"{s.split(key, 1)[1]}:{ln}"
    try: rel = Path(s).resolve().relative_to(PKG_DIR.parent); return f"{rel}:{ln}"
    except ValueError: pass
    m = re.search(r'python3\.\d+/(.*)$', s)
    return f"{m.group(1) if m else Path(s).name}:{ln}"

def _in_pkg(f):
    try: Path(f).resolve().relative_to(PKG_DIR); return True
    except (ValueError, OSError): return False

def _wants_ok(msg, want):
    m = ' ' + msg.lower() + ' '
    missing = [w for w in want if not any(alt.lower() in m for alt in w)]
    return not missing, missing

def _msg(exc):
    s = str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str): s = exc.args[0]
    return s

@dataclass
class Result:
    group: str; name: str; expect: str; outcome: str; seconds: float; exc_type: str = ''; message: str = ''
    where: str = ''; fits: int = 0; want: str = ''; note: str = ''

def classify(c:Case, res, exc, elapsed, fits):
    "The outcome, the exception type, the message and where it was raised."
    etype, msg, where, note = '', '', '', []
    late = elapsed > LATE_S or (c.early and fits > 0)
    if exc is not None:
        etype = type(exc).__name__
        f, ln, by_raise = _origin(exc)
        where, msg = _where(f, ln), _msg(exc)
        if isinstance(exc, CaseTimeout): return 'timeout', etype, msg, where, note
        if isinstance(exc, Skip): return 'skipped', etype, msg, where, note
        if isinstance(exc, FixtureError) or (ST.used_call and not getattr(exc, '_bad_inputs_api', False)):
            return 'setup-error', etype, msg + ' | ' + ''.join(traceback.format_exception(exc)[-3:])[-400:], where, note
        if c.injected:
            if isinstance(exc, (Injected, KeyboardInterrupt)) or (isinstance(exc, OSError) and 'injected' in str(exc)):
                return 'clear', etype, msg, where, note
            note.append('the injected failure was replaced by another exception')
        if c.expect in ('ok', 'info'):
            return 'failed', etype, msg, where, note + (['exception escaped main()'] if c.cli else [])
        if c.cli:
            note.append('exception escaped main(): the user sees a traceback')
            return 'crash', etype, msg, where, note
        deliberate = _in_pkg(f) and by_raise
        if not deliberate or isinstance(exc, NOBODY):
            if deliberate: note.append(f'deliberate {etype} raised by diffaug (a type nobody should see)')
            elif _in_pkg(f): note.append('raised by a builtin/operator on a diffaug line that is not a raise')
            return 'crash', etype, msg, where, note
        ok, missing = _wants_ok(msg, c.want)
        if not ok:
            note.append(f"message lacks {' and '.join('/'.join(m) for m in missing)}"[:200])
            return 'unclear', etype, msg, where, note
        if late: note.append(f"after {fits} training fit(s)" if fits else f"after {elapsed:.1f} s")
        return ('late' if late else 'clear'), etype, msg, where, note
    # no exception
    if c.expect == 'info':
        o, text = _info_outcome(res)
        return o, '', text, 'diffaug.cli.main', note
    if c.cli:
        r = res
        code, text = r.code, r.err
        where = 'diffaug.cli.main'
        if c.expect in ('ok', 'either', 'info') and code in (0, None):
            chk = _run_check(c, res)
            if chk is None: return 'ran', '', '', where, note
            if c.expect == 'ok': return c.fail_outcome, 'check', chk, where, note
            return 'silent', 'check', chk, where, note
        if code in (0, None): return 'silent', '', (r.out + r.err)[-300:], where, note
        msg = '\n'.join(_error_part(text)) or text or r.out
        etype = f'exit {code}'
        if c.expect == 'ok': return 'failed', etype, msg, where, note
        if 'Traceback' in r.err or 'Traceback' in r.out: return 'crash', etype, msg, where, ['traceback printed']
        if code != 2: return 'unclear', etype, msg, where, [f'exit code {code}, not 2']
        lines = _error_part(text)
        if len(lines) > 3: return 'unclear', etype, msg, where, [f'{len(lines)} lines of error text']
        ok, missing = _wants_ok(msg, c.want)
        if not ok: return 'unclear', etype, msg, where, [f"message lacks {' and '.join('/'.join(m) for m in missing)}"[:200]]
        if late: note.append(f"after {fits} training fit(s)" if fits else f"after {elapsed:.1f} s")
        return ('late' if late else 'clear'), etype, msg, where, note
    if c.injected and not ST.fired: return 'skipped', '', 'the injection point was never reached (the code writes another way)', '', note
    if c.expect in ('ok', 'either', 'info'):
        chk = _run_check(c, res)
        if chk is None: return 'ran', '', '', '', note
        return (c.fail_outcome if c.expect == 'ok' else 'silent'), 'check', chk, '', note
    if c.injected: note.append('the injected failure was swallowed')
    return 'silent', '', repr_short(res), '', note

def _run_check(c, res):
    if c.check is None: return None
    try:
        r = c.check(res)
        if r is None or r is True: return None
        return 'check failed' if r is False else str(r)
    except Exception as e:
        return f"check raised {type(e).__name__}: {e}"

def repr_short(o):
    try:
        import torch, numpy as np
        if isinstance(o, (torch.Tensor, np.ndarray)): return f"returned {type(o).__name__} of shape {tuple(o.shape)}"
    except Exception: pass
    s = repr(o)
    return ('returned ' + s)[:200] if o is not None else 'returned None'

def _on_alarm(signum, frame): raise CaseTimeout(f'no result after {CASE_TIMEOUT} s')

def run_case(c:Case) -> Result:
    ST.reset()
    t0, f0 = time.perf_counter(), FITS[0]
    res = exc = None
    sink_o, sink_e = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        with contextlib.redirect_stdout(sink_o), contextlib.redirect_stderr(sink_e), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            signal.alarm(CASE_TIMEOUT)
            try: res = c.fn()
            finally: signal.alarm(0)
    except KeyboardInterrupt as e:
        if not ST.fired: raise  # a real Ctrl-C stops the run
        exc = e
    except BaseException as e:  # SystemExit and injected failures included
        exc = e
    end = time.perf_counter()
    tc = ST.t_call if ST.t_call is not None else t0
    fits = FITS[0] - (ST.fits_call if ST.fits_call is not None else f0)
    try:
        outcome, etype, msg, where, note = classify(c, res, exc, end - tc, fits)
    except BaseException as e:
        outcome, etype, msg, where, note = 'setup-error', type(e).__name__, f'classification failed: {e}', '', []
    if c.early and fits > 0 and outcome in ('crash', 'unclear') :
        note = list(note) + [f"after {fits} training fit(s): the check came too late"]
    if ST.lost and outcome not in ('skipped', 'setup-error'):
        note = list(note) + [f"was {outcome}"]
        outcome = 'lost'
        note = ST.lost + note
    note = list(note) + ST.notes
    return Result(c.group, c.name, c.expect, outcome, round(end - t0, 2), etype, ' '.join(str(msg).split())[:300], where,
                  fits, ' & '.join('|'.join(w) for w in c.want)[:200], '; '.join(note)[:400])

# ---------------------------------------------------------------------------------------------------------------------
# the cases

def define_cases():
    import numpy as np, torch, anndata, pandas as pd, scipy.sparse as spm
    from diffaug import tl, io as dio, data as ddata, report
    from diffaug.contrastive import DiffAug
    from diffaug.training import train_denoiser
    from diffaug.denoiser import Denoiser
    from diffaug.classifier import fit_classifier, predict_proba, save_classifier, load_classifier
    from diffaug.semisup import TemporalConsistencyCB
    from diffaug.schedule import VPSchedule
    from diffaug.sampling import sample_ddim

    X = lambda: fx('digits')[0]
    Y = lambda: fx('digits')[1]
    XS = lambda: fx('digits')[0][:16].clone()
    W = lambda: fx('wine').copy()
    T = arg('t')
    fitc = lambda x, y, **kw: fit_classifier(x, y, **dict(dict(epochs=1, progress=False), **kw))
    tden = lambda x, **kw: train_denoiser(x, **dict(dict(epochs=1, progress=False), **kw))
    dfit = lambda x, **kw: DiffAug(**dict(DA_FAST, **kw)).fit(x)  # no fallback: the case's own arguments go in as given

    def api(f, *a, **k):
        "Call the API under test (marks the call)."
        with call(): return f(*a, **k)

    # ========================= 1. atomic =========================
    G = 'atomic'
    def embed_same(how):
        def fn():
            p = h5copy(); d = p.parent
            with keep_files(p), no_debris(d), fail_write_h5ad(how): api(tl.embed_file, p, p, **DA_FAST)
        return fn
    add(G, 'embed_file in place (out == input): write_h5ad fails half-way', embed_same('error'), injected=True)
    add(G, 'embed_file in place: KeyboardInterrupt half-way through write_h5ad', embed_same('kbd'), injected=True)
    def embed_same_replace():
        p = h5copy(); d = p.parent
        with keep_files(p), no_debris(d), fail_replace(d): api(tl.embed_file, p, p, **DA_FAST)
    add(G, 'embed_file in place: the final rename fails', embed_same_replace, injected=True)
    def embed_old_out():
        p = h5copy(); d = p.parent; out = h5copy(d, 'old_out.h5ad')
        with keep_files(p), keep_files(out, label='previous output'), no_debris(d), fail_write_h5ad('enospc'):
            api(tl.embed_file, p, out, **DA_FAST)
    add(G, 'embed_file over an earlier output: disk full half-way', embed_old_out, injected=True)
    def embed_same_spelled():
        d = tmpdir(); (d / 'sub').mkdir(); p = h5copy(d)
        with keep_files(p), no_debris(d), fail_write_h5ad('error'): api(tl.embed_file, p, d / 'sub' / '..' / p.name, **DA_FAST)
    add(G, 'embed_file in place via another spelling (sub/../x.h5ad): write fails', embed_same_spelled, injected=True)
    def embed_train_fails():
        p = h5copy(); d = p.parent
        def boom(self, *a, **k): _fail('error')
        with keep_files(p), no_debris(d), patched(DiffAug, 'fit', boom): api(tl.embed_file, p, p, **DA_FAST)
    add(G, 'embed_file in place: training fails', embed_train_fails, injected=True)

    def save_over(kind, inj, how='error'):
        def fn():
            ck = copy_ck({'DiffAug': 'ck_diffaug', 'Denoiser': 'ck_denoiser', 'classifier': 'ck_classifier'}[kind])
            obj = {'DiffAug': lambda: fx('dam2'), 'Denoiser': lambda: fx('den2'), 'classifier': lambda: fx('plain2')}[kind]()
            save = {'DiffAug': lambda p: obj.save(p), 'Denoiser': lambda p: obj.save(p),
                    'classifier': lambda p: save_classifier(obj, p)}[kind]
            ctx = fail_torch_save(how) if inj == 'weights' else fail_json(how)
            try:
                with keep_files(ck, label='previous checkpoint'), no_debris(ck.parent), ctx: api(save, ck)
            finally:  # the old checkpoint must still load
                try:
                    {'DiffAug': DiffAug.load, 'Denoiser': Denoiser.load, 'classifier': load_classifier}[kind](ck)
                except Exception as e: ST.lost.append(f"previous checkpoint no longer loads: {type(e).__name__}: {e}"[:200])
        return fn
    add(G, 'DiffAug.save over a checkpoint: torch.save fails half-way', save_over('DiffAug', 'weights'), injected=True)
    add(G, 'DiffAug.save over a checkpoint: KeyboardInterrupt in torch.save', save_over('DiffAug', 'weights', 'kbd'), injected=True)
    add(G, 'DiffAug.save over a checkpoint: writing config.json fails', save_over('DiffAug', 'config'), injected=True)
    add(G, 'Denoiser.save over a checkpoint: disk full half-way through torch.save', save_over('Denoiser', 'weights', 'enospc'), injected=True)
    add(G, 'Denoiser.save over a checkpoint: KeyboardInterrupt in torch.save', save_over('Denoiser', 'weights', 'kbd'), injected=True)
    add(G, 'Denoiser.save over a checkpoint: writing config.json fails', save_over('Denoiser', 'config'), injected=True)
    add(G, 'save_classifier over a checkpoint: torch.save fails half-way', save_over('classifier', 'weights'), injected=True)
    add(G, 'save_classifier over a checkpoint: writing config.json fails', save_over('classifier', 'config'), injected=True)

    def save_fresh(kind, inj):
        def fn():
            d = tmpdir(); ck = d / 'new_ck'
            obj = {'DiffAug': lambda: fx('dam'), 'Denoiser': lambda: fx('den'), 'classifier': lambda: fx('plain')}[kind]()
            save = {'DiffAug': lambda p: obj.save(p), 'Denoiser': lambda p: obj.save(p),
                    'classifier': lambda p: save_classifier(obj, p)}[kind]
            with no_debris(d), (fail_torch_save() if inj == 'weights' else fail_json()): api(save, ck)
        return fn
    add(G, 'Denoiser.save to a new folder: config.json fails (no half checkpoint may stay)', save_fresh('Denoiser', 'config'), injected=True)
    add(G, 'DiffAug.save to a new folder: torch.save fails half-way', save_fresh('DiffAug', 'weights'), injected=True)
    add(G, 'save_classifier to a new folder: config.json fails', save_fresh('classifier', 'config'), injected=True)

    def fig():
        import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
        f, ax = plt.subplots(figsize=(2, 2)); ax.plot([0, 1]); return f
    def savefig_over(how):
        def fn():
            d = tmpdir(); p = d / 'figure.png'; f0 = fig(); f0.savefig(p); f = fig()
            with keep_files(p, label='previous figure'), no_debris(d), fail_savefig(how): api(report.savefig, f, p)
        return fn
    add(G, 'report.savefig over an existing PNG: savefig fails half-way', savefig_over('error'), injected=True)
    def savefig_new():
        d = tmpdir(); p = d / 'new.png'
        with no_debris(d), fail_savefig('kbd'): api(report.savefig, fig(), p)
    add(G, 'report.savefig to a new PNG: KeyboardInterrupt half-way', savefig_new, injected=True)
    def text_over(how):
        def fn():
            import pandas as pd
            table = lambda k, v: report.md_table(pd.DataFrame({'method': [k], 'x': [v]}))
            d = tmpdir(); p = d / 'report.md'; p.write_text('# old report\n' + table('a', .5))
            with keep_files(p, label='previous report'), no_debris(d), fail_text_write(d, how):
                api(dio.write_text_atomic, p, '# new report\n' + table('b', .7))
        return fn
    add(G, 'io.write_text_atomic over report.md (md table): the write fails half-way', text_over('error'), injected=True)
    add(G, 'io.write_text_atomic over report.md: KeyboardInterrupt half-way', text_over('kbd'), injected=True)
    def ck_json_fresh():
        d = tmpdir(); ck = d / 'ck'
        with no_debris(d): api(dio.save_checkpoint, ck, 'Thing', {'fn': object()}, {'w': torch.zeros(3)})
    add(G, 'io.save_checkpoint with a config that is not JSON (new folder): no half checkpoint', ck_json_fresh, want=['config', 'JSON'])
    def ck_json_over():
        d = tmpdir(); ck = d / 'ck'; dio.save_checkpoint(ck, 'Thing', {'a': 1}, {'w': torch.zeros(3)})
        with keep_files(ck, label='previous checkpoint'), no_debris(d):
            api(dio.save_checkpoint, ck, 'Thing', {'fn': object()}, {'w': torch.ones(3)})
    add(G, 'io.save_checkpoint with a non-JSON config over a checkpoint: old one kept', ck_json_over, want=['config', 'JSON'])

    # ========================= 2. checkpoint =========================
    G = 'checkpoint'
    def flip(p):
        b = bytearray(p.read_bytes()); m = len(b) // 2
        for i in range(m, m + 16): b[i] ^= 0xFF
        p.write_bytes(bytes(b))
    def cfg_edit(f):
        def e(ck):
            m = json.loads((ck / 'config.json').read_text()); m = f(m)
            (ck / 'config.json').write_text(json.dumps(m))
        return e
    OTHER = {'DiffAug': 'Denoiser', 'Denoiser': 'DiffAug', 'DiffusionClassifier': 'Denoiser'}
    corruptions = [
        ('weights.pt with 16 bytes flipped in the middle', lambda ck: flip(ck / 'weights.pt'), 'weights'),
        ('weights.pt truncated to half', lambda ck: _truncate(ck / 'weights.pt'), 'weights'),
        ('weights.pt empty', lambda ck: (ck / 'weights.pt').write_bytes(b''), 'weights'),
        ('weights.pt missing', lambda ck: (ck / 'weights.pt').unlink(), 'weights'),
        ('config.json truncated', lambda ck: _truncate(ck / 'config.json'), 'config'),
        ('config.json empty', lambda ck: (ck / 'config.json').write_text(''), 'config'),
        ('config.json a JSON list', lambda ck: (ck / 'config.json').write_text('[1, 2, 3]'), 'config'),
        ('config.json without its "config" entry', cfg_edit(lambda m: {k: v for k, v in m.items() if k != 'config'}), 'config'),
        ('config.json of another kind', None, 'kind'),
        ('config.json from a future diffaug (99.0.0)', cfg_edit(lambda m: dict(m, diffaug_version='99.0.0')), 'version'),
        ('the weights.pt file given instead of the folder', None, 'file'),
    ]
    loaders = [('DiffAug.load', 'ck_diffaug', 'DiffAug', lambda p: DiffAug.load(p)),
               ('Denoiser.load', 'ck_denoiser', 'Denoiser', lambda p: Denoiser.load(p)),
               ('Denoiser.load_weights', 'ck_denoiser', 'Denoiser', None),
               ('load_classifier', 'ck_classifier', 'DiffusionClassifier', lambda p: load_classifier(p))]
    for lname, fxname, kind, loader in loaders:
        for cname, corrupt, what in corruptions:
            if what == 'file' and lname != 'DiffAug.load': continue
            def fn(fxname=fxname, kind=kind, loader=loader, corrupt=corrupt, what=what):
                ck = copy_ck(fxname)
                if what == 'kind': cfg_edit(lambda m: dict(m, kind=OTHER[kind]))(ck)
                elif corrupt is not None: corrupt(ck)
                target = ck / 'weights.pt' if what == 'file' else ck
                with keep_files(ck, label='checkpoint folder'):
                    if loader is None:
                        den = copy.deepcopy(fx('den2'))
                        with keep(den, 'the denoiser load_weights was called on (after a failed load)', only_on_error=True):
                            return api(den.load_weights, target)
                    return api(loader, target)
            want = {'weights': [('weights.pt',), ('{ck}',)], 'config': [('config.json',), ('{ck}',)],
                    'kind': [('{ck}',), (OTHER[kind],)], 'version': [('{ck}',), ('99.0',)], 'file': [('{ck}/weights.pt',)]}[what]
            add(G, f'{lname}: {cname}', fn, want=want)
    # the `want` above holds the placeholder {ck}: replaced per run by the case's own folder (see _ck_want below)
    def load_weights_other_arch():
        ck = copy_ck('ck_denoiser')
        den = _train_den(fx('x16')[0])
        with keep(den, 'the denoiser load_weights was called on', only_on_error=True): api(den.load_weights, ck)
    add(G, 'Denoiser.load_weights from a checkpoint of another architecture', load_weights_other_arch, want=[('config', 'shape', 'architecture')])
    def load_missing():
        api(DiffAug.load, tmpdir() / 'no_such_checkpoint')
    add(G, 'DiffAug.load of a folder that does not exist', load_missing, want=['no_such_checkpoint'])

    # ========================= 3. late =========================
    G = 'late'
    def afile(d=None):
        d = d or tmpdir(); f = d / 'notafolder'; f.write_text('a file'); return f
    def ef(out_of):
        def fn():
            p = h5copy(); out = out_of(p.parent)
            with keep_files(p): return api(tl.embed_file, p, out, **DA_FAST)
        return fn
    add(G, 'embed_file: out whose parent is a file', ef(lambda d: afile(d) / 'out.h5ad'), want=['notafolder'], early=True)
    add(G, 'embed_file: out under /proc', ef(lambda d: Path('/proc/diffaug-bad-inputs.h5ad')), want=['/proc'], early=True)
    add(G, 'embed_file: out in a read-only folder', ef(lambda d: ro_dir() / 'out.h5ad'), want=['readonly'], early=True)
    add(G, 'embed_file: out with a .csv suffix', ef(lambda d: d / 'out.csv'), want=['out.csv'], early=True)
    def dir_h5ad(d): q = d / 'res.h5ad'; q.mkdir(); return q
    add(G, 'embed_file: out is an existing folder named res.h5ad', ef(dir_h5ad), want=['res.h5ad'], early=True)
    def dir_plain(d): q = d / 'results'; q.mkdir(); return q
    add(G, 'embed_file: out is an existing folder', ef(dir_plain), want=['results'], early=True)
    add(G, 'embed_file: out in a folder that does not exist', ef(lambda d: d / 'nope' / 'out.h5ad'), want=['nope'], early=True)
    def cli_embed_out(out_of, extra=()):
        def fn():
            p = h5copy(); out = out_of(p.parent)
            with keep_files(p), call(): return cli(['embed', p, '--out', out, *CLI_FAST, *extra])
        return fn
    add(G, 'CLI embed: --out whose parent is a file', cli_embed_out(lambda d: afile(d) / 'out.h5ad'), want=['notafolder'], early=True, cli=True)
    add(G, 'CLI embed: --out under /proc', cli_embed_out(lambda d: Path('/proc/diffaug-bad-inputs.h5ad')), want=['/proc'], early=True, cli=True)
    add(G, 'CLI embed: --out an existing folder named res.h5ad', cli_embed_out(dir_h5ad), want=['res.h5ad'], early=True, cli=True)
    add(G, 'CLI embed: --out in a read-only folder', cli_embed_out(lambda d: ro_dir() / 'out.h5ad'), want=['readonly'], early=True, cli=True)
    add(G, 'CLI embed: --out with a .csv suffix', cli_embed_out(lambda d: d / 'out.csv'), want=['out.csv'], early=True, cli=True)
    def demo_out(out_of):
        def fn():
            d = tmpdir(); out = out_of(d)
            with call(): return cli(['demo', '--quick', '--parts', 'diffusion', '--no-progress', '--out', out])
        return fn
    add(G, 'CLI demo --quick: --out is an existing file', demo_out(lambda d: afile(d)), want=['notafolder'], early=True, cli=True)
    add(G, 'CLI demo --quick: --out under a file', demo_out(lambda d: afile(d) / 'demo'), want=['notafolder'], early=True, cli=True)
    add(G, 'CLI demo --quick: --out under /proc', demo_out(lambda d: Path('/proc/diffaug-demo')), want=['/proc'], early=True, cli=True)
    add(G, 'CLI demo --quick: --out in a read-only folder', demo_out(lambda d: ro_dir() / 'demo'), want=['readonly'], early=True, cli=True)
    def save_bad(kind, out_of):
        def fn():
            obj = {'DiffAug': lambda: fx('dam'), 'Denoiser': lambda: fx('den'), 'classifier': lambda: fx('plain')}[kind]()
            out = out_of(tmpdir())
            if kind == 'classifier': return api(save_classifier, obj, out)
            return api(obj.save, out)
        return fn
    add(G, 'DiffAug.save to a path under a file', save_bad('DiffAug', lambda d: afile(d) / 'ck'), want=['notafolder'], early=True)
    add(G, 'Denoiser.save to a path under a file', save_bad('Denoiser', lambda d: afile(d) / 'ck'), want=['notafolder'], early=True)
    add(G, 'save_classifier to a path under a file', save_bad('classifier', lambda d: afile(d) / 'ck'), want=['notafolder'], early=True)

    def phases_ok(limit):
        def chk(m):
            bad = []
            e = getattr(m, 'epochs_', None)
            if e is not None and any(int(v) > limit for v in e): bad.append(f"epochs_ = {tuple(e)}")
            h = getattr(m, 'history', None)
            if h is not None and len(h):
                per = h.groupby(['phase', 'round'])['epoch'].nunique()
                bad += [f"phase {k} ran {v} epochs" for k, v in per.items() if v > limit]
            g = getattr(m, 'generator', None)
            gh = getattr(g, 'history', None) if g is not None else None
            if gh is not None and len(gh) > limit: bad.append(f"generator (M phase) ran {len(gh)} epochs")
            return '; '.join(bad) or None
        return chk
    add(G, 'DiffAug(epochs=2).fit: no phase may run more than 2 epochs', lambda: api(dfit, W(), epochs=2), expect='ok',
        check=phases_ok(2), fail_outcome='silent')
    add(G, "DiffAug(epochs=2, augment='knnmix').fit: no phase over 2 epochs", lambda: api(dfit, W(), epochs=2, augment='knnmix'),
        expect='ok', check=phases_ok(2), fail_outcome='silent')
    def embed_epochs():
        a = _adata(); api(tl.embed, a, **dict(DA_FAST, epochs=2)); return a
    def params_ok(a, key='X_diffaug'):
        e = a.uns[key]['params'].get('epochs_run')
        return None if e is not None and all(int(v) <= 2 for v in np.ravel(e)) else f"epochs_run = {e}"
    add(G, 'tl.embed(epochs=2): no phase over 2 epochs (uns params epochs_run)', embed_epochs, expect='ok', check=params_ok, fail_outcome='silent')
    def cli_epochs():
        p = h5copy(); out = p.parent / 'out.h5ad'
        with call(): r = cli(['embed', p, '--out', out, '--epochs', '2', '--n-latent', '4', '--no-progress', '--generator', "{'steps': 2}"])
        r.path = out; return r
    add(G, 'CLI embed --epochs 2: no phase over 2 epochs', cli_epochs, expect='ok', cli=True,
        check=lambda r: params_ok(anndata.read_h5ad(r.path)), fail_outcome='silent')
    add(G, 'train_denoiser(epochs=1): exactly 1 epoch', lambda: api(tden, X()), expect='ok',
        check=lambda d: None if len(d.history) == 1 else f"history has {len(d.history)} epochs")

    # ========================= 4. dtype =========================
    G = 'dtype'
    def imgs(kind):
        x = X()
        return {'float64': lambda: x.double().numpy(), 'float16': lambda: x.half(), 'bfloat16': lambda: x.bfloat16(),
                'uint8': lambda: ((x + 1) * 127.5).round().to(torch.uint8), 'int64 in [-1, 1]': lambda: x.round().long(),
                'int64 0..16': lambda: ((x + 1) * 8).round().long(), 'bool': lambda: x > 0, 'object': lambda: x.numpy().astype(object),
                'complex': lambda: x.to(torch.complex64)}[kind]()
    is_learner = lambda r: None if hasattr(r, 'model') else f"returned {type(r).__name__}"
    def probs_ok(n):
        def chk(p):
            p = torch.as_tensor(p)
            return None if p.shape[0] == n and torch.isfinite(p).all() and torch.allclose(p.sum(1), torch.ones(n), atol=1e-3) else f"bad probabilities {tuple(p.shape)}"
        return chk
    DT = ('float16', 'half', 'bfloat16', 'dtype')
    add(G, 'fit_classifier: float64 numpy images (must be converted)', lambda: api(fitc, imgs('float64'), Y()), expect='ok', check=is_learner)
    add(G, 'fit_classifier: float16 images', lambda: api(fitc, imgs('float16'), Y()), expect='either', want=[DT], check=is_learner)
    add(G, 'fit_classifier: bfloat16 images', lambda: api(fitc, imgs('bfloat16'), Y()), expect='either', want=[DT], check=is_learner)
    add(G, 'fit_classifier: uint8 images 0..255', lambda: api(fitc, imgs('uint8'), Y()), want=[('[-1, 1]', '-1..1', '255', 'uint8')])
    add(G, 'fit_classifier: object-dtype images', lambda: api(fitc, imgs('object'), Y()), want=['object'])
    add(G, 'fit_classifier: complex images', lambda: api(fitc, imgs('complex'), Y()), want=['complex'])
    den_ok = lambda d: None if isinstance(d, Denoiser) else f"returned {type(d).__name__}"
    add(G, 'train_denoiser: float64 numpy images', lambda: api(tden, imgs('float64')), expect='ok', check=den_ok)
    add(G, 'train_denoiser: float16 images', lambda: api(tden, imgs('float16')), expect='either', want=[DT], check=den_ok)
    add(G, 'train_denoiser: complex images', lambda: api(tden, imgs('complex')), want=['complex'])
    add(G, 'predict_proba: float64 numpy images', lambda: api(predict_proba, fx('plain'), imgs('float64')), expect='ok', check=probs_ok(96))
    add(G, 'predict_proba: float16 images', lambda: api(predict_proba, fx('plain'), imgs('float16')), expect='either', want=[DT], check=probs_ok(96))
    add(G, 'predict_proba: uint8 images 0..255', lambda: api(predict_proba, fx('plain'), imgs('uint8')), want=[('[-1, 1]', '-1..1', '255', 'uint8')])
    add(G, 'DiffAug.fit: float64 numpy vectors', lambda: api(dfit, W().astype(np.float64)), expect='ok')
    add(G, 'DiffAug.fit: complex vectors', lambda: api(dfit, W().astype(np.complex64)), want=['complex'])
    # layouts
    CH = ('channel',)
    add(G, 'fit_classifier: channels-last RGB images (N, 8, 8, 3)', lambda: api(fitc, fx('x3')[0].permute(0, 2, 3, 1).contiguous(), Y()), want=[CH])
    add(G, 'train_denoiser: channels-last images (N, 8, 8, 1)', lambda: api(tden, X().permute(0, 2, 3, 1).contiguous()), want=[CH])
    add(G, 'predict_proba: channels-last images (N, 8, 8, 1)', lambda: api(predict_proba, fx('plain'), X().permute(0, 2, 3, 1).contiguous()), want=[CH])
    add(G, 'fit_classifier: 3-D images (N, 8, 8)', lambda: api(fitc, X()[:, 0], Y()), want=[CH])
    add(G, 'train_denoiser: 3-D images (N, 8, 8)', lambda: api(tden, X()[:, 0]), want=[('(96, 8, 8)',)])
    add(G, 'predict_proba: plain classifier trained on 8x8 given 16x16 images', lambda: api(predict_proba, fx('plain'), fx('x16')[0]), want=['16', '8'])
    add(G, 'predict_proba: classifier trained on 1 channel given 3-channel images', lambda: api(predict_proba, fx('plain'), fx('x3')[0]), want=[CH])
    add(G, "fit_classifier(mode='da') with a prior=None denoiser trained on 8x8, 16x16 data",
        lambda: api(fitc, fx('x16')[0], Y(), mode='da', denoiser=fx('den_np')), want=['16', '8'])
    add(G, 'predict_proba(ensemble=True) with a prior=None 8x8 denoiser on 16x16 images',
        lambda: api(predict_proba, fx('plain16'), fx('x16')[0], ensemble=True, denoiser=fx('den_np')), want=['16', '8'])
    add(G, "fit_classifier(mode='diffaug') with a 1-channel prior=None denoiser, 3-channel data",
        lambda: api(fitc, fx('x3')[0], Y(), mode='diffaug', denoiser=fx('den_np')), want=[CH])
    add(G, 'predict_proba(ensemble=True) with a 1-channel denoiser on 3-channel images',
        lambda: api(predict_proba, fx('plain3'), fx('x3')[0], ensemble=True, denoiser=fx('den_np')), want=[CH])
    add(G, 'fit_classifier: vectors (N, 64) instead of images', lambda: api(fitc, X().reshape(96, 64), Y()), want=[('(N, C, H, W)', 'image')])
    add(G, 'DiffAug.transform: images given to a model fitted on vectors', lambda: api(fx('dam').transform, X()), want=[('(13,)', '13 features', '13')])
    add(G, 'DiffAug.fit: scipy.sparse CSR matrix', lambda: api(dfit, spm.csr_matrix(W())), expect='ok')
    add(G, 'DiffAug.fit: DataFrame with a string column', lambda: api(dfit, pd.DataFrame(W()).assign(name=[f's{i}' for i in range(60)])),
        want=[('name', 'string', 'str', 'object')])
    def backed(copy_):
        def fn():
            p = h5copy(src='h5ad_sparse'); a = anndata.read_h5ad(p, backed='r')
            try:
                with keep_files(p): r = api(tl.embed, a, copy=copy_, **DA_FAST)
                return r if copy_ else a
            finally:
                try: a.file.close()
                except Exception: pass
        return fn
    emb_ok = lambda a: None if a is not None and 'X_diffaug' in a.obsm and np.isfinite(np.asarray(a.obsm['X_diffaug'])).all() else 'no finite obsm["X_diffaug"]'
    add(G, 'tl.embed: AnnData with a backed sparse X', backed(False), expect='either', want=['backed'], check=emb_ok)
    add(G, 'tl.embed(copy=True): AnnData with a backed sparse X', backed(True), expect='either', want=['backed'], check=emb_ok)
    def emb(**kw):
        def fn():
            a = _adata(); a.obsm['one_d'] = np.arange(60.0); a.layers['counts'] = a.X.copy()
            a.obsm['three_d'] = np.zeros((60, 2, 2), dtype=np.float32)
            with keep(a, 'the AnnData (failed embed)', only_on_error=True): api(tl.embed, a, **dict(DA_FAST, **kw))
            return a
        return fn
    add(G, "tl.embed(layer='nope'): no such layer", emb(layer='nope'), want=['nope', 'counts'])
    add(G, "tl.embed(use_rep='nope'): no such obsm key", emb(use_rep='nope'), want=['nope', 'X_pca'])
    add(G, "tl.embed(use_rep='one_d'): an obsm entry with one column (stored 1-D)", emb(use_rep='one_d'), expect='either',
        want=['one_d'], check=emb_ok)

    # ========================= 5. args =========================
    G = 'args'
    n = 16
    pp = lambda learner, **kw: (lambda: api(predict_proba, fx(learner), XS(), **kw))
    add(G, 'predict_proba(t=1.5)', pp('noisy', t=1.5), want=[T])
    add(G, "predict_proba(t='10')", pp('noisy', t='10'), want=[T])
    add(G, 'predict_proba(t=torch.tensor(3.7))', pp('noisy', t=torch.tensor(3.7)), want=[T])
    add(G, 'predict_proba(t=np.array([3]*n)) (valid)', pp('noisy', t=np.array([3] * n)), expect='ok', check=probs_ok(n))
    add(G, "predict_proba(t=float('nan'))", pp('noisy', t=float('nan')), want=[T])
    add(G, "predict_proba(t=float('inf'))", pp('noisy', t=float('inf')), want=[T])
    add(G, 'predict_proba(t=-1)', pp('noisy', t=-1), want=[T])
    add(G, 'predict_proba(t=1000) beyond the schedule', pp('noisy', t=1000), want=[T, ('999',)])
    add(G, 'predict_proba(t of wrong length 3 for 16 images)', pp('noisy', t=torch.arange(3)), want=[T, ('3',)])
    add(G, 'predict_proba(ensemble=True, steps=())', lambda: api(predict_proba, fx('plain'), XS(), ensemble=True, denoiser=fx('den'), steps=()), want=['steps'])
    add(G, 'predict_proba(ensemble=True, steps=(1.5,))', lambda: api(predict_proba, fx('plain'), XS(), ensemble=True, denoiser=fx('den'), steps=(1.5,)), want=['steps'])
    add(G, 'predict_proba(ensemble=True, steps=(-5,))', lambda: api(predict_proba, fx('plain'), XS(), ensemble=True, denoiser=fx('den'), steps=(-5,)), want=['steps'])
    add(G, 'predict_proba(bs=0)', pp('plain', bs=0), want=[arg('bs')])
    add(G, 'predict_proba(bs=-1)', pp('plain', bs=-1), want=[arg('bs')])
    add(G, 'predict_proba(bs=2.5)', pp('plain', bs=2.5), want=[arg('bs')])

    fc = lambda **kw: (lambda: api(fitc, X(), Y(), **kw))
    add(G, 'fit_classifier(epochs=0)', fc(epochs=0), want=['epochs'])
    add(G, 'fit_classifier(epochs=-1)', fc(epochs=-1), want=['epochs'])
    add(G, 'fit_classifier(epochs=1.5)', fc(epochs=1.5), want=['epochs'])
    add(G, "fit_classifier(epochs='3')", fc(epochs='3'), want=['epochs'])
    add(G, 'fit_classifier(valid_pct=1.0)', fc(valid_pct=1.0), want=['valid_pct'])
    add(G, 'fit_classifier(valid_pct=-0.1)', fc(valid_pct=-0.1), want=['valid_pct'])
    add(G, 'fit_classifier(valid_pct=1.5)', fc(valid_pct=1.5), want=['valid_pct'])
    add(G, 'fit_classifier(lr=0)', fc(lr=0), want=[arg('lr')])
    add(G, 'fit_classifier(lr=-1)', fc(lr=-1), want=[arg('lr')])
    add(G, "fit_classifier(lr=nan)", fc(lr=float('nan')), want=[arg('lr')])
    add(G, 'fit_classifier(n_classes=1)', fc(n_classes=1), want=['n_classes'])
    add(G, "fit_classifier(mode='bogus')", fc(mode='bogus'), want=['mode', 'bogus'])
    add(G, "fit_classifier(mode='noisy', t_max=5000)", fc(mode='noisy', t_max=5000), want=['t_max'])
    add(G, "fit_classifier(mode='noisy', t_max=-1)", fc(mode='noisy', t_max=-1), want=['t_max'])
    add(G, "fit_classifier(mode='noisy', t_max='bogus')", fc(mode='noisy', t_max='bogus'), want=['t_max'])
    add(G, 'fit_classifier: non-integer float labels', lambda: api(fitc, X(), Y().float() + 0.5), want=[('integer',)])
    add(G, 'fit_classifier: string labels', lambda: api(fitc, X(), np.array([f'c{int(v)}' for v in Y()])), want=[('integer', 'factorize', 'encode')])
    add(G, 'fit_classifier: one-hot (2-D) labels', lambda: api(fitc, X(), torch.nn.functional.one_hot(Y())), want=[('1-D', '2-D', 'shape')])
    add(G, 'fit_classifier: 90 labels for 96 images', lambda: api(fitc, X(), Y()[:90]), want=['90', '96'])

    DA = lambda **kw: (lambda: api(dfit, W(), **kw))
    add(G, 'DiffAug(epochs=(1, 0, 1)).fit (no M phase)', DA(epochs=(1, 0, 1)), expect='either', want=['epochs'],
        check=lambda m: None if np.isfinite(m.transform(W())).all() else 'non-finite embedding')
    add(G, 'DiffAug(epochs=(1, 1))', DA(epochs=(1, 1)), want=['epochs'])
    add(G, 'DiffAug(epochs=-3)', DA(epochs=-3), want=['epochs'])
    add(G, 'DiffAug(epochs=2.0)', DA(epochs=2.0), expect='either', want=['epochs'], check=phases_ok(2))
    add(G, 'DiffAug(n_latent=0)', DA(n_latent=0), want=['n_latent'])
    add(G, 'DiffAug(n_latent=-5)', DA(n_latent=-5), want=['n_latent'])
    add(G, 'DiffAug(n_latent=2.5)', DA(n_latent=2.5), want=['n_latent'])
    add(G, 'DiffAug(bs=0)', DA(bs=0), want=[arg('bs')])
    add(G, 'DiffAug(bs=1)', DA(bs=1), want=[arg('bs')])
    add(G, 'DiffAug(bs=10**9)', DA(bs=10 ** 9), want=[arg('bs')])
    add(G, 'DiffAug(lam=1.5)', DA(lam=1.5), want=['lam'])
    add(G, "DiffAug(lam=nan)", DA(lam=float('nan')), want=['lam'])
    add(G, 'DiffAug(rounds=0)', DA(rounds=0), want=['rounds'])
    add(G, 'DiffAug(k=0)', DA(k=0), want=[arg('k')])
    add(G, 'DiffAug(k=-1)', DA(k=-1), want=[arg('k')])
    add(G, 'DiffAug(k=10**6)', DA(k=10 ** 6), want=[arg('k')])
    add(G, 'DiffAug(n_pcs=0)', DA(n_pcs=0), want=['n_pcs'])
    add(G, 'DiffAug(n_pcs=-1)', DA(n_pcs=-1), want=['n_pcs'])
    add(G, "DiffAug(augment='bogus')", DA(augment='bogus'), want=['augment', 'bogus'])
    add(G, "DiffAug(loss='bogus')", DA(loss='bogus'), want=['loss', 'bogus'])
    add(G, 'DiffAug(generator=dict(bogus=1))', DA(generator=dict(bogus=1)), want=['bogus'])
    add(G, 'DiffAug(generator=dict(steps=0))', DA(generator=dict(steps=0)), want=['steps'], early=True)
    add(G, "DiffAug(generator=dict(sampler='bogus'))", DA(generator=dict(sampler='bogus')), want=['sampler', 'bogus'])
    add(G, 'DiffAug(random_state=-1)', DA(random_state=-1), want=['random_state'])
    add(G, "DiffAug(random_state='a')", DA(random_state='a'), want=['random_state'])
    add(G, 'DiffAug(random_state=1.5)', DA(random_state=1.5), want=['random_state'])
    add(G, "DiffAug(device='bogus')", DA(device='bogus'), want=['bogus'])
    add(G, "DiffAug(device='cuda') on a machine without CUDA", DA(device='cuda'), want=['cuda'])
    add(G, 'DiffAug.fit: 0 features (60, 0)', lambda: api(dfit, np.zeros((60, 0), np.float32)), want=[('feature', 'column')])
    add(G, 'DiffAug.fit: 1 feature', lambda: api(dfit, W()[:, :1]), expect='either', want=['feature'])
    add(G, 'DiffAug.fit: 3 rows', lambda: api(dfit, W()[:3]), want=['row'])
    add(G, 'DiffAug.fit: NaN values', lambda: api(dfit, np.where(np.eye(60, 13) > 0, np.nan, W())), want=['NaN'])
    add(G, 'DiffAug.fit: inf values', lambda: api(dfit, np.where(np.eye(60, 13) > 0, np.inf, W())), want=['inf'])
    add(G, 'DiffAug.fit: constant columns', lambda: api(dfit, np.concatenate([W(), np.ones((60, 3), np.float32)], 1)), expect='ok')
    add(G, 'DiffAug.transform: wrong feature count', lambda: api(fx('dam').transform, W()[:, :12]), want=['12', '13'])
    add(G, 'DiffAug.transform before fit', lambda: api(DiffAug(**DA_FAST).transform, W()), want=['fit'])

    def td_rows(k):
        def chk(d):
            h = getattr(d, 'history', None)
            if h is None or len(h) != 1: return f"history {None if h is None else len(h)} rows"
            bad = [c for c in h.columns if c.endswith('loss') and not np.isfinite(h[c]).all()]
            return f"non-finite {bad} in history" if bad else None
        return lambda: api(tden, X()[:k]), chk
    for k in (1, 3, 5, 6):
        f, chk = td_rows(k)
        if k == 1: add(G, 'train_denoiser on 1 row', f, want=['row'])
        else: add(G, f'train_denoiser on {k} rows (valid split rounds to {round(k * .1)})', f, expect='either', want=['row'], check=chk)
    add(G, 'train_denoiser(epochs=0)', lambda: api(tden, X(), epochs=0), want=['epochs'])
    add(G, 'train_denoiser(bs=0)', lambda: api(tden, X(), bs=0), want=[arg('bs')])
    add(G, 'train_denoiser(valid_pct=1.0)', lambda: api(tden, X(), valid_pct=1.0), want=['valid_pct'])
    add(G, 'train_denoiser: cond of wrong length', lambda: api(tden, X(), cond=torch.zeros(50, 3)), want=['cond', '50'])

    x4 = lambda: torch.zeros(4, 3)
    add(G, 'Schedule.diffuse(t=1000)', lambda: api(VPSchedule().diffuse, x4(), 1000), want=[T, ('999',)])
    add(G, 'Schedule.diffuse(t=2.5)', lambda: api(VPSchedule().diffuse, x4(), 2.5), want=[T])
    add(G, 'Schedule.diffuse(t_max=5000)', lambda: api(VPSchedule().diffuse, x4(), t_max=5000), want=['t_max'])
    add(G, 'VPSchedule(n_steps=1)', lambda: api(VPSchedule, n_steps=1), want=['n_steps'])
    add(G, 'sample_ddim(steps=0)', lambda: api(sample_ddim, fx('den'), (4, 1, 8, 8), steps=0, progress=False), want=['steps'])
    add(G, 'sample_ddim(steps=5000) > n_steps', lambda: api(sample_ddim, fx('den'), (4, 1, 8, 8), steps=5000, progress=False), want=['steps'])

    add(G, 'tl.embed of a numpy array', lambda: api(tl.embed, W(), **DA_FAST), want=['AnnData'])
    add(G, "tl.embed(key_added='')", lambda: api(tl.embed, _adata(), key_added='', **DA_FAST), want=['key_added'])
    add(G, 'tl.embed(key_added=5)', lambda: api(tl.embed, _adata(), key_added=5, **DA_FAST), want=['key_added'])
    add(G, 'tl.embed(bogus=1) unknown setting', lambda: api(tl.embed, _adata(), bogus=1, **DA_FAST), want=['bogus'])

    def rh(make):
        def fn():
            d = tmpdir(); p = make(d)
            with keep_files(p): return api(ddata.read_h5ad, p)
        return fn
    add(G, 'read_h5ad: missing file', lambda: api(ddata.read_h5ad, tmpdir() / 'missing.h5ad'), want=['missing.h5ad'])
    def mkdir_(d): q = d / 'folder.h5ad'; q.mkdir(); return q
    add(G, 'read_h5ad: a folder', rh(mkdir_), want=['folder.h5ad'])
    def txt(d): q = d / 'text.h5ad'; q.write_text('gene,cell\n1,2\n'); return q
    add(G, 'read_h5ad: a text file named .h5ad', rh(txt), want=[('HDF5', 'h5ad'), ('text.h5ad',)])
    def empty(d): q = d / 'empty.h5ad'; q.write_bytes(b''); return q
    add(G, 'read_h5ad: an empty file', rh(empty), want=[('HDF5', 'h5ad', 'empty'), ('empty.h5ad',)])
    def h5other(d):
        import h5py
        q = d / 'other.h5ad'
        with h5py.File(q, 'w') as f: f['weights'] = np.zeros(3)
        return q
    def trunc_h5ad(d): q = h5copy(d, 'half.h5ad'); _truncate(q); return q
    import pickle
    def cifar(batch_bytes=None, obj=None, check_md5=False):
        def fn():
            d = tmpdir(); f = d / 'cifar-10-batches-py'; f.mkdir()
            ok = {'data': np.zeros((2, 3072), np.uint8), 'labels': [0, 1]}
            for k in range(2, 6): (f / f'data_batch_{k}').write_bytes(pickle.dumps(ok))
            (f / 'test_batch').write_bytes(pickle.dumps(ok))
            (f / 'batches.meta').write_bytes(pickle.dumps({'label_names': ['a'] * 10}))
            b = f / 'data_batch_1'
            b.write_bytes(batch_bytes if batch_bytes is not None else pickle.dumps(obj))
            with keep_files(b): return api(ddata.load_cifar10, d, check_md5=check_md5)
        return fn
    add(G, 'load_cifar10: a batch file of garbage bytes', cifar(batch_bytes=b'\x00garbage' * 100), want=['cifar-10-batches-py', 'cannot be read'])
    add(G, 'load_cifar10: a batch with 10 images and 7 labels', cifar(obj={'data': np.zeros((10, 3072), np.uint8), 'labels': [0] * 7}), want=['18 images but 15 labels'])
    add(G, 'load_cifar10: files that are not the official ones', cifar(batch_bytes=b'\x00garbage', check_md5=True), want=['MD5', 'check_md5=False'])
    add(G, "corrupted_set(kinds=('bogus',))", lambda: api(ddata.corrupted_set, XS(), ('bogus',), (3,)), want=['bogus'])

    # ========================= 6. cli =========================
    G = 'cli'
    def ce(*extra, inp=None, out=None):
        def fn():
            p = h5copy() if inp is None else inp(tmpdir())
            o = (p.parent / 'out.h5ad') if out is None else out(p.parent)
            keepers = [p] if Path(p).exists() else []
            with keep_files(*keepers), call(): return cli(['embed', p, '--out', o, *CLI_FAST, *extra])
        return fn
    add(G, 'embed: input missing', ce(inp=lambda d: d / 'missing.h5ad'), want=['missing.h5ad'], cli=True)
    add(G, 'embed: input a text file named .h5ad', ce(inp=txt), want=[('HDF5', 'h5ad'), ('text.h5ad',)], cli=True)
    add(G, 'embed: input an empty file', ce(inp=empty), want=[('HDF5', 'h5ad', 'empty'), ('empty.h5ad',)], cli=True)
    add(G, 'embed: --epochs abc', ce('--epochs', 'abc'), want=['epochs', 'abc'], cli=True)
    add(G, 'embed: --epochs 0', ce('--epochs', '0'), want=['epochs'], cli=True)
    add(G, 'embed: --n-latent -1', ce('--n-latent', '-1'), want=[('n_latent', 'n-latent'), ('-1',)], cli=True)
    add(G, 'embed: --lam 2', ce('--lam', '2'), want=['lam'], cli=True)
    add(G, 'embed: --device bogus', ce('--device', 'bogus'), want=['device', 'bogus'], cli=True)
    add(G, 'embed: --augment bogus', ce('--augment', 'bogus'), want=['augment', 'bogus'], cli=True)
    add(G, 'embed: --bs 0', ce('--bs', '0'), want=[('bs',)], cli=True)
    add(G, 'embed: --random-state -1', ce('--random-state', '-1'), want=[('random_state', 'random-state')], cli=True)
    add(G, 'embed: unknown option --bogus', ce('--bogus', '1'), want=['bogus'], cli=True)
    add(G, 'embed: --use-rep nope', ce('--use-rep', 'nope'), want=['nope'], cli=True)
    add(G, 'embed: --layer nope', ce('--layer', 'nope'), want=['nope'], cli=True)
    add(G, "embed: --generator \"{'bogus': 1}\"", ce('--generator', "{'bogus': 1}"), want=['bogus'], cli=True)
    add(G, 'embed: --out missing', lambda: cli(['embed', h5copy()]), want=['--out'], cli=True)
    def same_path():
        p = h5copy()
        with call(): r = cli(['embed', p, '--out', p, *CLI_FAST])
        r.path = p; return r
    def same_ok(r):
        a = anndata.read_h5ad(r.path)
        return None if a.n_obs == 60 and 'X_diffaug' in a.obsm and np.allclose(np.asarray(a.X), _wine()) else 'the rewritten file is not the input plus X_diffaug'
    add(G, 'embed: --out the same file as the input (must stay a valid file)', same_path, expect='ok', cli=True, check=same_ok)
    add(G, 'demo --device bogus', lambda: cli(['demo', '--quick', '--parts', 'diffusion', '--no-progress', '--device', 'bogus', '--out', tmpdir() / 'd']),
        want=['device', 'bogus'], cli=True, early=True)
    add(G, 'demo --parts bogus', lambda: cli(['demo', '--quick', '--parts', 'bogus', '--out', tmpdir() / 'd']), want=['bogus'], cli=True)
    add(G, 'demo --seed -1', lambda: cli(['demo', '--quick', '--parts', 'diffusion', '--no-progress', '--seed', '-1', '--out', tmpdir() / 'd']),
        want=['seed', '-1'], cli=True, early=True)
    def debug_flag():
        "Whether `--debug` is accepted (before or after `embed`); with it, an error may show its traceback or re-raise."
        d = tmpdir(); found = []
        for argv in (['--debug', 'embed', d / 'missing.h5ad', '--out', d / 'o.h5ad'],
                     ['embed', '--debug', d / 'missing.h5ad', '--out', d / 'o.h5ad']):
            try: r = cli(argv)
            except BaseException as e:  # --debug re-raised the error: the user sees the traceback
                found.append(f"{' '.join(map(str, argv[:2]))}: re-raises {type(e).__name__}"); continue
            text = r.err + r.out
            if 'unrecognized arguments' not in text and 'invalid choice' not in text:
                found.append(f"{' '.join(map(str, argv[:2]))}: accepted" + (', traceback shown' if 'Traceback' in text else ''))
        return found
    add(G, 'a --debug flag exists (shows the traceback of an error)', debug_flag, expect='info')

    # ========================= 7. caller =========================
    G = 'caller'
    def den_t():
        d = copy.deepcopy(fx('den')); d.train(); d.requires_grad_(True); return d
    def c_fit(mode):
        def fn():
            d, x = den_t(), X().clone()
            with keep(d, f'denoiser given to fit_classifier(mode={mode!r}) (train mode, requires_grad)'), keep(x, 'x'):
                return api(fitc, x, Y(), mode=mode, denoiser=d)
        return fn
    add(G, "fit_classifier(mode='da') leaves the denoiser's training flag, requires_grad and weights", c_fit('da'), expect='ok')
    add(G, "fit_classifier(mode='diffaug') leaves the denoiser as it was", c_fit('diffaug'), expect='ok')
    def c_pp_ens():
        d, x = den_t(), XS()
        with keep(d, 'denoiser given to predict_proba'), keep(x, 'x'):
            return api(predict_proba, fx('plain'), x, ensemble=True, denoiser=d, steps=(0, 100))
    add(G, 'predict_proba(ensemble=True, denoiser=<train-mode denoiser>) leaves it as it was', c_pp_ens, expect='ok')
    def c_pp_da():
        d = den_t()
        with keep(d, 'denoiser given to predict_proba'): return api(predict_proba, fx('da'), XS(), t=10, denoiser=d)
    add(G, 'predict_proba(DA learner, t=10, denoiser=<train-mode denoiser>) leaves it as it was', c_pp_da, expect='ok')
    def c_pp_trainmode():
        l = _fit_cls(*fx('digits')); l.model.train()
        with keep(l.model, 'the learner model (left in train mode by the caller)'): return api(predict_proba, l, XS())
    add(G, "predict_proba leaves a learner's model in the mode it was in", c_pp_trainmode, expect='ok')
    def c_tc():
        d, u = den_t(), X()[:32].clone()
        with keep(d, 'denoiser given to TemporalConsistencyCB and fit_classifier'), keep(u, 'unlabeled images'):
            cb = TemporalConsistencyCB(u, denoiser=d, bs=16)
            return api(fitc, X(), Y(), mode='da', denoiser=d, cbs=[cb])
    add(G, 'TemporalConsistencyCB + fit_classifier(mode=da) leave the denoiser and the unlabeled images', c_tc, expect='ok')
    def c_fail_mid():
        from fastai.callback.core import Callback
        class Boom(Callback):
            def after_batch(self): _fail('error')
        d, x = den_t(), X().clone()
        with keep(d, 'denoiser (fit_classifier failed mid-way)'), keep(x, 'x'):
            api(fitc, x, Y(), mode='da', denoiser=d, cbs=[Boom()])
    add(G, "fit_classifier(mode='da') failing mid-way leaves the denoiser as it was", c_fail_mid, injected=True)
    def c_da_tensor():
        x = torch.from_numpy(W())
        with keep(x, 'x tensor given to DiffAug.fit'): return api(dfit, x)
    add(G, 'DiffAug.fit leaves the input tensor unchanged', c_da_tensor, expect='ok')
    def c_da_numpy():
        x = W().astype(np.float64)
        with keep(x, 'x array given to DiffAug.fit'): return api(dfit, x)
    def c_da_transform():
        m = fx('dam'); x = W()
        with keep(x, 'x given to transform'), keep(m.model, 'the fitted encoder'): return api(m.transform, x)
    add(G, 'DiffAug.transform leaves its input and the model unchanged', c_da_transform, expect='ok')
    def c_td():
        x = X().clone()
        with keep(x, 'x given to train_denoiser'), keep_rng(): return api(tden, x)
    add(G, "train_denoiser leaves its input and the global RNGs", c_td, expect='ok')
    def c_fc_rng():
        with keep_rng(): return api(fitc, X(), Y())
    add(G, 'fit_classifier leaves the global RNGs (torch, numpy, random)', c_fc_rng, expect='ok')
    def c_da_rng():
        with keep_rng(): return api(dfit, W())
    add(G, 'DiffAug.fit leaves the global RNGs', c_da_rng, expect='ok')
    def c_embed():
        a = _adata(); x0 = a.X.copy(); obs0 = a.obs.copy()
        with call(): tl.embed(a, **DA_FAST)
        ch = []
        if not np.array_equal(a.X, x0): ch.append('X')
        if not a.obs.equals(obs0): ch.append('obs')
        if ch: ST.lost.append(f"modified: embed changed adata.{'/'.join(ch)}")
        return a
    add(G, 'tl.embed writes obsm/uns and leaves X and obs unchanged', c_embed, expect='ok', check=emb_ok)
    def c_embed_copy():
        a = _adata()
        with keep(a, 'AnnData given to tl.embed(copy=True)'): return api(tl.embed, a, copy=True, **DA_FAST)
    add(G, 'tl.embed(copy=True) leaves the input AnnData entirely unchanged', c_embed_copy, expect='ok', check=emb_ok)
    def c_embed_fail(**kw):
        def fn():
            a = _adata()
            with keep(a, 'AnnData after a failed tl.embed'): api(tl.embed, a, **dict(DA_FAST, **kw))
        return fn
    add(G, 'failed tl.embed(lam=2) writes nothing into the AnnData', c_embed_fail(lam=2), want=['lam'])
    add(G, 'failed tl.embed (generator steps=0, fails after E1 and M) writes nothing', c_embed_fail(generator=dict(steps=0)), want=['steps'])
    def c_embed_fail_inj():
        a = _adata()
        def boom(self, *a_, **k): _fail('error')
        with keep(a, 'AnnData after a failed tl.embed'), patched(DiffAug, 'transform', boom): api(tl.embed, a, **DA_FAST)
    add(G, 'tl.embed failing in transform (injected) writes nothing', c_embed_fail_inj, injected=True)
    def c_sample():
        d = den_t()
        with keep(d, 'denoiser given to sample_ddim'), keep_rng(): return api(sample_ddim, d, (2, 1, 8, 8), steps=2, progress=False, generator=torch.Generator().manual_seed(0))
    def c_save_flags():
        d = den_t()
        with keep(d, 'denoiser saved by Denoiser.save'): return api(d.save, tmpdir() / 'ck')
    def c_embed_file_input():
        p = h5copy()
        with keep_files(p): return api(tl.embed_file, p, p.parent / 'out.h5ad', **DA_FAST)
    add(G, 'embed_file to another path leaves the input file byte-identical', c_embed_file_input, expect='ok')

    # ========================= 8. holdout =========================
    # Out-of-sample check: cases written after the fixes, by someone who did not write the fixes, across the whole public API.
    # Each `want` was chosen from the problem (the offending argument's name or value) before any case was run.
    G = 'holdout'
    from diffaug import metrics as dmet, guidance as dgui, augment as daug, explore as dexp
    from diffaug.sampling import sample_ddpm
    ZH = lambda: np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    YH = lambda: np.arange(60) % 3
    fin = lambda v: None if isinstance(v, float) and np.isfinite(v) else f"returned {v!r}"
    def fin_dict(d):
        return None if isinstance(d, dict) and d and all(np.isfinite(v) for v in d.values()) else f"returned {d!r}"[:200]

    # --- metrics
    add(G, 'evaluate_embedding: 60 rows of z, 50 labels', lambda: api(dmet.evaluate_embedding, ZH(), YH()[:50]), want=['60', '50'])
    def z_nan(): z = ZH(); z[3, 2] = np.nan; return z
    add(G, 'knn_accuracy: z holds a NaN', lambda: api(dmet.knn_accuracy, z_nan(), YH()), want=['NaN'])
    add(G, 'linear_probe_accuracy: y has a single class', lambda: api(dmet.linear_probe_accuracy, ZH(), np.zeros(60, np.int64)),
        want=[('single class', 'one class', '1 class', 'only one', 'two classes', 'at least 2', 'at least two')])
    add(G, 'kmeans_accuracy(n_clusters=0)', lambda: api(dmet.kmeans_accuracy, ZH(), YH(), n_clusters=0), want=['n_clusters'])
    add(G, 'evaluate_embedding on 8 rows (fewer per class than the 5 CV folds)',
        lambda: api(dmet.evaluate_embedding, ZH()[:8], np.arange(8) % 2), want=[('fold', 'n_splits', 'rows', 'samples')])
    add(G, 'knn_accuracy(k=0)', lambda: api(dmet.knn_accuracy, ZH(), YH(), k=0), want=[arg('k')])
    add(G, 'frechet_distance: f1 has 8 features, f2 has 6', lambda: api(dmet.frechet_distance, np.random.default_rng(1).normal(size=(50, 8)), np.random.default_rng(2).normal(size=(50, 6))),
        want=['8', '6'])
    def f_nan(): f = np.random.default_rng(3).normal(size=(50, 4)); f[7, 1] = np.nan; return f
    add(G, 'frechet_distance: f1 holds a NaN', lambda: api(dmet.frechet_distance, f_nan(), np.random.default_rng(4).normal(size=(50, 4))), want=['f1', 'NaN'])
    add(G, 'evaluate_embedding: pandas DataFrame z and int64 numpy labels (valid)',
        lambda: api(dmet.evaluate_embedding, pd.DataFrame(ZH(), columns=list('abcde')), YH().astype(np.int64), metrics=('knn', 'kmeans')),
        expect='ok', check=fin_dict)
    add(G, 'knn_accuracy: a list of lists and a list of ints (valid)', lambda: api(dmet.knn_accuracy, ZH().tolist(), YH().tolist()),
        expect='ok', check=fin)
    def fd_grad():
        f1 = torch.randn(40, 3, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
        with keep(f1, 'f1 (float32, requires_grad=True) given to frechet_distance'):
            return api(dmet.frechet_distance, f1, torch.randn(40, 3, generator=torch.Generator().manual_seed(1)))
    add(G, 'frechet_distance: float32 CPU tensor with requires_grad=True (valid)', fd_grad, expect='ok', check=fin)

    # --- guidance
    gs = lambda **kw: (lambda: api(dgui.guided_sample, fx('noisy'), fx('den'), **dict(dict(classes=[0], n=1, steps=2), **kw)))
    add(G, 'guided_sample(classes=[12]) with a 10-class classifier', gs(classes=[12]), want=['12', 'class'])
    add(G, "guided_sample(scale=nan)", gs(scale=float('nan')), want=['scale'])
    def cf_call(y):
        def fn():
            with call():
                cf = dgui.classifier_cond_fn(fx('noisy'), y=y)
                return sample_ddim(fx('den'), (2, 1, 8, 8), steps=2, cond_fn=cf, progress=False)
        return fn
    add(G, 'classifier_cond_fn(y=10) with a 10-class classifier, used by sample_ddim', cf_call(10), want=[arg('y'), '10'])
    cg = lambda x, y, **kw: (lambda: api(dgui.classifier_gradients, fx('noisy'), x(), y(), **kw))
    add(G, 'classifier_gradients: vectors (16, 64) instead of images', cg(lambda: XS().reshape(16, 64), lambda: Y()[:16]),
        want=[arg('x'), ('(N, C, H, W)', 'image')])
    add(G, 'classifier_gradients: 3 labels for 16 images', cg(XS, lambda: Y()[:3]), want=['3', '16'])
    add(G, 'explore.guided_grid(scales=[nan])', lambda: api(dexp.guided_grid, fx('den'), fx('noisy'), [0], [float('nan')], n=1, steps=2),
        want=['scale'])

    # --- sampling
    sd = lambda den, shape, **kw: (lambda: api(sample_ddim, fx(den), shape, **dict(dict(steps=2, progress=False), **kw)))
    sp = lambda den, shape, **kw: (lambda: api(sample_ddpm, fx(den), shape, **dict(dict(progress=False), **kw)))
    add(G, 'sample_ddim: shape (4, 1, 16, 16) for a denoiser trained on 1x8x8', sd('den', (4, 1, 16, 16)), want=['16', '8'])
    add(G, 'sample_ddpm: shape (4, 64) for an image denoiser', sp('den', (4, 64)), want=['shape', '64'])
    cgen = lambda: fx('dam').generator
    add(G, 'sample_ddim: cond of width 7 for a generator conditioned on 4', lambda: api(sample_ddim, cgen(), (4, 13), cond=torch.zeros(4, 7),
                                                                                        steps=2, progress=False), want=['cond', '7'])
    add(G, 'sample_ddpm: no cond for a conditional generator', lambda: api(sample_ddpm, cgen(), (4, 13), progress=False), want=['cond'])
    add(G, 'sample_ddim: x_T of shape (4, 1, 8, 8) for shape (2, 1, 8, 8)', sd('den', (2, 1, 8, 8), x_T=torch.zeros(4, 1, 8, 8)), want=['x_T'])
    add(G, 'sample_ddim(eta=-1)', sd('den', (2, 1, 8, 8), eta=-1.), want=['eta'])
    add(G, 'sample_ddim(eta=2.0)', sd('den', (2, 1, 8, 8), eta=2.), want=['eta'])

    # --- augment
    add(G, 'KNNMix(x of 6 rows, k=6)', lambda: api(daug.KNNMix, W()[:6], k=6), want=[arg('k'), '6'])
    add(G, 'ViewBank.draw before any refresh', lambda: api(daug.ViewBank(10).draw, torch.arange(3)), want=[('refresh', 'empty')])
    add(G, 'ViewBank(10).refresh with codes of 5 rows', lambda: api(daug.ViewBank(10, steps=2).refresh, cgen(), torch.zeros(5, 4)),
        want=['codes', '5', '10'])

    # --- data
    cr = lambda *a, **k: (lambda: api(ddata.corrupt, XS(), *a, **k))
    add(G, "corrupt(x, 'frog', 3): unknown corruption", cr('frog', 3), want=['frog'])
    add(G, "corrupt(x, 'gaussian_noise', severity=0)", cr('gaussian_noise', 0), want=['severity'])
    add(G, "corrupt(x, 'gaussian_noise', severity=6)", cr('gaussian_noise', 6), want=['severity'])
    add(G, "corrupt(x, 'gaussian_noise', severity=2.5)", cr('gaussian_noise', 2.5), want=['severity'])
    def cr_grad():
        x = XS().requires_grad_(True)
        with keep(x, 'x (requires_grad=True) given to corrupt'): return api(ddata.corrupt, x, 'gaussian_noise', 2, generator=torch.Generator().manual_seed(0))
    add(G, 'corrupt: float32 tensor with requires_grad=True (valid)', cr_grad, expect='ok',
        check=lambda r: None if tuple(r.shape) == (16, 1, 8, 8) and torch.isfinite(r).all() and float(r.detach().abs().max()) <= 1 else 'bad output')
    add(G, 'VectorScaler.transform before fit', lambda: api(ddata.VectorScaler().transform, W()), want=['fit'])
    add(G, 'VectorScaler fitted on 13 features, transform 10', lambda: api(ddata.VectorScaler().fit(W()).transform, W()[:, :10]), want=['10', '13'])
    def vs_const():
        x = np.concatenate([W(), np.full((60, 2), 7., np.float32)], 1)
        return api(ddata.VectorScaler().fit_transform, x)
    add(G, 'VectorScaler on constant columns (valid: finite, constant columns -> 0)', vs_const, expect='ok',
        check=lambda z: None if torch.isfinite(z).all() and bool((z[:, -2:] == 0).all()) else 'non-finite or constant columns not 0')
    def a2t(**kw):
        def fn():
            a = _adata(); a.obs['n_counts'] = np.linspace(0.5, 9.3, 60); a.obs['empty'] = np.full(60, np.nan)
            a.layers['counts'] = a.X.copy()
            with keep(a, 'AnnData given to adata_to_tensor'): return api(ddata.adata_to_tensor, a, **kw)
        return fn
    add(G, "adata_to_tensor(labels_key='celltype'): no such obs column", a2t(labels_key='celltype'), want=['celltype'])
    add(G, "adata_to_tensor(labels_key='empty'): an all-NaN column", a2t(labels_key='empty'), want=['empty', ('missing', 'NaN', 'NA')])

    # --- semisup
    def tc(u, **kw):
        def fn():
            d = copy.deepcopy(fx('den'))
            with call():
                cb = TemporalConsistencyCB(u(), denoiser=d, bs=16, **kw)
                return fitc(X(), Y(), mode='da', denoiser=d, cbs=[cb])
        return fn
    add(G, 'TemporalConsistencyCB: 16x16 unlabeled images, 8x8 labelled ones', tc(lambda: fx('x16')[0][:32]), want=['16', '8'])
    add(G, 'TemporalConsistencyCB(radius=0)', tc(lambda: X()[:32], radius=0), want=['radius'])
    add(G, 'TemporalConsistencyCB(weight=-0.5)', tc(lambda: X()[:32], weight=-0.5), want=['weight'])

    # --- contrastive: generate_views, save/load
    add(G, 'DiffAug.generate_views before fit', lambda: api(DiffAug(**DA_FAST).generate_views, W()), want=['fit'])
    add(G, "DiffAug(augment='knnmix').generate_views", lambda: api(fx('dam_knn').generate_views, W()[:5]),
        want=[('knnmix', 'diffaug', 'generator')])
    add(G, 'DiffAug.generate_views: 10 features for a model fitted on 13', lambda: api(fx('dam').generate_views, W()[:5, :10]), want=['10', '13'])
    add(G, 'DiffAug.generate_views(n=0)', lambda: api(fx('dam').generate_views, W()[:5], n=0), want=[arg('n')])
    def rt_renamed():
        d = tmpdir(); m = fx('dam'); m.save(d / 'ck'); os.rename(d / 'ck', d / 'renamed')
        m2 = api(DiffAug.load, d / 'renamed')
        return np.abs(m2.transform(W()) - m.transform(W())).max()
    add(G, 'DiffAug.save then load from a renamed folder (valid: same embedding)', rt_renamed, expect='ok',
        check=lambda e: None if e < 1e-5 else f"embeddings differ by {e}")

    # --- explore (static functions)
    add(G, 'explore.diffusion_states: a batch (4, 1, 8, 8) instead of one item', lambda: api(dexp.diffusion_states, fx('den'), XS()[:4], [0, 10]),
        want=['x0'])
    add(G, 'explore.item_views(idx=100) on 60 rows', lambda: api(dexp.item_views, fx('dam'), W(), 100), want=['idx', '100'])

    # --- tl.embed
    def clash():
        a = _adata(); before = a.obsm['X_pca'].shape
        api(tl.embed, a, key_added='X_pca', **DA_FAST)
        ST.notes.append(f"tl.embed(key_added='X_pca') overwrote the existing obsm['X_pca'] {before} with {a.obsm['X_pca'].shape}")
        return a
    add(G, "tl.embed(key_added='X_pca') over an existing obsm key of another shape (n_latent=4 vs 5 columns)", clash, expect='either',
        want=['X_pca'], check=lambda a: None if a.obsm['X_pca'].shape == (60, 4) and np.isfinite(a.obsm['X_pca']).all() else 'obsm["X_pca"] not the embedding')
    def emb_nan():
        x = _wine(); x[5, 3] = np.nan; return api(tl.embed, _adata(x), **DA_FAST)
    add(G, 'tl.embed: adata.X holds a NaN', emb_nan, want=['NaN'])
    add(G, 'DiffAug.fit: pandas DataFrame of floats (valid)', lambda: api(dfit, pd.DataFrame(W(), columns=[f'g{j}' for j in range(13)])),
        expect='ok', check=lambda m: None if m.transform(W()).shape == (60, 4) else 'bad embedding')

    # --- CLI
    def ch(*extra, x=None):
        def fn():
            if x is None: p = h5copy()
            else: p = tmpdir() / 'in.h5ad'; _adata(x).write_h5ad(p)
            with keep_files(p), call(): return cli(['embed', p, '--out', p.parent / 'out.h5ad', *CLI_FAST, *extra])
        return fn
    add(G, "CLI embed --generator \"{'steps': 0}\"", ch('--generator', "{'steps': 0}"), want=['steps'], cli=True, early=True)
    add(G, 'CLI embed --epochs "(1,2)"', ch('--epochs', '(1,2)'), want=['epochs'], cli=True, early=True)
    add(G, 'CLI embed --n-pcs 0', ch('--n-pcs', '0'), want=[('n_pcs', 'n-pcs')], cli=True, early=True)
    def nan_x(): x = _wine(); x[5, 3] = np.nan; return x
    add(G, 'CLI embed: input .h5ad whose X holds a NaN', lambda: ch(x=nan_x())(), want=['NaN'], cli=True, early=True)
    add(G, 'CLI embed: input .h5ad with 3 cells', lambda: ch(x=_wine()[:3])(), want=[('cell', 'row')], cli=True, early=True)

    # checkpoint wants hold '{ck}': make each of those cases compute its folder and fill the want in
    for c in CASES:
        if c.group == 'checkpoint' and any('{ck}' in alt for w in c.want for alt in w):
            c.fn = _ck_wrap(c)

def _ck_wrap(c):
    "The checkpoint cases copy the pristine folder into a fresh temp folder: fill that folder into `want` as it is made."
    inner, tmpl = c.fn, [tuple(w) for w in c.want]
    orig_copy = globals()['copy_ck']
    def fn():
        made = []
        def cc(name, d=None):
            r = orig_copy(name, d); made.append(r); return r
        globals()['copy_ck'] = cc
        try:
            return inner()
        finally:
            globals()['copy_ck'] = orig_copy
            if made:
                ck = str(made[0])
                c.want = [tuple(dict.fromkeys(alt.replace('{ck}', v) for alt in w for v in (ck, str(Path(ck).resolve())))) for w in tmpl]
    return fn

def _info_outcome(res):
    return ('present', '; '.join(res)) if res else ('absent', 'no --debug option')

# ---------------------------------------------------------------------------------------------------------------------
# reports

def write_atomic_text(path:Path, text:str):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='') as f: f.write(text)
        os.chmod(tmp, 0o644); os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True); raise

def write_csv(path, results):
    buf = io.StringIO()
    cols = ['group', 'name', 'expect', 'outcome', 'seconds', 'exc_type', 'message', 'where', 'fits', 'want', 'note']
    w = csv.writer(buf); w.writerow(cols)
    for r in results: w.writerow([getattr(r, c) for c in cols])
    write_atomic_text(path, buf.getvalue())

def write_md(path, results, header):
    used = [o for o in OUTCOMES if any(r.outcome == o for r in results)]
    groups = [g for g in GROUPS if any(r.group == g for r in results)]
    L = [header, '', '| group | ' + ' | '.join(used) + ' | cases |', '|---|' + '---|' * (len(used) + 1)]
    for g in groups:
        rs = [r for r in results if r.group == g]
        L.append(f'| {g} | ' + ' | '.join(str(sum(r.outcome == o for r in rs)) for o in used) + f' | {len(rs)} |')
    L.append('| **total** | ' + ' | '.join(f'**{sum(r.outcome == o for r in results)}**' for o in used) + f' | **{len(results)}** |')
    err = [r for r in results if r.expect == 'error']
    n_clear = sum(r.outcome == 'clear' for r in err)
    ok = [r for r in results if r.expect == 'ok']
    eit = [r for r in results if r.expect == 'either']
    L += ['', f"**{n_clear} of {len(err)} bad-input cases give a clear error.** "
          f"{sum(r.outcome == 'ran' for r in ok)} of {len(ok)} inputs that should be accepted ran correctly; "
          f"{sum(r.outcome in ('ran', 'clear') for r in eit)} of {len(eit)} cases where converting or refusing are both fine did one of the two.",
          '', 'Groups: ' + '; '.join(f'`{g}` {GROUPS[g]}' for g in groups) + '.', '']
    for g in groups:
        bad = [r for r in results if r.group == g and r.outcome not in ('clear', 'ran')]
        L.append(f'## {g}: {GROUPS[g]}')
        L.append('')
        if not bad: L += ['All cases clear or ran.', '']; continue
        for r in bad:
            s = f"- **{r.outcome}** ({r.expect}) {r.name}"
            if r.exc_type: s += f" — `{r.exc_type}`"
            if r.where: s += f" at `{r.where}`"
            if r.message: s += f": {r.message.replace('|', '/')}"
            if r.note: s += f" [{r.note}]"
            if r.want and r.outcome in ('unclear',): s += f" (want: {r.want})"
            L.append(s)
        L.append('')
    write_atomic_text(path, '\n'.join(L) + '\n')

# ---------------------------------------------------------------------------------------------------------------------

def main(argv=None):
    global SESSION, PKG_DIR, CASE_TIMEOUT, _BUILD
    a = parse_args(argv)
    CASE_TIMEOUT = a.timeout
    for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'): os.environ.setdefault(k, '1')
    os.environ.setdefault('MPLBACKEND', 'Agg')
    t_start = time.time()
    import torch, diffaug
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    PKG_DIR = Path(diffaug.__file__).resolve().parent
    from fastai.learner import Learner
    _orig_fit = Learner.fit
    def _spy_fit(self, *args, **kw):
        FITS[0] += 1; return _orig_fit(self, *args, **kw)
    Learner.fit = _spy_fit
    _BUILD = _build()
    define_cases()
    cases = [c for c in CASES if (not a.only or c.group in a.only) and (a.match is None or a.match.lower() in c.name.lower())]
    if a.list:
        for c in cases: print(f"{c.group:11s} {c.expect:6s} {c.name}")
        print(f"{len(cases)} cases"); return 0
    out = Path(a.out)
    print(f"diffaug {getattr(diffaug, '__version__', '?')} from {PKG_DIR}; {len(cases)} cases", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix='diffaug-bad-inputs-') as tmp:
        SESSION = Path(tmp)
        for i, c in enumerate(cases, 1):
            r = run_case(c)
            results.append(r)
            if not a.quiet:
                print(f"[{i:3d}/{len(cases)}] {r.outcome:8s} {r.seconds:6.1f}s {c.group:10s} {c.name}"
                      + (f" | {r.exc_type}: {r.message[:110]}" if r.outcome not in ('clear', 'ran') and (r.message or r.exc_type) else '')
                      + (f" | {r.note[:120]}" if r.note and r.outcome not in ('clear', 'ran') else ''), flush=True)
        for p in Path(tmp).rglob('*'):  # undo chmod 555 so the folder can be removed
            if p.is_dir(): os.chmod(p, 0o755)
    secs = time.time() - t_start
    header = (f"# Bad inputs: what diffaug does with them\n\n`python benchmarks/bad_inputs.py` ({len(results)} cases) against diffaug "
              f"{getattr(diffaug, '__version__', '?')} imported from `{PKG_DIR}`; torch {torch.__version__}; "
              f"{secs:.0f} s in all on one thread. Outcomes are defined in the docstring of `benchmarks/bad_inputs.py`: "
              f"`clear` = diffaug raised the error itself with a message naming the problem; `crash` = raised inside another "
              f"library, by a builtin, or of a type nobody should see; `unclear` = diffaug's message misses what the problem is; "
              f"`silent` = no error on a wrong input; `late` = the right error only after training; `lost` = an input file "
              f"or the caller's object changed, or a failed write left files behind; `ran`/`failed` = an input that should "
              f"be accepted.")
    write_csv(out.with_suffix('.csv') if out.suffix != '.csv' else out, results)
    write_md(Path(str(out) + '.md') if out.suffix != '.md' else out, results, header)
    err = [r for r in results if r.expect == 'error']
    print(f"\n{sum(r.outcome == 'clear' for r in err)} of {len(err)} bad-input cases give a clear error; {secs:.0f} s; "
          f"wrote {out}.csv and {out}.md")
    return 0

if __name__ == '__main__':
    sys.exit(main())
