"""The machinery of the reliability contract (`tests/test_reliability.py`): how a bad-input case is run and judged.

A case calls diffaug's public API the way a demanding user would (a wrong argument, a damaged file, a failure injected
half-way through a write) and is judged by what happens. For a case that must fail (`expect='error'`):

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

A case whose input should be accepted (`expect='ok'`) is `ran` (no exception and its check passes) or `failed`.
`expect='either'` (converting or refusing are both fine): `ran` when it runs and its check passes, else as 'error'.
Cases with an injected failure (`injected=True`) are `clear` when the injected failure propagates and nothing is lost.
CLI cases call `diffaug.cli.main(argv)` with stdout/stderr captured: `clear` iff the exit code is 2, the output has
no 'Traceback', the error part (stderr without argparse's usage lines) is one line and holds the `want` groups; an
exception escaping `main` is a `crash` (a CLI user would see a traceback).
Whatever the outcome, a case is `lost` when an input file changed, a failed write left a half-written target or a
temporary file, or the caller's array / AnnData / module / training flag / requires_grad / global RNG changed.
`skipped`: the case cannot run here (chmod does not block root); `setup-error`: the test's own preparation failed.

The trained models the cases share are session-scoped pytest fixtures (defined in `test_reliability.py`), built on
first use in each test process: `fx(name)` fetches one, and its training counts neither as the case's work nor as a
move of the global RNGs. Every case writes into its own `tmp_path`.
"""
from __future__ import annotations
import contextlib, errno, hashlib, io, json, linecache, os, random, re, shutil, signal, tempfile, time, traceback, warnings
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np, torch
import diffaug

PKG_DIR = Path(diffaug.__file__).resolve().parent
CASE_TIMEOUT, LATE_S = 90, 10.
GROUPS = {
    'atomic': 'data loss and atomic writes (failures injected mid-write)',
    'checkpoint': 'checkpoint integrity (corrupted, truncated, empty, missing, mislabelled or foreign files)',
    'late': 'errors before the work (bad output paths) and `epochs` bounding every phase',
    'dtype': 'dtypes and layouts (float16, uint8, channels-last, other sizes, sparse, backed AnnData)',
    'args': 'argument types and ranges of every public function',
    'cli': 'the `diffaug` command',
    'caller': "the caller's arrays, AnnData, modules, training flags and global RNGs left as they were",
    'holdout': 'cases written by someone who did not write the fixes, across the whole public API',
    'batch': 'batch labels (`fit(x, batch=)`, `batch_key`, `--batch-key`) checked before any work; unseen batches',
}
PASS = {'error': ('clear',), 'ok': ('ran',), 'either': ('ran', 'clear')}

# ---------------------------------------------------------------------------------------------------------------------
# cases and the per-case state the helpers write into

@dataclass
class Case:
    group: str
    name: str
    fn: object
    expect: str = 'error'          # 'error', 'ok' or 'either'
    want: list = field(default_factory=list)
    check: object = None           # check(result) -> None/True (pass), False or a string (what is wrong)
    early: bool = False            # the error must come before any training
    injected: bool = False         # the failure is injected by the test
    cli: bool = False              # `fn` returns a CliResult
    fail_outcome: str = 'failed'   # outcome of an 'ok' case whose check fails ('silent' for epochs bounding)
    slow: bool = False             # takes more than ~2 s: run with --runslow
    @property
    def id(self): return f"{self.group}/{self.name}"
    def __repr__(self): return f"Case({self.id!r})"

def case(group, name, fn, expect='error', want=(), **kw) -> Case:
    "A case; each `want` entry is a string or a tuple of alternatives, all matched case-insensitively."
    return Case(group, name, fn, expect, [w if isinstance(w, tuple) else (w,) for w in want], **kw)

class Injected(Exception):
    "The failure the test injects."

class CaseTimeout(BaseException): pass
class Skip(Exception): pass
class FixtureError(Exception): pass

class _State:
    def reset(self, request=None, tmp=None):
        self.lost, self.fired, self.used_call, self.t_call, self.fits_call, self.ck = [], False, False, None, None, None
        self.request, self.tmp = request, tmp
ST = _State(); ST.reset()
FITS = [0]  # fits of fastai's Learner so far (the `fit_spy` fixture counts them)

@contextlib.contextmanager
def call():
    "Marks the call under test: its exceptions are the API's; the clock and the fit counter start here."
    ST.used_call, ST.t_call, ST.fits_call = True, time.perf_counter(), FITS[0]
    try: yield
    except BaseException as e:
        try: e._bad_inputs_api = True
        except Exception: pass
        raise

def api(f, *a, **k):
    "Call the API under test (marks the call)."
    with call(): return f(*a, **k)

def arg(name):
    "Alternatives that name a (short) argument in a message."
    d = name.replace('_', '-')
    return (f'`{name}`', f'{name}=', f' {name} ', f"'{name}'", f'"{name}"', f' {name},', f' {name}.', f' {name}:',
            f'({name}', f' {name})', f'--{d}')

# ---------------------------------------------------------------------------------------------------------------------
# fixtures, data and temporary folders

def _rng_state(): return torch.get_rng_state(), np.random.get_state(), random.getstate()
def _set_rng(s): torch.set_rng_state(s[0]); np.random.set_state(s[1]); random.setstate(s[2])

def fx(name):
    "The session fixture `name`: built on first use in this process, outside the case's clock, fit count and RNGs."
    f0, t0, rng = FITS[0], time.perf_counter(), _rng_state()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter('ignore')
            return ST.request.getfixturevalue(name)
    except Exception as e: raise FixtureError(f"fixture {name!r} failed: {type(e).__name__}: {e}") from e
    finally:
        FITS[0] = f0; _set_rng(rng)
        if ST.t_call is not None: ST.t_call += time.perf_counter() - t0

DA_FAST = dict(n_latent=4, epochs=(1, 1, 1), progress=False, gen=dict(steps=2))

def digits():
    "96 digit images (N, 1, 8, 8) in [-1, 1] and their labels."
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.from_numpy((d.images[:96] / 8 - 1).astype(np.float32)).unsqueeze(1)
    return x, torch.from_numpy(d.target[:96].astype(np.int64))

def wine():
    "60 rows x 13 features, float32."
    from sklearn.datasets import load_wine
    return np.ascontiguousarray(load_wine().data[::3][:60].astype(np.float32))

def new_diffaug(**over):
    from diffaug.contrastive import DiffAug
    return DiffAug(**dict(DA_FAST, **over))

def train_den(x, **kw):
    from diffaug.training import train_denoiser
    return train_denoiser(x, **dict(dict(epochs=1, progress=False), **kw))

def fit_cls(x, y, **kw):
    from diffaug.classifier import fit_classifier
    return fit_classifier(x, y, **dict(dict(epochs=1, progress=False), **kw))

def adata(x=None, sparse=False):
    "An AnnData of `x` (default: `wine()`) with a categorical obs column and an obsm 'X_pca'."
    import pandas as pd, anndata, scipy.sparse as spm
    x = wine() if x is None else x
    n = len(x)
    a = anndata.AnnData(spm.csr_matrix(x) if sparse else x.copy(),
                        obs=pd.DataFrame({'label': pd.Categorical([f'k{i % 3}' for i in range(n)])}, index=[f'c{i}' for i in range(n)]),
                        var=pd.DataFrame(index=[f'g{j}' for j in range(x.shape[1])]))
    a.obsm['X_pca'] = np.random.default_rng(0).normal(size=(n, 5)).astype(np.float32)
    return a

def tmpdir():
    "A fresh folder inside the case's own `tmp_path`."
    return Path(tempfile.mkdtemp(prefix='case-', dir=ST.tmp))

def copy_ck(name, d=None):
    "A copy of the pristine checkpoint fixture `name`; the first one of a case fills '{ck}' in its `want`."
    d = d or tmpdir(); dst = d / 'ck'
    shutil.copytree(fx(name), dst)
    if ST.ck is None: ST.ck = dst
    return dst

def h5copy(d=None, name='cells.h5ad', src='h5ad'):
    d = d or tmpdir(); p = d / name; shutil.copy(fx(src), p); return p

def afile(d=None):
    "A file named 'notafolder'."
    d = d or tmpdir(); f = d / 'notafolder'; f.write_text('a file'); return f

def ro_dir():
    "A folder chmod 555; skip the case when that does not block writes (running as root)."
    d = tmpdir() / 'readonly'; d.mkdir(); os.chmod(d, 0o555)
    try: (d / 'probe').write_bytes(b'x')
    except OSError: return d
    (d / 'probe').unlink(); os.chmod(d, 0o755)
    raise Skip('chmod 555 does not block writes here (running as root)')

# ---------------------------------------------------------------------------------------------------------------------
# integrity guards: what a case must leave as it was

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
    before, ok = _listing(folder), False
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
    import anndata, pandas as pd, scipy.sparse as sp
    from torch import nn
    if isinstance(o, torch.Tensor): return ('tensor', o.detach().clone(), o.dtype, o.requires_grad, str(o.device), o.is_leaf)
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
    raise TypeError(f"cannot snapshot {type(o).__name__}")

def _eq_tensor(a, b):
    if a.shape != b.shape or a.dtype != b.dtype: return False
    if a.is_floating_point() or a.is_complex(): return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return torch.equal(a, b)

def _diff(a, b, path='') -> list:
    import pandas as pd, scipy.sparse as sp
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
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"[:120]]

_SNAP_NAMES = {'tensor': ['', 'values', 'dtype', 'requires_grad', 'device', 'is_leaf'],
               'array': ['', 'values', 'dtype', 'writeable'],
               'module': ['', 'weights', 'training', 'requires_grad'],
               'adata': ['', 'X', 'shape', 'obs_names', 'var_names', 'obs', 'obsm', 'uns keys', 'layers keys', 'obsp keys']}

def _is_snap(x): return isinstance(x, tuple) and len(x) > 0 and isinstance(x[0], str) and x[0] in ('tensor', 'array', 'sparse', 'frame', 'module', 'adata')

def _describe(sa, sb):
    if sa[0] != sb[0] or len(sa) != len(sb): return ['type']
    names, out = _SNAP_NAMES.get(sa[0], []), []
    for i in range(1, len(sa)):
        nm = names[i] if i < len(names) else ''
        x, y = sa[i], sb[i]
        if _is_snap(x) and _is_snap(y): out += [f"{nm}{'.' if nm else ''}{e}" for e in _describe(x, y)]
        else: out += [f"{nm}{e}" for e in _diff(x, y)]
    return out

@contextlib.contextmanager
def keep(o, label, only_on_error=False):
    "The caller's object must be unchanged afterwards (values, dtype, training flags, requires_grad, keys)."
    s, failed = _snap(o), True
    try:
        yield
        failed = False
    finally:
        if failed or not only_on_error:
            d = _describe(s, _snap(o))
            if d: ST.lost.append(f"modified: {label}: {', '.join(d[:5])}")

@contextlib.contextmanager
def keep_rng(label='global RNG'):
    t, n, r = _rng_state()
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
_REAL_OPEN = open

@contextlib.contextmanager
def patched(obj, name, new):
    "Replace `obj.name` by `new` (or by `new(original)` when `new` is marked with `factory`), restored afterwards."
    old = vars(obj).get(name, _MISSING) if hasattr(obj, '__dict__') else _MISSING
    orig = getattr(obj, name)
    setattr(obj, name, new(orig) if getattr(new, '_factory', False) else new)
    try: yield orig
    finally:
        if old is _MISSING:
            try: delattr(obj, name)
            except AttributeError: setattr(obj, name, orig)
        else: setattr(obj, name, old)

def factory(f): f._factory = True; return f

def fail(how='error'):
    "Raise the injected failure: an `Injected` error, a KeyboardInterrupt ('kbd') or a full disk ('enospc')."
    ST.fired = True
    if how == 'kbd': raise KeyboardInterrupt('injected KeyboardInterrupt (test_reliability)')
    if how == 'enospc': raise OSError(errno.ENOSPC, 'No space left on device (injected by test_reliability)')
    raise Injected('injected failure (test_reliability)')

def truncate(path, frac=0.5):
    p = Path(path)
    if p.is_file(): b = p.read_bytes(); p.write_bytes(b[:int(len(b) * frac)])

@contextlib.contextmanager
def fail_torch_save(how='error'):
    "torch.save writes the first half of the file, then fails."
    @factory
    def mk(orig):
        def save(obj, f, *a, **k):
            buf = io.BytesIO(); orig(obj, buf, *a, **k); part = buf.getvalue()[:len(buf.getvalue()) // 2]
            if isinstance(f, (str, os.PathLike)):
                with _REAL_OPEN(f, 'wb') as fh: fh.write(part)
            else: f.write(part)
            fail(how)
        return save
    with patched(torch, 'save', mk): yield

@contextlib.contextmanager
def fail_json(how='error'):
    "Serialising the checkpoint's config.json fails (json.dumps / json.dump)."
    def dumps(*a, **k): fail(how)
    with patched(json, 'dumps', dumps), patched(json, 'dump', dumps): yield

@contextlib.contextmanager
def fail_write_h5ad(how='error'):
    "Writing an .h5ad (AnnData.write_h5ad, or embed_file's copy-and-add writer) writes the file, truncates it to half, then fails."
    import anndata, diffaug.tl
    @factory
    def mk(orig):
        def w(self, filename=None, *a, **k): orig(self, filename, *a, **k); truncate(filename); fail(how)
        return w
    @factory
    def mk_copy(orig):
        def w(src, dst, *a, **k): orig(src, dst, *a, **k); truncate(dst); fail(how)
        return w
    with patched(anndata.AnnData, 'write_h5ad', mk), patched(anndata.AnnData, 'write', mk), \
         patched(diffaug.tl, '_copy_with_added', mk_copy): yield

@contextlib.contextmanager
def fail_replace(folder):
    "os.replace / os.rename into `folder` fail (e.g. a crash between writing the temporary file and moving it)."
    folder = Path(folder).resolve()
    @factory
    def mk(orig):
        def rep(src, dst, *a, **k):
            if Path(dst).resolve().parent == folder: fail('error')
            return orig(src, dst, *a, **k)
        return rep
    with patched(os, 'replace', mk), patched(os, 'rename', mk): yield

@contextlib.contextmanager
def fail_savefig(how='error'):
    "Figure.savefig writes the file, truncates it to half, then fails."
    import matplotlib.figure
    @factory
    def mk(orig):
        def sf(self, fname, *a, **k):
            orig(self, fname, *a, **k)
            if isinstance(fname, (str, os.PathLike)): truncate(fname)
            fail(how)
        return sf
    with patched(matplotlib.figure.Figure, 'savefig', mk): yield

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
            fail(how)
        return _REAL_OPEN(file, mode, *a, **k)
    @factory
    def mk_text(orig):
        def wt(self, data, *a, **k):
            if inside(self):
                with _REAL_OPEN(self, 'wb') as fh: fh.write(b'PARTIAL')
                fail(how)
            return orig(self, data, *a, **k)
        return wt
    with patched(builtins, 'open', opener), patched(io, 'open', opener), \
         patched(pathlib.Path, 'write_text', mk_text), patched(pathlib.Path, 'write_bytes', mk_text): yield

# ---------------------------------------------------------------------------------------------------------------------
# the CLI

@dataclass
class CliResult:
    code: object
    out: str
    err: str
    path: object = None

def cli(argv):
    "Run `diffaug.cli.main(argv)` with its output captured; an exception escaping `main` propagates."
    import diffaug.cli
    o, e, code = io.StringIO(), io.StringIO(), None
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try: code = diffaug.cli.main([str(a) for a in argv])
        except SystemExit as ex: code = ex.code
    return CliResult(code, o.getvalue(), e.getvalue())

def error_lines(err:str) -> list:
    "stderr lines without argparse's usage block."
    out, in_usage = [], False
    for l in err.splitlines():
        if l.startswith('usage:'): in_usage = True; continue
        if in_usage and (l.startswith(' ') or not l.strip()): continue
        in_usage = False
        if l.strip(): out.append(l)
    return out

CLI_FAST = ['--epochs', '(1,1,1)', '--n-latent', '4', '--gen', 'steps=2', '--no-progress']

# ---------------------------------------------------------------------------------------------------------------------
# judging a case

NOBODY = (AttributeError, KeyError, IndexError, UnboundLocalError, NameError, ZeroDivisionError, AssertionError, RecursionError)

def _origin(exc):
    "File, line and whether the innermost frame raised it with a `raise` statement (not a builtin or operator)."
    tb, last = exc.__traceback__, None
    while tb is not None: last, tb = tb, tb.tb_next
    if last is None: return '', 0, False
    f, ln, by_raise = last.tb_frame.f_code.co_filename, last.tb_lineno, None
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
    try: return f"{Path(s).resolve().relative_to(PKG_DIR.parent)}:{ln}"
    except ValueError: pass
    m = re.search(r'python3\.\d+/(.*)$', s)
    return f"{m.group(1) if m else Path(s).name}:{ln}"

def _in_pkg(f):
    try: Path(f).resolve().relative_to(PKG_DIR); return True
    except (ValueError, OSError): return False

def _missing(msg, want):
    "The `want` groups the message lacks."
    m = ' ' + msg.lower() + ' '
    return [w for w in want if not any(alt.lower() in m for alt in w)]

def _lacks(missing): return f"message lacks {' and '.join('/'.join(m) for m in missing)}"[:300]

def _msg(exc):
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str): return exc.args[0]
    return str(exc)

@dataclass
class Result:
    outcome: str; seconds: float; exc_type: str = ''; message: str = ''; where: str = ''; fits: int = 0; note: str = ''
    def __str__(self):
        s = self.outcome + (f" ({self.exc_type}" + (f" at {self.where}" if self.where else '') + ')' if self.exc_type else '')
        return s + (f": {self.message}" if self.message else '') + (f" [{self.note}]" if self.note else '')

def _check(c, res):
    "None when the case's check passes, else what is wrong."
    if c.check is None: return None
    try:
        r = c.check(res)
        return None if r is None or r is True else ('check failed' if r is False else str(r))
    except Exception as e: return f"check raised {type(e).__name__}: {e}"

def _short(o):
    if isinstance(o, (torch.Tensor, np.ndarray)): return f"returned {type(o).__name__} of shape {tuple(o.shape)}"
    return ('returned ' + repr(o))[:200] if o is not None else 'returned None'

def classify(c:Case, want, res, exc, elapsed, fits):
    "(outcome, exception type, message, where, notes)."
    late = elapsed > LATE_S or (c.early and fits > 0)
    when = [f"after {fits} training fit(s)" if fits else f"after {elapsed:.1f} s"] if late else []
    if exc is not None:
        f, ln, by_raise = _origin(exc)
        etype, where, msg = type(exc).__name__, _where(f, ln), _msg(exc)
        if isinstance(exc, (CaseTimeout, Skip)): return ('timeout' if isinstance(exc, CaseTimeout) else 'skipped'), etype, msg, where, []
        if isinstance(exc, FixtureError) or (ST.used_call and not getattr(exc, '_bad_inputs_api', False)):
            return 'setup-error', etype, msg + ' | ' + ''.join(traceback.format_exception(exc)[-3:])[-600:], where, []
        if c.injected:
            if isinstance(exc, (Injected, KeyboardInterrupt)) or (isinstance(exc, OSError) and 'injected' in str(exc)):
                return 'clear', etype, msg, where, []
            note = ['the injected failure was replaced by another exception']
        else: note = []
        if c.expect == 'ok': return 'failed', etype, msg, where, note + (['exception escaped main()'] if c.cli else [])
        if c.cli: return 'crash', etype, msg, where, note + ['exception escaped main(): the user sees a traceback']
        deliberate = _in_pkg(f) and by_raise
        if not deliberate or isinstance(exc, NOBODY):
            if deliberate: note.append(f'deliberate {etype} raised by diffaug (a type nobody should see)')
            elif _in_pkg(f): note.append('raised by a builtin/operator on a diffaug line that is not a raise')
            return 'crash', etype, msg, where, note
        missing = _missing(msg, want)
        if missing: return 'unclear', etype, msg, where, note + [_lacks(missing)]
        return ('late' if late else 'clear'), etype, msg, where, note + when
    if c.cli:
        r, where = res, 'diffaug.cli.main'
        if c.expect in ('ok', 'either') and r.code in (0, None):
            chk = _check(c, res)
            if chk is None: return 'ran', '', '', where, []
            return (c.fail_outcome if c.expect == 'ok' else 'silent'), 'check', chk, where, []
        if r.code in (0, None): return 'silent', '', (r.out + r.err)[-300:], where, []
        lines = error_lines(r.err)
        msg, etype = '\n'.join(lines) or r.err or r.out, f'exit {r.code}'
        if c.expect == 'ok': return 'failed', etype, msg, where, []
        if 'Traceback' in r.err or 'Traceback' in r.out: return 'crash', etype, msg, where, ['traceback printed']
        if r.code != 2: return 'unclear', etype, msg, where, [f'exit code {r.code}, not 2']
        if len(lines) != 1: return 'unclear', etype, msg, where, [f'{len(lines)} lines of error text, not one']
        missing = _missing(msg, want)
        if missing: return 'unclear', etype, msg, where, [_lacks(missing)]
        return ('late' if late else 'clear'), etype, msg, where, when
    if c.injected and not ST.fired: return 'skipped', '', 'the injection point was never reached (the code writes another way)', '', []
    if c.expect in ('ok', 'either'):
        chk = _check(c, res)
        if chk is None: return 'ran', '', '', '', []
        return (c.fail_outcome if c.expect == 'ok' else 'silent'), 'check', chk, '', []
    return 'silent', '', _short(res), '', ['the injected failure was swallowed'] if c.injected else []

def _on_alarm(signum, frame): raise CaseTimeout(f'no result after {CASE_TIMEOUT} s')

def run_case(c:Case, request, tmp_path) -> Result:
    "Run one case in `tmp_path`, with the fixtures of `request`, and judge it."
    ST.reset(request, tmp_path)
    t0, f0 = time.perf_counter(), FITS[0]
    res = exc = None
    old = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            signal.alarm(CASE_TIMEOUT)
            try: res = c.fn()
            finally: signal.alarm(0)
    except KeyboardInterrupt as e:
        if not ST.fired: raise  # a real Ctrl-C stops the run
        exc = e
    except BaseException as e: exc = e  # SystemExit and injected failures included
    finally:
        signal.signal(signal.SIGALRM, old)
        for p in Path(tmp_path).rglob('*'):  # undo chmod 555 so the folder can be removed
            if p.is_dir() and not p.is_symlink(): os.chmod(p, 0o755)
    end = time.perf_counter()
    elapsed = end - (ST.t_call if ST.t_call is not None else t0)
    fits = FITS[0] - (ST.fits_call if ST.fits_call is not None else f0)
    want = c.want if ST.ck is None else \
        [tuple(dict.fromkeys(a.replace('{ck}', v) for a in w for v in (str(ST.ck), str(Path(ST.ck).resolve())))) for w in c.want]
    try: outcome, etype, msg, where, note = classify(c, want, res, exc, elapsed, fits)
    except Exception as e: outcome, etype, msg, where, note = 'setup-error', type(e).__name__, f'classification failed: {e}', '', []
    if c.early and fits > 0 and outcome in ('crash', 'unclear'): note = note + [f"after {fits} training fit(s): the check came too late"]
    if ST.lost and outcome not in ('skipped', 'setup-error'): note, outcome = ST.lost + note + [f"was {outcome}"], 'lost'
    if outcome not in ('clear', 'ran') and want: note = note + ['want: ' + ' & '.join('|'.join(w) for w in want)]
    return Result(outcome, round(end - t0, 2), etype, ' '.join(str(msg).split())[:400], where, fits, '; '.join(note)[:600])
