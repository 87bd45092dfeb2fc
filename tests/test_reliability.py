"""The reliability contract, case by case: bad input gets a clear error before any work, and nothing a user gave is
modified or lost, whatever fails.

Each case calls the public API the way a demanding user would and is judged by `_bad_inputs.run_case` (outcomes in
the docstring of `tests/_bad_inputs.py`): a case that must fail passes when its outcome is `clear` (diffaug raised the
error itself, before any training, and the message names the problem), a case that must run passes when it `ran`
(its check included), and any case fails when it changed or lost something the user gave. The cases are grouped by
the class of bad input, one function per group below; a case that takes more than about 2 s is marked `slow`.

    python -m pytest tests/test_reliability.py                  # the fast cases
    python -m pytest tests/test_reliability.py --runslow        # all cases (`-m slow`: only the slow ones)
    python -m pytest tests/test_reliability.py -k checkpoint    # one group (or any part of a case's name)
"""
import ast, copy, json, os, pickle
from pathlib import Path
import numpy as np, pandas as pd, torch, anndata, pytest
import scipy.sparse as spm
from diffaug import tl, io as dio, corruptions as dcor, rows as drows, datasets as dsets, report, metrics as dmet, guidance as dgui, augment as daug, explore as dexp
from diffaug.cli import main as cli_main
from diffaug.contrastive import DiffAug
from diffaug.training import train_denoiser
from diffaug.denoiser import Denoiser
from diffaug.classifier import fit_classifier, predict_proba, save_classifier, load_classifier
from diffaug.semisup import TemporalConsistencyCB
from diffaug.schedule import VPSchedule
from diffaug.sampling import sample_ddim, sample_ddpm
import _bad_inputs as H
from _bad_inputs import (case, fx, api, call, arg, cli, keep, keep_files, keep_rng, no_debris, patched, fail, tmpdir,
                         copy_ck, h5copy, afile, ro_dir, truncate, DA_FAST, CLI_FAST)

# ---------------------------------------------------------------------------------------------------------------------
# shorthands shared by the groups

def X(): return fx('digits')[0]             # 96 digit images (N, 1, 8, 8) in [-1, 1]
def Y(): return fx('digits')[1]             # their labels
def XS(): return fx('digits')[0][:16].clone()
def W(): return fx('wine').copy()           # 60 x 13 float32
T = arg('t')
def fitc(x, y, **kw): return fit_classifier(x, y, **dict(dict(epochs=1, progress=False), **kw))
def tden(x, **kw): return train_denoiser(x, **dict(dict(epochs=1, progress=False), **kw))
def dfit(x, **kw): return DiffAug(**dict(DA_FAST, **kw)).fit(x)  # the case's own arguments go in as given

def den_train_mode():
    "A copy of the shared denoiser in train mode with requires_grad on: a caller's module that must stay so."
    d = copy.deepcopy(fx('den')); d.train(); d.requires_grad_(True); return d

def probs_ok(n, like=None, eps=None):
    "Check: n finite rows of probabilities (and, with `like`, within `eps` of predict_proba on float32 `like()`)."
    def chk(p):
        p = torch.as_tensor(p)
        if not (p.shape[0] == n and torch.isfinite(p).all() and torch.allclose(p.sum(1), torch.ones(n), atol=1e-3)):
            return f"bad probabilities {tuple(p.shape)}"
        if like is not None:
            d = float((p - predict_proba(fx('plain'), like())).abs().max())
            if d > eps: return f"differs from the float32 result by {d:.2g} (> {eps})"
    return chk

def phases_ok(limit, exact=False):
    "Check: no training phase of a fitted DiffAug ran more than `limit` epochs (with `exact`: every phase ran `limit`)."
    def chk(m):
        bad = []
        e = getattr(m, 'epochs_', None)
        if e is not None and any(int(v) > limit for v in e): bad.append(f"epochs_ = {tuple(e)}")
        if exact and tuple(e) != (limit,) * 3: bad.append(f"epochs_ = {tuple(e)}, not {(limit,) * 3}")
        h = getattr(m, 'history', None)
        if h is not None and len(h):
            per = h.groupby(['phase', 'round'])['epoch'].nunique()
            bad += [f"phase {k} ran {v} epochs" for k, v in per.items() if v > limit]
        gh = getattr(getattr(m, 'generator', None), 'history', None)
        if gh is not None and len(gh) > limit: bad.append(f"generator (M phase) ran {len(gh)} epochs")
        return '; '.join(bad) or None
    return chk

def emb_ok(a, key='X_diffaug'):
    "Check: `a` holds a finite embedding in obsm[key]."
    return None if a is not None and key in a.obsm and np.isfinite(np.asarray(a.obsm[key])).all() else f'no finite obsm[{key!r}]'

def epochs_run_ok(a, key='X_diffaug'):
    e = a.uns[key]['params'].get('epochs_run')
    return None if e is not None and all(int(v) <= 2 for v in np.ravel(e)) else f"epochs_run = {e}"

def text_h5ad(d): q = d / 'text.h5ad'; q.write_text('gene,cell\n1,2\n'); return q
def empty_h5ad(d): q = d / 'empty.h5ad'; q.write_bytes(b''); return q
def dir_h5ad(d): q = d / 'res.h5ad'; q.mkdir(); return q
def dir_plain(d): q = d / 'results'; q.mkdir(); return q
def model_of(kind):
    "The shared trained object of a kind: 'DiffAug', 'Denoiser' or 'classifier'."
    return {'DiffAug': lambda: fx('dam'), 'Denoiser': lambda: fx('den'), 'classifier': lambda: fx('plain')}[kind]()
def saver(kind, obj): return (lambda p: save_classifier(obj, p)) if kind == 'classifier' else obj.save
LOADERS = {'DiffAug': lambda p: DiffAug.load(p), 'Denoiser': lambda p: Denoiser.load(p), 'classifier': lambda p: load_classifier(p)}
CK_OF = {'DiffAug': 'ck_diffaug', 'Denoiser': 'ck_denoiser', 'classifier': 'ck_classifier'}
KIND_OF = {'DiffAug': 'DiffAug', 'Denoiser': 'Denoiser', 'classifier': 'DiffusionClassifier'}

# ---------------------------------------------------------------------------------------------------------------------
# 1. atomic: failures injected half-way through a write leave the old file (or no file), never a half-written one

def atomic_cases():
    G = 'atomic'
    def embed_same(how):
        def fn():
            p = h5copy(); d = p.parent
            with keep_files(p), no_debris(d), H.fail_write_h5ad(how): api(tl.embed_file, p, p, **DA_FAST)
        return fn
    def embed_same_replace():
        p = h5copy(); d = p.parent
        with keep_files(p), no_debris(d), H.fail_replace(d): api(tl.embed_file, p, p, **DA_FAST)
    def embed_new(how):
        def fn():
            p = h5copy(); d = p.parent
            with keep_files(p), no_debris(d), H.fail_write_h5ad(how): api(tl.embed_file, p, d / 'new.h5ad', **DA_FAST)
        return fn
    def embed_old_out():
        p = h5copy(); d = p.parent; out = h5copy(d, 'old_out.h5ad')
        with keep_files(p), keep_files(out, label='previous output'), no_debris(d), H.fail_write_h5ad('enospc'):
            api(tl.embed_file, p, out, **DA_FAST)
    def embed_same_spelled():
        d = tmpdir(); (d / 'sub').mkdir(); p = h5copy(d)
        with keep_files(p), no_debris(d), H.fail_write_h5ad('error'): api(tl.embed_file, p, d / 'sub' / '..' / p.name, **DA_FAST)
    def embed_train_fails():
        p = h5copy(); d = p.parent
        def boom(self, *a, **k): fail('error')
        with keep_files(p), no_debris(d), patched(DiffAug, 'fit', boom): api(tl.embed_file, p, p, **DA_FAST)
    def save_over(kind, inj, how='error'):
        def fn():
            ck = copy_ck(CK_OF[kind])
            obj = {'DiffAug': lambda: fx('dam2'), 'Denoiser': lambda: fx('den2'), 'classifier': lambda: fx('plain2')}[kind]()
            ctx = H.fail_torch_save(how) if inj == 'weights' else H.fail_json(how)
            try:
                with keep_files(ck, label='previous checkpoint'), no_debris(ck.parent), ctx: api(saver(kind, obj), ck)
            finally:  # the old checkpoint must still load
                try: LOADERS[kind](ck)
                except Exception as e: H.ST.lost.append(f"previous checkpoint no longer loads: {type(e).__name__}: {e}"[:200])
        return fn
    def save_fresh(kind, inj):
        def fn():
            d = tmpdir(); save = saver(kind, model_of(kind))
            with no_debris(d), (H.fail_torch_save() if inj == 'weights' else H.fail_json()): api(save, d / 'new_ck')
        return fn
    def fig():
        import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
        f, ax = plt.subplots(figsize=(2, 2)); ax.plot([0, 1]); return f
    def savefig_over(how):
        def fn():
            d = tmpdir(); p = d / 'figure.png'; fig().savefig(p); f = fig()
            with keep_files(p, label='previous figure'), no_debris(d), H.fail_savefig(how): api(report.savefig, f, p)
        return fn
    def savefig_new():
        d = tmpdir()
        with no_debris(d), H.fail_savefig('kbd'): api(report.savefig, fig(), d / 'new.png')
    def text_over(how):
        def fn():
            d = tmpdir(); p = d / 'report.md'; p.write_text('# old report\n' + report.md_table(pd.DataFrame({'method': ['a'], 'x': [50.]})))
            with keep_files(p, label='previous report'), no_debris(d), H.fail_text_write(d, how):
                api(dio.write_text_atomic, p, '# new report\n' + report.md_table(pd.DataFrame({'method': ['b'], 'x': [70.]})))
        return fn
    def ck_json_fresh():
        d = tmpdir()
        with no_debris(d): api(dio.save_checkpoint, d / 'ck', 'Thing', {'fn': object()}, {'w': torch.zeros(3)})
    def ck_json_over():
        d = tmpdir(); ck = d / 'ck'; dio.save_checkpoint(ck, 'Thing', {'a': 1}, {'w': torch.zeros(3)})
        with keep_files(ck, label='previous checkpoint'), no_debris(d):
            api(dio.save_checkpoint, ck, 'Thing', {'fn': object()}, {'w': torch.ones(3)})
    return [
        case(G, 'embed_file in place (out == input): write_h5ad fails half-way', embed_same('error'), injected=True),
        case(G, 'embed_file in place: KeyboardInterrupt half-way through write_h5ad', embed_same('kbd'), injected=True),
        case(G, 'embed_file in place: the final rename fails', embed_same_replace, injected=True),
        case(G, 'embed_file to a new file: KeyboardInterrupt half-way (nothing half-written appears)', embed_new('kbd'), injected=True),
        case(G, 'embed_file over an earlier output: disk full half-way', embed_old_out, injected=True),
        case(G, 'embed_file in place via another spelling (sub/../x.h5ad): write fails', embed_same_spelled, injected=True),
        case(G, 'embed_file in place: training fails', embed_train_fails, injected=True),
        case(G, 'DiffAug.save over a checkpoint: torch.save fails half-way', save_over('DiffAug', 'weights'), injected=True),
        case(G, 'DiffAug.save over a checkpoint: KeyboardInterrupt in torch.save', save_over('DiffAug', 'weights', 'kbd'), injected=True),
        case(G, 'DiffAug.save over a checkpoint: writing config.json fails', save_over('DiffAug', 'config'), injected=True),
        case(G, 'Denoiser.save over a checkpoint: disk full half-way through torch.save', save_over('Denoiser', 'weights', 'enospc'), injected=True),
        case(G, 'Denoiser.save over a checkpoint: KeyboardInterrupt in torch.save', save_over('Denoiser', 'weights', 'kbd'), injected=True),
        case(G, 'Denoiser.save over a checkpoint: writing config.json fails', save_over('Denoiser', 'config'), injected=True),
        case(G, 'save_classifier over a checkpoint: torch.save fails half-way', save_over('classifier', 'weights'), injected=True),
        case(G, 'save_classifier over a checkpoint: writing config.json fails', save_over('classifier', 'config'), injected=True),
        case(G, 'Denoiser.save to a new folder: config.json fails (no half checkpoint may stay)', save_fresh('Denoiser', 'config'), injected=True),
        case(G, 'DiffAug.save to a new folder: torch.save fails half-way', save_fresh('DiffAug', 'weights'), injected=True),
        case(G, 'save_classifier to a new folder: config.json fails', save_fresh('classifier', 'config'), injected=True),
        case(G, 'report.savefig over an existing PNG: savefig fails half-way', savefig_over('error'), injected=True),
        case(G, 'report.savefig over an existing PNG: KeyboardInterrupt half-way', savefig_over('kbd'), injected=True),
        case(G, 'report.savefig to a new PNG: KeyboardInterrupt half-way', savefig_new, injected=True),
        case(G, 'io.write_text_atomic over report.md (md table): the write fails half-way', text_over('error'), injected=True),
        case(G, 'io.write_text_atomic over report.md: KeyboardInterrupt half-way', text_over('kbd'), injected=True),
        case(G, 'io.save_checkpoint with a config that is not JSON (new folder): no half checkpoint', ck_json_fresh, want=['config', 'JSON']),
        case(G, 'io.save_checkpoint with a non-JSON config over a checkpoint: old one kept', ck_json_over, want=['config', 'JSON']),
    ]

# ---------------------------------------------------------------------------------------------------------------------
# 2. checkpoint: damaged, missing, mislabelled or foreign checkpoint files are refused with their path

def flip(p, n=16):
    "Flip `n` bytes in the middle of the file `p`."
    b = bytearray(p.read_bytes()); m = len(b) // 2
    for i in range(m, m + n): b[i] ^= 0xFF
    p.write_bytes(bytes(b))

def cfg_edit(f):
    "A corruption that rewrites config.json as `f(its JSON)`."
    def e(ck):
        m = json.loads((ck / 'config.json').read_text())
        (ck / 'config.json').write_text(json.dumps(f(m)))
    return e

def checkpoint_cases():
    G = 'checkpoint'
    OTHER = {'DiffAug': 'Denoiser', 'Denoiser': 'DiffAug', 'DiffusionClassifier': 'Denoiser'}
    corruptions = [
        ('weights.pt with 16 bytes flipped in the middle', lambda ck: flip(ck / 'weights.pt'), 'weights'),
        ('weights.pt with one byte flipped', lambda ck: flip(ck / 'weights.pt', 1), 'checksum'),
        ('weights.pt truncated to half', lambda ck: truncate(ck / 'weights.pt'), 'weights'),
        ('weights.pt empty', lambda ck: (ck / 'weights.pt').write_bytes(b''), 'weights'),
        ('weights.pt missing', lambda ck: (ck / 'weights.pt').unlink(), 'weights'),
        ('config.json truncated', lambda ck: truncate(ck / 'config.json'), 'config'),
        ('config.json empty', lambda ck: (ck / 'config.json').write_text(''), 'config'),
        ('config.json a JSON list', lambda ck: (ck / 'config.json').write_text('[1, 2, 3]'), 'config'),
        ('config.json a JSON number', lambda ck: (ck / 'config.json').write_text('7'), 'config'),
        ('config.json without its "config" entry', cfg_edit(lambda m: {k: v for k, v in m.items() if k != 'config'}), 'config'),
        ('config.json of another kind', None, 'kind'),
        ('config.json from a future diffaug (99.0.0)', cfg_edit(lambda m: dict(m, diffaug_version='99.0.0')), 'version'),
        ('the weights.pt file given instead of the folder', None, 'file'),
    ]
    loaders = [('DiffAug.load', 'ck_diffaug', 'DiffAug', LOADERS['DiffAug']),
               ('Denoiser.load', 'ck_denoiser', 'Denoiser', LOADERS['Denoiser']),
               ('Denoiser.load_weights', 'ck_denoiser', 'Denoiser', None),
               ('load_classifier', 'ck_classifier', 'DiffusionClassifier', LOADERS['classifier'])]
    cases = []
    for lname, fxname, kind, loader in loaders:
        for cname, corrupt, what in corruptions:
            if what == 'file' and lname != 'DiffAug.load': continue
            if what == 'checksum' and lname not in ('Denoiser.load', 'Denoiser.load_weights'): continue
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
            want = {'weights': [('weights.pt',), ('{ck}',)], 'checksum': [('{ck}/weights.pt',), ('does not match the checksum',)],
                    'config': [('config.json',), ('{ck}',)], 'kind': [('{ck}',), (OTHER[kind],)],
                    'version': [('{ck}',), ('99.0',)], 'file': [('{ck}/weights.pt',)]}[what]
            cases.append(case(G, f'{lname}: {cname}', fn, want=want))

    def sha_recorded():
        ck = copy_ck('ck_denoiser')
        return json.loads((ck / 'config.json').read_text()).get('weights_sha256'), H._sha(ck / 'weights.pt')
    def repaired():
        ck = copy_ck('ck_denoiser'); good = (ck / 'weights.pt').read_bytes(); truncate(ck / 'weights.pt')
        try: Denoiser.load(ck)
        except dio.CheckpointError: pass
        (ck / 'weights.pt').write_bytes(good)
        return api(Denoiser.load, ck)
    def load_weights_other_arch():
        ck = copy_ck('ck_denoiser'); den = H.train_den(fx('x16')[0])
        with keep(den, 'the denoiser load_weights was called on', only_on_error=True): api(den.load_weights, ck)
    def denoiser_as_classifier():
        ck = copy_ck('ck_denoiser')
        with keep_files(ck): api(load_classifier, ck)
    def diffaug_without(edit):
        def fn():
            ck = copy_ck('ck_diffaug'); cfg_edit(edit)(ck)
            with keep_files(ck): return api(DiffAug.load, ck)
        return fn
    def drop_settings_generator(m): m['config']['settings'].pop('gen'); return m
    def drop_generator(m): m['config'].pop('generator'); return m
    def null_generator(m): m['config']['generator'] = None; return m
    def save_into_other(kind, other):
        def fn():
            ck = copy_ck(CK_OF[other])
            with keep_files(ck, label=f'the {other} checkpoint'): api(saver(kind, model_of(kind)), ck)
        return fn
    def save_over_same(kind):
        def fn():
            ck = copy_ck(CK_OF[kind])
            with no_debris(ck.parent, target=ck): api(saver(kind, model_of(kind)), ck)
            return LOADERS[kind](ck)
        return fn
    def save_over_foreign_config():
        d = tmpdir(); (d / 'config.json').write_text(json.dumps({'model_type': 'bert', 'hidden_size': 8}))
        with keep_files(d / 'config.json', label="another tool's config.json"): api(fx('den').save, d)
    return cases + [
        case(G, 'Denoiser.save records the SHA-256 of weights.pt in config.json', sha_recorded, expect='ok',
             check=lambda r: None if r[0] == r[1] else f"config.json says {r[0]}, the file hashes to {r[1]}"),
        case(G, 'Denoiser.load of a damaged checkpoint repaired by copying weights.pt back (valid)', repaired, expect='ok',
             check=lambda d: None if isinstance(d, Denoiser) else f"returned {type(d).__name__}"),
        case(G, 'Denoiser.load_weights from a checkpoint of another architecture', load_weights_other_arch,
             want=[('config', 'shape', 'architecture')]),
        case(G, 'DiffAug.load of a folder that does not exist', lambda: api(DiffAug.load, tmpdir() / 'no_such_checkpoint'),
             want=['no_such_checkpoint']),
        case(G, 'load_classifier of a Denoiser checkpoint', denoiser_as_classifier, want=['{ck}', "'Denoiser'"]),
        case(G, 'DiffAug.load: config.json without its settings.gen (generator) section', diffaug_without(drop_settings_generator),
             want=['{ck}/config.json', 'generator']),
        case(G, 'DiffAug.load: config.json without its generator section', diffaug_without(drop_generator),
             want=['{ck}/config.json', 'generator']),
        case(G, "DiffAug.load: config.json of an augment='diffaug' model with a null generator section", diffaug_without(null_generator),
             want=['{ck}/config.json', 'generator']),
        case(G, 'DiffAug.save into a folder holding a Denoiser checkpoint', save_into_other('DiffAug', 'Denoiser'),
             want=['{ck}', "'Denoiser'", ('another folder', 'delete')]),
        case(G, 'Denoiser.save into a folder holding a DiffAug checkpoint', save_into_other('Denoiser', 'DiffAug'),
             want=['{ck}', "'DiffAug'", ('another folder', 'delete')]),
        case(G, 'save_classifier into a folder holding a Denoiser checkpoint', save_into_other('classifier', 'Denoiser'),
             want=['{ck}', "'Denoiser'", ('another folder', 'delete')]),
        case(G, "Denoiser.save into a folder holding another tool's config.json", save_over_foreign_config,
             want=['config.json', ('another folder', 'delete')]),
        case(G, 'Denoiser.save over a Denoiser checkpoint (same kind: replaced)', save_over_same('Denoiser'), expect='ok'),
        case(G, 'DiffAug.save over a DiffAug checkpoint (same kind: replaced)', save_over_same('DiffAug'), expect='ok'),
    ]

# ---------------------------------------------------------------------------------------------------------------------
# 3. late: an output path that cannot be written is refused before any training; `epochs` bounds every phase

def late_cases():
    G = 'late'
    def ef(out_of, **kw):
        def fn():
            p = h5copy(); out = out_of(p.parent)
            with keep_files(p): return api(tl.embed_file, p, out, **dict(DA_FAST, **kw))
        return fn
    def cli_embed_out(out_of):
        def fn():
            p = h5copy(); out = out_of(p.parent)
            with keep_files(p), call(): return cli(['embed', p, '--out', out, *CLI_FAST])
        return fn
    def demo_out(out_of):
        def fn():
            out = out_of(tmpdir())
            with call(): return cli(['demo', '--quick', '--parts', 'diffusion', '--no-progress', '--out', out])
        return fn
    def save_under_file(kind):
        def fn():
            obj = model_of(kind)
            return api(saver(kind, obj), afile() / 'ck')
        return fn
    def embed_epochs():
        a = H.adata(); api(tl.embed, a, **dict(DA_FAST, epochs=2)); return a
    def cli_epochs():
        p = h5copy(); out = p.parent / 'out.h5ad'
        with call(): r = cli(['embed', p, '--out', out, '--epochs', '2', '--n-latent', '4', '--no-progress', '--gen', 'steps=2'])
        r.path = out; return r
    proc = lambda d: Path('/proc/diffaug-bad-inputs.h5ad')
    return [
        case(G, 'embed_file: out whose parent is a file', ef(lambda d: afile(d) / 'out.h5ad'), want=['notafolder', 'is a file, not a folder'], early=True),
        case(G, 'embed_file: out under /proc', ef(proc), want=['/proc', 'cannot write into the folder'], early=True),
        case(G, 'embed_file: out in a read-only folder', ef(lambda d: ro_dir() / 'out.h5ad'), want=['readonly'], early=True),
        case(G, 'embed_file: out with a .csv suffix', ef(lambda d: d / 'out.csv'), want=['out.csv', 'must be a .h5ad file'], early=True),
        case(G, 'embed_file: out is an existing folder named res.h5ad', ef(dir_h5ad), want=['res.h5ad'], early=True),
        case(G, 'embed_file: out is an existing folder', ef(dir_plain), want=['results', 'is a folder'], early=True),
        case(G, 'embed_file: out in a folder that does not exist', ef(lambda d: d / 'nope' / 'out.h5ad'), want=['nope', 'does not exist'], early=True),
        case(G, "embed_file(device='cuda:7'): no such device", ef(lambda d: d / 'out.h5ad', device='cuda:7'), want=['cuda:7'], early=True),
        case(G, 'CLI embed: --out whose parent is a file', cli_embed_out(lambda d: afile(d) / 'out.h5ad'),
             want=['notafolder', 'is a file, not a folder'], early=True, cli=True),
        case(G, 'CLI embed: --out under /proc', cli_embed_out(proc), want=['/proc'], early=True, cli=True),
        case(G, 'CLI embed: --out an existing folder named res.h5ad', cli_embed_out(dir_h5ad), want=['res.h5ad'], early=True, cli=True),
        case(G, 'CLI embed: --out in a read-only folder', cli_embed_out(lambda d: ro_dir() / 'out.h5ad'), want=['readonly'], early=True, cli=True),
        case(G, 'CLI embed: --out with a .csv suffix', cli_embed_out(lambda d: d / 'out.csv'), want=['out.csv'], early=True, cli=True),
        case(G, 'CLI demo --quick: --out is an existing file', demo_out(lambda d: afile(d)), want=['notafolder'], early=True, cli=True),
        case(G, 'CLI demo --quick: --out under a file', demo_out(lambda d: afile(d) / 'demo'), want=['notafolder'], early=True, cli=True),
        case(G, 'CLI demo --quick: --out under /proc', demo_out(lambda d: Path('/proc/diffaug-demo')), want=['/proc'], early=True, cli=True),
        case(G, 'CLI demo --quick: --out in a read-only folder', demo_out(lambda d: ro_dir() / 'demo'), want=['readonly'], early=True, cli=True),
        case(G, 'DiffAug.save to a path under a file', save_under_file('DiffAug'), want=['notafolder', 'is a file'], early=True),
        case(G, 'Denoiser.save to a path under a file', save_under_file('Denoiser'), want=['notafolder'], early=True),
        case(G, 'save_classifier to a path under a file', save_under_file('classifier'), want=['notafolder'], early=True),
        case(G, 'DiffAug(epochs=2).fit: no phase may run more than 2 epochs', lambda: api(dfit, W(), epochs=2), expect='ok',
             check=phases_ok(2), fail_outcome='silent'),
        case(G, 'DiffAug(epochs=2) with the default generator settings: every phase, M included, runs exactly 2 epochs',
             lambda: api(lambda: DiffAug(epochs=2, n_latent=4, progress=False).fit(W())), expect='ok', check=phases_ok(2, exact=True),
             fail_outcome='silent'),
        case(G, "DiffAug(epochs=2, augment='knnmix').fit: no phase over 2 epochs", lambda: api(dfit, W(), epochs=2, augment='knnmix'),
             expect='ok', check=phases_ok(2), fail_outcome='silent'),
        case(G, 'tl.embed(epochs=2): no phase over 2 epochs (uns params epochs_run)', embed_epochs, expect='ok', check=epochs_run_ok,
             fail_outcome='silent'),
        case(G, 'CLI embed --epochs 2: no phase over 2 epochs', cli_epochs, expect='ok', cli=True,
             check=lambda r: epochs_run_ok(anndata.read_h5ad(r.path)), fail_outcome='silent'),
        case(G, 'train_denoiser(epochs=1): exactly 1 epoch', lambda: api(tden, X()), expect='ok',
             check=lambda d: None if len(d.history) == 1 else f"history has {len(d.history)} epochs"),
    ]

# ---------------------------------------------------------------------------------------------------------------------
# 4. dtype: float images of any precision are converted; other dtypes, layouts and sizes are refused with the fix

def imgs(kind):
    "The 96 digit images as `kind`."
    x = X()
    return {'float64': lambda: x.double().numpy(), 'float16': lambda: x.half(), 'bfloat16': lambda: x.bfloat16(),
            'uint8': lambda: ((x + 1) * 127.5).round().to(torch.uint8), 'bool': lambda: x.numpy().astype(np.float64) > 0,
            'object': lambda: x.numpy().astype(object), 'complex': lambda: x.to(torch.complex64)}[kind]()

def dtype_cases():
    G = 'dtype'
    is_learner = lambda r: None if hasattr(r, 'model') else f"returned {type(r).__name__}"
    den_ok = lambda d: None if isinstance(d, Denoiser) else f"returned {type(d).__name__}"
    DT = ('float16', 'half', 'bfloat16', 'dtype')
    U8 = ('[-1, 1]', '-1..1', '255', 'uint8')
    CH = ('channel',)
    pp = lambda x, **kw: (lambda: api(predict_proba, fx('plain'), x(), **kw))
    def backed(copy_):
        def fn():
            p = h5copy(src='h5ad_sparse'); a = anndata.read_h5ad(p, backed='r')
            try:
                with keep_files(p): r = api(tl.embed, a, copy=copy_, **DA_FAST)
                return r if copy_ else a
            finally: a.file.close()
        return fn
    def backed_no_memory():
        p = h5copy(); a = anndata.read_h5ad(p, backed='r')
        def no_room(self, *a_, **k): raise MemoryError()
        try:
            with keep_files(p), patched(anndata.AnnData, 'to_memory', no_room): api(tl.embed, a, copy=True, **DA_FAST)
        finally: a.file.close()
    def backed_view(copy_):
        def fn():
            p = h5copy(); a = anndata.read_h5ad(p, backed='r')
            try:
                v = a[:40]
                with keep_files(p): r = api(tl.embed, v, copy=copy_, **DA_FAST)
                return r
            finally: a.file.close()
        return fn
    def backed_no_x():
        d = tmpdir(); p = d / 'no_x.h5ad'
        anndata.AnnData(obs=pd.DataFrame(index=[f'c{i}' for i in range(60)]), obsm={'X_pca': W()[:, :5]}).write_h5ad(p)
        a = anndata.read_h5ad(p, backed='r')
        try:
            with keep_files(p): api(tl.embed, a, copy=True, use_rep='X_pca', **DA_FAST)
        finally: a.file.close()
    def emb(**kw):
        def fn():
            a = H.adata(); a.obsm['one_d'] = np.arange(60.0); a.layers['counts'] = a.X.copy()
            a.obsm['three_d'] = np.zeros((60, 2, 2), dtype=np.float32)
            with keep(a, 'the AnnData (failed embed)', only_on_error=True): api(tl.embed, a, **dict(DA_FAST, **kw))
            return a
        return fn
    in_memory = lambda a: emb_ok(a) or (None if not a.isbacked else 'the copy is still backed')
    big = lambda: fx('x16')[0]
    return [
        case(G, 'fit_classifier: float64 numpy images (must be converted)', lambda: api(fitc, imgs('float64'), Y()), expect='ok', check=is_learner),
        case(G, 'fit_classifier: float16 images', lambda: api(fitc, imgs('float16'), Y()), expect='either', want=[DT], check=is_learner),
        case(G, 'fit_classifier: bfloat16 images', lambda: api(fitc, imgs('bfloat16'), Y()), expect='either', want=[DT], check=is_learner),
        case(G, 'fit_classifier: uint8 images 0..255', lambda: api(fitc, imgs('uint8'), Y()), want=[U8]),
        case(G, 'fit_classifier: object-dtype images', lambda: api(fitc, imgs('object'), Y()), want=['object']),
        case(G, 'fit_classifier: complex images', lambda: api(fitc, imgs('complex'), Y()), want=['complex']),
        case(G, 'train_denoiser: float64 numpy images', lambda: api(tden, imgs('float64')), expect='ok', check=den_ok),
        case(G, 'train_denoiser: float16 images', lambda: api(tden, imgs('float16')), expect='either', want=[DT], check=den_ok),
        case(G, 'train_denoiser: complex images', lambda: api(tden, imgs('complex')), want=['complex']),
        case(G, 'predict_proba: float64 numpy images (the float32 result)', pp(lambda: imgs('float64')), expect='ok', check=probs_ok(96, X, 1e-6)),
        case(G, 'predict_proba: float16 images (converted: the float32 result)', pp(lambda: imgs('float16')), expect='ok', check=probs_ok(96, X, 1e-2)),
        case(G, 'predict_proba: uint8 images 0..255', pp(lambda: imgs('uint8')), want=[U8, ('127.5',)]),
        case(G, 'predict_proba: boolean images', pp(lambda: imgs('bool')), want=['boolean']),
        case(G, 'DiffAug.fit: float64 numpy vectors', lambda: api(dfit, W().astype(np.float64)), expect='ok'),
        case(G, 'DiffAug.fit: complex vectors', lambda: api(dfit, W().astype(np.complex64)), want=['complex']),
        # layouts and sizes
        case(G, 'fit_classifier: channels-last RGB images (N, 8, 8, 3)', lambda: api(fitc, fx('x3')[0].permute(0, 2, 3, 1).contiguous(), Y()),
             want=[CH, ('transpose(0, 3, 1, 2)',)]),
        case(G, 'fit_classifier: channels-last float64 numpy images (N, 8, 8, 1) with numpy labels',
             lambda: api(fitc, imgs('float64').transpose(0, 2, 3, 1), Y().numpy()), want=[('channels-last',), ('transpose(0, 3, 1, 2)',)]),
        case(G, 'train_denoiser: channels-last images (N, 8, 8, 1)', lambda: api(tden, X().permute(0, 2, 3, 1).contiguous()), want=[CH]),
        case(G, 'predict_proba: channels-last images (N, 8, 8, 1)', pp(lambda: X().permute(0, 2, 3, 1).contiguous()), want=[CH]),
        case(G, 'fit_classifier: 3-D images (N, 8, 8)', lambda: api(fitc, X()[:, 0], Y()), want=[CH]),
        case(G, 'train_denoiser: 3-D images (N, 8, 8)', lambda: api(tden, X()[:, 0]), want=[('(96, 8, 8)',)]),
        case(G, 'predict_proba: plain classifier trained on 8x8 given 16x16 images', pp(big),
             want=[('trained on images of shape (1, 8, 8)',), ('(1, 16, 16)',)]),
        case(G, 'predict_proba: classifier trained on 1 channel given 3-channel images', pp(lambda: fx('x3')[0]), want=[CH]),
        case(G, "fit_classifier(mode='da') with a prior=None denoiser trained on 8x8, 16x16 data",
             lambda: api(fitc, big(), Y(), mode='da', denoiser=fx('den_np')), want=[('trained on images of shape (1, 8, 8)',)]),
        case(G, 'a prior=None denoiser trained on 8x8 called on 16x16 images', lambda: api(fx('den_np'), big()[:10], 10),
             want=[('trained on samples of shape (1, 8, 8)',)]),
        case(G, 'predict_proba(ensemble=True) with a prior=None 8x8 denoiser on 16x16 images',
             lambda: api(predict_proba, fx('plain16'), big(), ensemble=True, denoiser=fx('den_np')), want=['16', '8']),
        case(G, "fit_classifier(mode='diffaug') with a 1-channel prior=None denoiser, 3-channel data",
             lambda: api(fitc, fx('x3')[0], Y(), mode='diffaug', denoiser=fx('den_np')), want=[CH]),
        case(G, 'predict_proba(ensemble=True) with a 1-channel denoiser on 3-channel images',
             lambda: api(predict_proba, fx('plain3'), fx('x3')[0], ensemble=True, denoiser=fx('den_np')), want=[CH]),
        case(G, 'fit_classifier: vectors (N, 64) instead of images', lambda: api(fitc, X().reshape(96, 64), Y()), want=[('(N, C, H, W)', 'image')]),
        case(G, 'DiffAug.transform: images given to a model fitted on vectors', lambda: api(fx('dam').transform, X()), want=[('(13,)', '13 features', '13')]),
        case(G, 'DiffAug.fit: scipy.sparse CSR matrix', lambda: api(dfit, spm.csr_matrix(W())), expect='ok'),
        case(G, 'DiffAug.fit: DataFrame with a string column', lambda: api(dfit, pd.DataFrame(W()).assign(name=[f's{i}' for i in range(60)])),
             want=[('name', 'string', 'str', 'object')]),
        # AnnData
        case(G, 'tl.embed: AnnData with a backed sparse X', backed(False), expect='either', want=['backed'], check=emb_ok),
        case(G, 'tl.embed(copy=True): AnnData with a backed sparse X (an in-memory copy)', backed(True), expect='ok', check=in_memory),
        case(G, 'tl.embed(copy=True): a backed AnnData that does not fit in memory (to_memory raises MemoryError())',
             backed_no_memory, want=[('memory',), ('copy=False',), ('embed_file',)], early=True),
        case(G, 'tl.embed: a view of a backed AnnData (anndata cannot add obsm to it)', backed_view(False),
             want=[('view',), ('backed',), ('copy=True',)], early=True),
        case(G, 'tl.embed(copy=True): a view of a backed AnnData (an in-memory copy)', backed_view(True), expect='ok',
             check=lambda a: in_memory(a) or (None if a.n_obs == 40 else f'{a.n_obs} cells, not 40')),
        case(G, 'tl.embed(copy=True): a backed .h5ad without X', backed_no_x, want=[('no X',), ('no_x.h5ad',)], early=True),
        case(G, "tl.embed(layer='nope'): no such layer", emb(layer='nope'), want=['nope', 'counts']),
        case(G, "tl.embed(use_rep='nope'): no such obsm key", emb(use_rep='nope'), want=['nope', 'X_pca']),
        case(G, "tl.embed(use_rep='one_d'): an obsm entry with one column (stored 1-D)", emb(use_rep='one_d'), expect='either',
             want=['one_d'], check=emb_ok),
    ]

# ---------------------------------------------------------------------------------------------------------------------
# 5. args: whole numbers are never truncated, strings never read as numbers, every bad setting names itself

def args_cases():
    G = 'args'
    n = 16
    pp = lambda learner, **kw: (lambda: api(predict_proba, fx(learner), XS(), **kw))
    ens = lambda **kw: (lambda: api(predict_proba, fx('plain'), XS(), ensemble=True, denoiser=fx('den'), **kw))
    fc = lambda **kw: (lambda: api(fitc, X(), Y(), **kw))
    DA = lambda **kw: (lambda: api(dfit, W(), **kw))
    def t_int64():
        same = predict_proba(fx('noisy'), XS(), t=3, generator=0)
        return api(predict_proba, fx('noisy'), XS(), t=np.int64(3), generator=0), same
    cases = [
        case(G, 'predict_proba(t=1.5)', pp('noisy', t=1.5), want=[T]),
        case(G, "predict_proba(t='10')", pp('noisy', t='10'), want=[T]),
        case(G, 'predict_proba(t=torch.tensor(3.7))', pp('noisy', t=torch.tensor(3.7)), want=[T]),
        case(G, 'predict_proba(t=np.array([3]*n)) (valid)', pp('noisy', t=np.array([3] * n)), expect='ok', check=probs_ok(n)),
        case(G, 'predict_proba(t=np.int64(3)) (valid: the same as t=3)', t_int64, expect='ok',
             check=lambda r: None if torch.allclose(r[0], r[1]) else 'differs from t=3'),
        case(G, "predict_proba(t=float('nan'))", pp('noisy', t=float('nan')), want=[T]),
        case(G, "predict_proba(t=float('inf'))", pp('noisy', t=float('inf')), want=[T]),
        case(G, 'predict_proba(t=-1)', pp('noisy', t=-1), want=[T]),
        case(G, 'predict_proba(t=1000) beyond the schedule', pp('noisy', t=1000), want=[T, ('999',)]),
        case(G, 'predict_proba(t of wrong length 3 for 16 images)', pp('noisy', t=torch.arange(3)), want=[T, ('3',)]),
        case(G, "predict_proba(generator='abc')", pp('plain', generator='abc'), want=[arg('generator'), ('torch.Generator',)]),
        case(G, 'predict_proba(generator=1.5)', pp('noisy', t=10, generator=1.5), want=[arg('generator')]),
        case(G, "corrupt(x, 'gaussian_noise', 2, generator='abc')", lambda: api(dcor.corrupt, XS(), 'gaussian_noise', 2, generator='abc'),
             want=[arg('generator')]),
        case(G, 'predict_proba(ensemble=True, steps=())', ens(steps=()), want=['steps']),
        case(G, 'predict_proba(ensemble=True, steps=(1.5,))', ens(steps=(1.5,)), want=['steps']),
        case(G, 'predict_proba(ensemble=True, steps=(-5,))', ens(steps=(-5,)), want=['steps']),
        case(G, 'predict_proba(bs=0)', pp('plain', bs=0), want=[arg('bs')]),
        case(G, 'predict_proba(bs=-1)', pp('plain', bs=-1), want=[arg('bs')]),
        case(G, 'predict_proba(bs=2.5)', pp('plain', bs=2.5), want=[arg('bs')]),
        case(G, 'fit_classifier(epochs=0)', fc(epochs=0), want=['epochs']),
        case(G, 'fit_classifier(epochs=-1)', fc(epochs=-1), want=['epochs']),
        case(G, 'fit_classifier(epochs=1.5)', fc(epochs=1.5), want=['epochs', 'whole number']),
        case(G, "fit_classifier(epochs='3')", fc(epochs='3'), want=['epochs']),
        case(G, 'fit_classifier(valid_pct=1.0)', fc(valid_pct=1.0), want=['valid_pct', '[0, 1)']),
        case(G, 'fit_classifier(valid_pct=-0.1)', fc(valid_pct=-0.1), want=['valid_pct']),
        case(G, 'fit_classifier(valid_pct=1.5)', fc(valid_pct=1.5), want=['valid_pct']),
        case(G, 'fit_classifier(lr=0)', fc(lr=0), want=[arg('lr')]),
        case(G, 'fit_classifier(lr=-1)', fc(lr=-1), want=[arg('lr')]),
        case(G, 'fit_classifier(lr=nan)', fc(lr=float('nan')), want=[arg('lr'), 'finite']),
        case(G, 'fit_classifier(n_classes=1)', fc(n_classes=1), want=['n_classes']),
        case(G, "fit_classifier(mode='bogus')", fc(mode='bogus'), want=['mode', 'bogus']),
        case(G, "fit_classifier(mode='noisy', t_max=5000)", fc(mode='noisy', t_max=5000), want=['t_max', '999']),
        case(G, "fit_classifier(mode='noisy', t_max=-1)", fc(mode='noisy', t_max=-1), want=['t_max']),
        case(G, "fit_classifier(mode='noisy', t_max='bogus')", fc(mode='noisy', t_max='bogus'), want=['t_max']),
        case(G, 'fit_classifier: non-integer float labels', lambda: api(fitc, X(), Y().float() + 0.5), want=[('integer',)]),
        case(G, 'fit_classifier: string labels', lambda: api(fitc, X(), np.array([f'c{int(v)}' for v in Y()])),
             want=[('integer', 'factorize', 'encode')]),
        case(G, 'fit_classifier: one-hot (2-D) labels', lambda: api(fitc, X(), torch.nn.functional.one_hot(Y())), want=[('1-D', '2-D', 'shape')]),
        case(G, 'fit_classifier: 90 labels for 96 images', lambda: api(fitc, X(), Y()[:90]), want=['90', '96']),
        case(G, 'DiffAug(epochs=(1, 0, 1)): no generator phase', DA(epochs=(1, 0, 1)), want=['generator phase M', 'at least 1 epoch']),
        case(G, 'DiffAug(epochs=(1, 1))', DA(epochs=(1, 1)), want=['epochs']),
        case(G, 'DiffAug(epochs=-3)', DA(epochs=-3), want=['epochs']),
        case(G, 'DiffAug(epochs=2.0)', DA(epochs=2.0), expect='either', want=['epochs'], check=phases_ok(2)),
        case(G, 'DiffAug(n_latent=0)', DA(n_latent=0), want=['n_latent']),
        case(G, 'DiffAug(n_latent=-5)', DA(n_latent=-5), want=['n_latent']),
        case(G, 'DiffAug(n_latent=2.5)', DA(n_latent=2.5), want=['n_latent']),
        case(G, "DiffAug(encoder=dict(bs=0))", DA(encoder=dict(bs=0)), want=[arg('bs')]),
        case(G, "DiffAug(encoder=dict(bs=1))", DA(encoder=dict(bs=1)), want=[arg('bs')]),
        case(G, "DiffAug(encoder=dict(bs=10 ** 9))", DA(encoder=dict(bs=10 ** 9)), want=[arg('bs')]),
        case(G, "DiffAug(views=dict(lam=1.5))", DA(views=dict(lam=1.5)), want=['lam']),
        case(G, "DiffAug(views=dict(lam=float('nan')))", DA(views=dict(lam=float('nan'))), want=['lam']),
        case(G, 'DiffAug(rounds=0)', DA(rounds=0), want=['rounds']),
        case(G, "DiffAug(views=dict(k=0))", DA(views=dict(k=0)), want=[arg('k')]),
        case(G, "DiffAug(views=dict(k=-1))", DA(views=dict(k=-1)), want=[arg('k')]),
        case(G, "DiffAug(views=dict(k=10 ** 6))", DA(views=dict(k=10 ** 6)), want=[arg('k')]),
        case(G, "DiffAug(views=dict(n_pcs=0))", DA(views=dict(n_pcs=0)), want=['n_pcs', 'at least 1']),
        case(G, "DiffAug(views=dict(n_pcs=-1))", DA(views=dict(n_pcs=-1)), want=['n_pcs']),
        case(G, "DiffAug(augment='bogus')", DA(augment='bogus'), want=['augment', 'bogus']),
        case(G, "DiffAug(loss='bogus')", DA(loss='bogus'), want=['loss', 'bogus']),
        case(G, "DiffAug(gen=dict(bogus=1))", DA(gen=dict(bogus=1)), want=['bogus']),
        case(G, "DiffAug(gen=dict(steps=0))", DA(gen=dict(steps=0)), want=['steps'], early=True),
        case(G, "DiffAug(gen=dict(sampler='bogus'))", DA(gen=dict(sampler='bogus')), want=['sampler', 'bogus']),
        case(G, "DiffAug(views=dict(image='simclr'))", DA(views=dict(image='simclr')), want=['views image', "'ssl'"]),
        case(G, "DiffAug(encoder=dict(schedule='cosine'))", DA(encoder=dict(schedule='cosine')), want=['encoder schedule', "'one_cycle'"]),
        case(G, 'DiffAug(random_state=-1)', DA(random_state=-1), want=['random_state']),
        case(G, "DiffAug(random_state='a')", DA(random_state='a'), want=['random_state']),
        case(G, 'DiffAug(random_state=1.5)', DA(random_state=1.5), want=['random_state']),
        case(G, "DiffAug(device='bogus')", DA(device='bogus'), want=["device='bogus'"]),
        case(G, "DiffAug(device='cuda') on a machine without CUDA", DA(device='cuda'), want=['cuda'],
             **({} if not torch.cuda.is_available() else dict(expect='ok'))),
        case(G, 'DiffAug.fit: 0 features (60, 0)', lambda: api(dfit, np.zeros((60, 0), np.float32)), want=[('no features', 'column')]),
        case(G, 'DiffAug.fit: 1 feature', lambda: api(dfit, W()[:, :1]), expect='either', want=['feature']),
        case(G, 'DiffAug.fit: 3 rows', lambda: api(dfit, W()[:3]), want=['row']),
        case(G, 'DiffAug.fit: NaN values', lambda: api(dfit, np.where(np.eye(60, 13) > 0, np.nan, W())), want=['NaN']),
        case(G, 'DiffAug.fit: inf values', lambda: api(dfit, np.where(np.eye(60, 13) > 0, np.inf, W())), want=['inf']),
        case(G, 'DiffAug.fit: constant columns', lambda: api(dfit, np.concatenate([W(), np.ones((60, 3), np.float32)], 1)), expect='ok'),
        case(G, 'DiffAug.transform: wrong feature count', lambda: api(fx('dam').transform, W()[:, :12]), want=['12', '13']),
        case(G, 'DiffAug.transform before fit', lambda: api(DiffAug(**DA_FAST).transform, W()), want=['fit']),
    ]
    def td_rows(k):
        def chk(d):
            h = getattr(d, 'history', None)
            if h is None or len(h) != 1: return f"history {None if h is None else len(h)} rows"
            if k >= 5 and 'valid_loss' not in h.columns: return f"no valid_loss: the 10% validation split of {k} rows has one row"
            bad = [c for c in h.columns if c.endswith('loss') and not np.isfinite(h[c]).all()]
            return f"non-finite {bad} in history" if bad else None
        return chk
    cases.append(case(G, 'train_denoiser on 1 row', lambda: api(tden, X()[:1]), want=['row']))
    for k in (3, 5, 6):
        cases.append(case(G, f'train_denoiser on {k} rows (valid split rounds to {round(k * .1)})', lambda k=k: api(tden, X()[:k]),
                          expect='either', want=['row'], check=td_rows(k)))
    x4 = lambda: torch.zeros(4, 3)
    def rh(make):
        def fn():
            p = make(tmpdir())
            with keep_files(p): return api(drows.read_h5ad, p)
        return fn
    def mkdir_(d): q = d / 'folder.h5ad'; q.mkdir(); return q
    def h5other(d):
        import h5py
        q = d / 'other.h5ad'
        with h5py.File(q, 'w') as f: f['weights'] = np.zeros(3)
        return q
    def trunc_h5ad(d): q = h5copy(d, 'half.h5ad'); truncate(q); return q
    def cifar(batch_bytes=None, obj=None, check_md5=False):
        def fn():
            d = tmpdir(); f = d / 'cifar-10-batches-py'; f.mkdir()
            ok = {'data': np.zeros((2, 3072), np.uint8), 'labels': [0, 1]}
            for k in range(2, 6): (f / f'data_batch_{k}').write_bytes(pickle.dumps(ok))
            (f / 'test_batch').write_bytes(pickle.dumps(ok))
            (f / 'batches.meta').write_bytes(pickle.dumps({'label_names': ['a'] * 10}))
            b = f / 'data_batch_1'
            b.write_bytes(batch_bytes if batch_bytes is not None else pickle.dumps(obj))
            with keep_files(b): return api(dsets.load_cifar10, d, check_md5=check_md5)
        return fn
    return cases + [
        case(G, 'train_denoiser(epochs=0)', lambda: api(tden, X(), epochs=0), want=['epochs']),
        case(G, 'train_denoiser(bs=0)', lambda: api(tden, X(), bs=0), want=[arg('bs')]),
        case(G, 'train_denoiser(valid_pct=1.0)', lambda: api(tden, X(), valid_pct=1.0), want=['valid_pct']),
        case(G, 'train_denoiser: cond of wrong length', lambda: api(tden, X(), cond=torch.zeros(50, 3)), want=['cond', '50']),
        case(G, 'Schedule.diffuse(t=1000)', lambda: api(VPSchedule().diffuse, x4(), 1000), want=[T, ('999',)]),
        case(G, 'Schedule.diffuse(t=2.5)', lambda: api(VPSchedule().diffuse, x4(), 2.5), want=[T]),
        case(G, 'Schedule.diffuse(t_max=5000)', lambda: api(VPSchedule().diffuse, x4(), t_max=5000), want=['t_max']),
        case(G, 'VPSchedule(n_steps=1)', lambda: api(VPSchedule, n_steps=1), want=['n_steps']),
        case(G, 'sample_ddim(steps=0)', lambda: api(sample_ddim, fx('den'), (4, 1, 8, 8), steps=0, progress=False), want=['steps']),
        case(G, 'sample_ddim(steps=5000) > n_steps', lambda: api(sample_ddim, fx('den'), (4, 1, 8, 8), steps=5000, progress=False), want=['steps']),
        case(G, 'tl.embed of a numpy array', lambda: api(tl.embed, W(), **DA_FAST), want=['AnnData']),
        case(G, "tl.embed(key_added='')", lambda: api(tl.embed, H.adata(), key_added='', **DA_FAST), want=['key_added']),
        case(G, 'tl.embed(key_added=5)', lambda: api(tl.embed, H.adata(), key_added=5, **DA_FAST), want=['key_added']),
        case(G, 'tl.embed(bogus=1) unknown setting', lambda: api(tl.embed, H.adata(), bogus=1, **DA_FAST), want=['bogus']),
        case(G, 'read_h5ad: missing file', lambda: api(drows.read_h5ad, tmpdir() / 'missing.h5ad'), want=['missing.h5ad']),
        case(G, 'read_h5ad: a folder', rh(mkdir_), want=['folder.h5ad']),
        case(G, 'read_h5ad: a text file named .h5ad', rh(text_h5ad), want=[('not an HDF5/h5ad file',), ('text.h5ad',)]),
        case(G, 'read_h5ad: an empty file', rh(empty_h5ad), want=[('HDF5', 'h5ad', 'empty'), ('empty.h5ad',)]),
        case(G, 'read_h5ad: an HDF5 file that is not an AnnData', rh(h5other), want=[('h5ad', 'AnnData', 'anndata'), ('other.h5ad',)]),
        case(G, 'read_h5ad: a .h5ad truncated to half', rh(trunc_h5ad), want=[('HDF5', 'h5ad', 'truncated', 'damaged'), ('half.h5ad',)]),
        case(G, 'load_cifar10: a batch file of garbage bytes', cifar(batch_bytes=b'\x00garbage' * 100), want=['cifar-10-batches-py', 'cannot be read']),
        case(G, 'load_cifar10: a batch with 10 images and 7 labels', cifar(obj={'data': np.zeros((10, 3072), np.uint8), 'labels': [0] * 7}),
             want=['18 images but 15 labels']),
        case(G, 'load_cifar10: files that are not the official ones', cifar(batch_bytes=b'\x00garbage', check_md5=True), want=['MD5', 'check_md5=False']),
        case(G, "corrupted_set(kinds=('bogus',))", lambda: api(dcor.corrupted_set, XS(), ('bogus',), (3,)), want=['bogus']),
    ]

# ---------------------------------------------------------------------------------------------------------------------
# 6. cli: one line on stderr naming the problem, exit code 2; `--debug` re-raises the error with its traceback

def cli_cases():
    G = 'cli'
    def ce(*extra, inp=None):
        def fn():
            p = h5copy() if inp is None else inp(tmpdir())
            keepers = [p] if Path(p).exists() else []
            with keep_files(*keepers), call(): return cli(['embed', p, '--out', p.parent / 'out.h5ad', *CLI_FAST, *extra])
        return fn
    def same_path():
        p = h5copy()
        with call(): r = cli(['embed', p, '--out', p, *CLI_FAST])
        r.path = p; return r
    def same_ok(r):
        a = anndata.read_h5ad(r.path)
        return None if a.n_obs == 60 and 'X_diffaug' in a.obsm and np.allclose(np.asarray(a.X), H.wine()) else 'the rewritten file is not the input plus X_diffaug'
    def demo(*extra):
        def fn():
            d = tmpdir(); out = d / 'demo'
            with call(): r = cli(['demo', '--quick', '--parts', 'diffusion', '--no-progress', *extra, '--out', out])
            if out.exists(): H.ST.lost.append(f"a failed demo left {out} behind")
            return r
        return fn
    def demo_twice():
        out = tmpdir() / 'demo'
        argv = ['demo', '--quick', '--parts', 'diffusion', '--no-progress', '--seed', '0', '--out', out]
        first = cli(argv)
        if first.code not in (0, None): return first
        files = H._listing(out)
        with call(): r = cli(argv)
        r.path = (out, files); return r
    def demo_twice_ok(r):
        out, files = r.path
        if H._listing(out) != files: return f"the second run changed the files: {sorted(H._listing(out) ^ files)[:5]}"
        Denoiser.load(out / 'digits_denoiser')
        return None if (out / 'report.md').read_text().strip() else 'empty report.md'
    def debug():
        p = h5copy()
        with keep_files(p): api(cli_main, ['embed', str(p), '--out', str(p.parent / 'o.h5ad'), '--epochs', '0', '--debug'])
    return [
        case(G, 'embed: input missing', ce(inp=lambda d: d / 'missing.h5ad'), want=['missing.h5ad', 'no .h5ad file'], cli=True),
        case(G, 'embed: input a text file named .h5ad', ce(inp=text_h5ad), want=[('not an HDF5/h5ad file',), ('text.h5ad',)], cli=True),
        case(G, 'embed: input an empty file', ce(inp=empty_h5ad), want=[('HDF5', 'h5ad', 'empty'), ('empty.h5ad',)], cli=True),
        case(G, 'embed: --epochs abc', ce('--epochs', 'abc'), want=['epochs', 'abc'], cli=True),
        case(G, 'embed: --epochs 0', ce('--epochs', '0'), want=['epochs must be at least 1'], cli=True),
        case(G, 'embed: --n-latent -1', ce('--n-latent', '-1'), want=[('n_latent', 'n-latent'), ('-1',)], cli=True),
        case(G, 'embed: --views lam=2', ce('--views', 'lam=2'), want=['lam must lie in [0, 1]'], cli=True),
        case(G, 'embed: --device bogus', ce('--device', 'bogus'), want=["device='bogus'"], cli=True),
        case(G, 'embed: --augment bogus', ce('--augment', 'bogus'), want=['augment', 'bogus'], cli=True),
        case(G, 'embed: --encoder bs=0', ce('--encoder', 'bs=0'), want=[('bs',)], cli=True),
        case(G, 'embed: --bs 0 (a setting of the encoder group)', ce('--bs', '0'), want=[('--bs',)], cli=True),
        case(G, 'embed: --random-state -1', ce('--random-state', '-1'), want=[('random_state', 'random-state')], cli=True),
        case(G, 'embed: unknown option --bogus', ce('--bogus', '1'), want=['bogus'], cli=True),
        case(G, 'embed: --use-rep nope', ce('--use-rep', 'nope'), want=['nope'], cli=True),
        case(G, 'embed: --layer nope', ce('--layer', 'nope'), want=['nope'], cli=True),
        case(G, "embed: --gen bogus=1", ce('--gen', 'bogus=1'), want=['bogus'], cli=True),
        case(G, 'embed: --out missing', lambda: cli(['embed', h5copy()]), want=['--out'], cli=True),
        case(G, 'embed: --out the same file as the input (must stay a valid file)', same_path, expect='ok', cli=True, check=same_ok),
        case(G, 'demo --device bogus (and no output folder left behind)', demo('--device', 'bogus'), want=["device='bogus'"], cli=True, early=True),
        case(G, 'demo --parts bogus', lambda: cli(['demo', '--quick', '--parts', 'bogus', '--out', tmpdir() / 'd']), want=['bogus'], cli=True),
        case(G, 'demo --seed -1', demo('--seed', '-1'), want=['seed', '-1'], cli=True, early=True),
        case(G, 'embed --debug: the error is re-raised (the user sees the traceback)', debug, want=['epochs must be at least 1']),
        case(G, 'demo --quick run twice into the same folder (valid: its report and Denoiser checkpoint are replaced)', demo_twice,
             expect='ok', cli=True, check=demo_twice_ok, slow=True),
    ]

# ---------------------------------------------------------------------------------------------------------------------
# 7. caller: what a user gives is left as it was, whether the call succeeds or fails

def caller_cases():
    G = 'caller'
    def c_fit(mode):
        def fn():
            d, x = den_train_mode(), X().clone()
            with keep(d, f'denoiser given to fit_classifier(mode={mode!r}) (train mode, requires_grad)'), keep(x, 'x'):
                return api(fitc, x, Y(), mode=mode, denoiser=d)
        return fn
    def c_fit_numpy():
        x = imgs('float64')
        with keep(x, 'float64 numpy images given to fit_classifier'): return api(fitc, x, Y().numpy())
    def c_pp_ens():
        d, x = den_train_mode(), XS()
        with keep(d, 'denoiser given to predict_proba'), keep(x, 'x'):
            return api(predict_proba, fx('plain'), x, ensemble=True, denoiser=d, steps=(0, 100))
    def c_pp_da():
        d = den_train_mode()
        with keep(d, 'denoiser given to predict_proba'): return api(predict_proba, fx('da'), XS(), t=10, denoiser=d)
    def c_pp_trainmode():
        l = H.fit_cls(*fx('digits')); l.model.train()
        with keep(l.model, 'the learner model (left in train mode by the caller)'): return api(predict_proba, l, XS())
    def c_tc():
        d, u = den_train_mode(), X()[:32].clone()
        with keep(d, 'denoiser given to TemporalConsistencyCB and fit_classifier'), keep(u, 'unlabeled images'):
            cb = TemporalConsistencyCB(u, denoiser=d, bs=16)
            return api(fitc, X(), Y(), mode='da', denoiser=d, cbs=[cb])
    def c_fail_mid():
        from fastai.callback.core import Callback
        class Boom(Callback):
            def after_batch(self): fail('error')
        d, x = den_train_mode(), X().clone()
        with keep(d, 'denoiser (fit_classifier failed mid-way)'), keep(x, 'x'):
            api(fitc, x, Y(), mode='da', denoiser=d, cbs=[Boom()])
    def c_da_tensor():
        x = torch.from_numpy(W())
        with keep(x, 'x tensor given to DiffAug.fit'): return api(dfit, x)
    def c_da_numpy():
        x = W().astype(np.float64)
        with keep(x, 'x array given to DiffAug.fit'): return api(dfit, x)
    def c_da_transform():
        m = fx('dam'); x = W()
        with keep(x, 'x given to transform'), keep(m.model, 'the fitted encoder'): return api(m.transform, x)
    def c_td():
        x = X().clone()
        with keep(x, 'x given to train_denoiser'), keep_rng(): return api(tden, x)
    def c_fc_rng():
        x, y = X(), Y()
        with keep_rng(): return api(fitc, x, y)
    def c_da_rng():
        x = W()
        with keep_rng(): return api(dfit, x)
    def c_embed():
        a = H.adata(); x0 = a.X.copy(); obs0 = a.obs.copy()
        with call(): tl.embed(a, **DA_FAST)
        ch = [k for k, same in (('X', np.array_equal(a.X, x0)), ('obs', a.obs.equals(obs0))) if not same]
        if ch: H.ST.lost.append(f"modified: embed changed adata.{'/'.join(ch)}")
        return a
    def c_embed_copy():
        a = H.adata()
        with keep(a, 'AnnData given to tl.embed(copy=True)'): return api(tl.embed, a, copy=True, **DA_FAST)
    def c_embed_fail(**kw):
        def fn():
            a = H.adata()
            with keep(a, 'AnnData after a failed tl.embed'): api(tl.embed, a, **dict(DA_FAST, **kw))
        return fn
    def c_embed_fail_inj():
        a = H.adata()
        def boom(self, *a_, **k): fail('error')
        with keep(a, 'AnnData after a failed tl.embed'), patched(DiffAug, 'transform', boom): api(tl.embed, a, **DA_FAST)
    def c_sample():
        d = den_train_mode()
        with keep(d, 'denoiser given to sample_ddim'), keep_rng():
            return api(sample_ddim, d, (2, 1, 8, 8), steps=2, progress=False, generator=torch.Generator().manual_seed(0))
    def c_save_flags():
        d = den_train_mode()
        with keep(d, 'denoiser saved by Denoiser.save'): return api(d.save, tmpdir() / 'ck')
    def c_embed_file_input():
        p = h5copy()
        with keep_files(p): return api(tl.embed_file, p, p.parent / 'out.h5ad', **DA_FAST)
    return [
        case(G, "fit_classifier(mode='da') leaves the denoiser's training flag, requires_grad and weights", c_fit('da'), expect='ok'),
        case(G, "fit_classifier(mode='diffaug') leaves the denoiser as it was", c_fit('diffaug'), expect='ok'),
        case(G, 'fit_classifier leaves a float64 numpy input unchanged', c_fit_numpy, expect='ok'),
        case(G, 'predict_proba(ensemble=True, denoiser=<train-mode denoiser>) leaves it as it was', c_pp_ens, expect='ok'),
        case(G, 'predict_proba(DA learner, t=10, denoiser=<train-mode denoiser>) leaves it as it was', c_pp_da, expect='ok'),
        case(G, "predict_proba leaves a learner's model in the mode it was in", c_pp_trainmode, expect='ok'),
        case(G, 'TemporalConsistencyCB + fit_classifier(mode=da) leave the denoiser and the unlabeled images', c_tc, expect='ok'),
        case(G, "fit_classifier(mode='da') failing mid-way leaves the denoiser as it was", c_fail_mid, injected=True),
        case(G, 'DiffAug.fit leaves the input tensor unchanged', c_da_tensor, expect='ok'),
        case(G, 'DiffAug.fit leaves a float64 numpy input unchanged', c_da_numpy, expect='ok'),
        case(G, 'DiffAug.transform leaves its input and the model unchanged', c_da_transform, expect='ok'),
        case(G, 'train_denoiser leaves its input and the global RNGs', c_td, expect='ok'),
        case(G, 'fit_classifier leaves the global RNGs (torch, numpy, random)', c_fc_rng, expect='ok'),
        case(G, 'DiffAug.fit leaves the global RNGs', c_da_rng, expect='ok'),
        case(G, 'tl.embed writes obsm/uns and leaves X and obs unchanged', c_embed, expect='ok', check=emb_ok),
        case(G, 'tl.embed(copy=True) leaves the input AnnData entirely unchanged', c_embed_copy, expect='ok', check=emb_ok),
        case(G, 'failed tl.embed(views=dict(lam=2)) writes nothing into the AnnData', c_embed_fail(views=dict(lam=2)), want=['lam']),
        case(G, 'tl.embed(lam=2): a flat setting of diffaug 0.1 names its group', c_embed_fail(lam=2), want=['views=dict(lam=']),
        case(G, 'failed tl.embed(n_latent=0) writes nothing into the AnnData', c_embed_fail(n_latent=0), want=['n_latent must be at least 1']),
        case(G, "failed tl.embed(layer='counts') writes nothing into the AnnData", c_embed_fail(layer='counts'), want=["no layer 'counts'"]),
        case(G, 'failed tl.embed (generator steps=0, fails after E1 and M) writes nothing', c_embed_fail(gen=dict(steps=0)), want=['steps']),
        case(G, 'tl.embed failing in transform (injected) writes nothing', c_embed_fail_inj, injected=True),
        case(G, 'sample_ddim leaves a train-mode denoiser and the global RNGs as they were', c_sample, expect='ok'),
        case(G, "Denoiser.save leaves the denoiser's training flag and requires_grad", c_save_flags, expect='ok'),
        case(G, 'embed_file to another path leaves the input file byte-identical', c_embed_file_input, expect='ok'),
    ]

# ---------------------------------------------------------------------------------------------------------------------
# 8. holdout: cases written after the fixes by someone who did not write them, across the whole public API; each
#    `want` was chosen from the problem (the offending argument's name or value) before any case was run

def holdout_cases():
    G = 'holdout'
    ZH = lambda: np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    YH = lambda: np.arange(60) % 3
    fin = lambda v: None if isinstance(v, float) and np.isfinite(v) else f"returned {v!r}"
    fin_dict = lambda d: None if isinstance(d, dict) and d and all(np.isfinite(v) for v in d.values()) else f"returned {d!r}"[:200]
    def z_nan(): z = ZH(); z[3, 2] = np.nan; return z
    def f_nan(): f = np.random.default_rng(3).normal(size=(50, 4)); f[7, 1] = np.nan; return f
    def fd_grad():
        f1 = torch.randn(40, 3, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
        with keep(f1, 'f1 (float32, requires_grad=True) given to frechet_distance'):
            return api(dmet.frechet_distance, f1, torch.randn(40, 3, generator=torch.Generator().manual_seed(1)))
    gs = lambda **kw: (lambda: api(dgui.guided_sample, fx('noisy'), fx('den'), **dict(dict(classes=[0], n=1, steps=2), **kw)))
    def cf_call(y):
        def fn():
            noisy, den = fx('noisy'), fx('den')
            with call():
                cf = dgui.classifier_cond_fn(noisy, y=y)
                return sample_ddim(den, (2, 1, 8, 8), steps=2, cond_fn=cf, progress=False)
        return fn
    cg = lambda x, y, **kw: (lambda: api(dgui.classifier_gradients, fx('noisy'), x(), y(), **kw))
    sd = lambda shape, **kw: (lambda: api(sample_ddim, fx('den'), shape, **dict(dict(steps=2, progress=False), **kw)))
    cgen = lambda: fx('dam').generator
    cr = lambda *a, **k: (lambda: api(dcor.corrupt, XS(), *a, **k))
    def cr_grad():
        x = XS().requires_grad_(True)
        with keep(x, 'x (requires_grad=True) given to corrupt'):
            return api(dcor.corrupt, x, 'gaussian_noise', 2, generator=torch.Generator().manual_seed(0))
    def vs_const():
        return api(drows.VectorScaler().fit_transform, np.concatenate([W(), np.full((60, 2), 7., np.float32)], 1))
    def a2t(**kw):
        def fn():
            a = H.adata(); a.obs['n_counts'] = np.linspace(0.5, 9.3, 60); a.obs['empty'] = np.full(60, np.nan)
            a.layers['counts'] = a.X.copy()
            with keep(a, 'AnnData given to adata_to_tensor'): return api(drows.adata_to_tensor, a, **kw)
        return fn
    def tc(u, **kw):
        def fn():
            d = copy.deepcopy(fx('den')); uu, x, y = u(), X(), Y()
            with call():
                cb = TemporalConsistencyCB(uu, denoiser=d, bs=16, **kw)
                return fitc(x, y, mode='da', denoiser=d, cbs=[cb])
        return fn
    def rt_renamed():
        d = tmpdir(); m = fx('dam'); m.save(d / 'ck'); os.rename(d / 'ck', d / 'renamed')
        m2 = api(DiffAug.load, d / 'renamed')
        return np.abs(m2.transform(W()) - m.transform(W())).max()
    def clash():
        a = H.adata(); api(tl.embed, a, key_added='X_pca', **DA_FAST); return a
    def emb_nan(): x = H.wine(); x[5, 3] = np.nan; return api(tl.embed, H.adata(x), **DA_FAST)
    def ch(*extra, x=None):
        def fn():
            if x is None: p = h5copy()
            else: p = tmpdir() / 'in.h5ad'; H.adata(x).write_h5ad(p)
            with keep_files(p), call(): return cli(['embed', p, '--out', p.parent / 'out.h5ad', *CLI_FAST, *extra])
        return fn
    def nan_x(): x = H.wine(); x[5, 3] = np.nan; return x
    rng = lambda s, shape: np.random.default_rng(s).normal(size=shape)
    return [
        # metrics
        case(G, 'evaluate_embedding: 60 rows of z, 50 labels', lambda: api(dmet.evaluate_embedding, ZH(), YH()[:50]), want=['60', '50']),
        case(G, 'knn_accuracy: z holds a NaN', lambda: api(dmet.knn_accuracy, z_nan(), YH()), want=['NaN']),
        case(G, 'linear_probe_accuracy: y has a single class', lambda: api(dmet.linear_probe_accuracy, ZH(), np.zeros(60, np.int64)),
             want=[('single class', 'one class', '1 class', 'only one', 'two classes', 'at least 2', 'at least two')]),
        case(G, 'kmeans_accuracy(n_clusters=0)', lambda: api(dmet.kmeans_accuracy, ZH(), YH(), n_clusters=0), want=['n_clusters']),
        case(G, 'evaluate_embedding on 8 rows (fewer per class than the 5 CV folds)',
             lambda: api(dmet.evaluate_embedding, ZH()[:8], np.arange(8) % 2), want=[('fold', 'n_splits', 'rows', 'samples')]),
        case(G, 'knn_accuracy(k=0)', lambda: api(dmet.knn_accuracy, ZH(), YH(), k=0), want=[arg('k')]),
        case(G, 'frechet_distance: f1 has 8 features, f2 has 6', lambda: api(dmet.frechet_distance, rng(1, (50, 8)), rng(2, (50, 6))), want=['8', '6']),
        case(G, 'frechet_distance: f1 holds a NaN', lambda: api(dmet.frechet_distance, f_nan(), rng(4, (50, 4))), want=['f1', 'NaN']),
        case(G, 'evaluate_embedding: pandas DataFrame z and int64 numpy labels (valid)',
             lambda: api(dmet.evaluate_embedding, pd.DataFrame(ZH(), columns=list('abcde')), YH().astype(np.int64), metrics=('knn', 'kmeans')),
             expect='ok', check=fin_dict),
        case(G, 'knn_accuracy: a list of lists and a list of ints (valid)', lambda: api(dmet.knn_accuracy, ZH().tolist(), YH().tolist()),
             expect='ok', check=fin),
        case(G, 'frechet_distance: float32 CPU tensor with requires_grad=True (valid)', fd_grad, expect='ok', check=fin),
        # guidance
        case(G, 'guided_sample(classes=[12]) with a 10-class classifier', gs(classes=[12]), want=['12', 'class']),
        case(G, 'guided_sample(scale=nan)', gs(scale=float('nan')), want=['scale']),
        case(G, 'classifier_cond_fn(y=10) with a 10-class classifier, used by sample_ddim', cf_call(10), want=[arg('y'), '10']),
        case(G, 'classifier_gradients: vectors (16, 64) instead of images', cg(lambda: XS().reshape(16, 64), lambda: Y()[:16]),
             want=[arg('x'), ('(N, C, H, W)', 'image')]),
        case(G, 'classifier_gradients: 3 labels for 16 images', cg(XS, lambda: Y()[:3]), want=['3', '16']),
        case(G, 'explore.guided_grid(scales=[nan])', lambda: api(dexp.guided_grid, fx('den'), fx('noisy'), [0], [float('nan')], n=1, steps=2),
             want=['scale']),
        # sampling
        case(G, 'sample_ddim: shape (4, 1, 16, 16) for a denoiser trained on 1x8x8', sd((4, 1, 16, 16)), want=['16', '8']),
        case(G, 'sample_ddpm: shape (4, 64) for an image denoiser', lambda: api(sample_ddpm, fx('den'), (4, 64), progress=False), want=['shape', '64']),
        case(G, 'sample_ddim: cond of width 7 for a generator conditioned on 4',
             lambda: api(sample_ddim, cgen(), (4, 13), cond=torch.zeros(4, 7), steps=2, progress=False), want=['cond', '7']),
        case(G, 'sample_ddpm: no cond for a conditional generator', lambda: api(sample_ddpm, cgen(), (4, 13), progress=False), want=['cond']),
        case(G, 'sample_ddim: x_T of shape (4, 1, 8, 8) for shape (2, 1, 8, 8)', sd((2, 1, 8, 8), x_T=torch.zeros(4, 1, 8, 8)), want=['x_T']),
        case(G, 'sample_ddim(eta=-1)', sd((2, 1, 8, 8), eta=-1.), want=['eta']),
        case(G, 'sample_ddim(eta=2.0)', sd((2, 1, 8, 8), eta=2.), want=['eta']),
        # augment
        case(G, 'KNNMix(x of 6 rows, k=6)', lambda: api(daug.KNNMix, W()[:6], k=6), want=[arg('k'), '6']),
        case(G, 'ViewBank.draw before any refresh', lambda: api(daug.ViewBank(10).draw, torch.arange(3)), want=[('refresh', 'empty')]),
        case(G, 'ViewBank(10).refresh with codes of 5 rows', lambda: api(daug.ViewBank(10, steps=2).refresh, cgen(), torch.zeros(5, 4)),
             want=['codes', '5', '10']),
        # data
        case(G, "corrupt(x, 'frog', 3): unknown corruption", cr('frog', 3), want=['frog']),
        case(G, "corrupt(x, 'gaussian_noise', severity=0)", cr('gaussian_noise', 0), want=['severity']),
        case(G, "corrupt(x, 'gaussian_noise', severity=6)", cr('gaussian_noise', 6), want=['severity']),
        case(G, "corrupt(x, 'gaussian_noise', severity=2.5)", cr('gaussian_noise', 2.5), want=['severity']),
        case(G, 'corrupt: float32 tensor with requires_grad=True (valid)', cr_grad, expect='ok',
             check=lambda r: None if tuple(r.shape) == (16, 1, 8, 8) and torch.isfinite(r).all() and float(r.detach().abs().max()) <= 1 else 'bad output'),
        case(G, 'VectorScaler.transform before fit', lambda: api(drows.VectorScaler().transform, W()), want=['fit']),
        case(G, 'VectorScaler fitted on 13 features, transform 10', lambda: api(drows.VectorScaler().fit(W()).transform, W()[:, :10]), want=['10', '13']),
        case(G, 'VectorScaler on constant columns (valid: finite, constant columns -> 0)', vs_const, expect='ok',
             check=lambda z: None if torch.isfinite(z).all() and bool((z[:, -2:] == 0).all()) else 'non-finite or constant columns not 0'),
        case(G, "adata_to_tensor(labels_key='celltype'): no such obs column", a2t(labels_key='celltype'), want=['celltype']),
        case(G, "adata_to_tensor(labels_key='empty'): an all-NaN column", a2t(labels_key='empty'), want=['empty', ('missing', 'NaN', 'NA')]),
        # semisup
        case(G, 'TemporalConsistencyCB: 16x16 unlabeled images, 8x8 labelled ones', tc(lambda: fx('x16')[0][:32]), want=['16', '8']),
        case(G, 'TemporalConsistencyCB(radius=0)', tc(lambda: X()[:32], radius=0), want=['radius']),
        case(G, 'TemporalConsistencyCB(weight=-0.5)', tc(lambda: X()[:32], weight=-0.5), want=['weight']),
        # contrastive: generate_views, save/load
        case(G, 'DiffAug.generate_views before fit', lambda: api(DiffAug(**DA_FAST).generate_views, W()), want=['fit']),
        case(G, "DiffAug(augment='knnmix').generate_views", lambda: api(fx('dam_knn').generate_views, W()[:5]), want=[('knnmix', 'diffaug', 'generator')]),
        case(G, 'DiffAug.generate_views: 10 features for a model fitted on 13', lambda: api(fx('dam').generate_views, W()[:5, :10]), want=['10', '13']),
        case(G, 'DiffAug.generate_views(n=0)', lambda: api(fx('dam').generate_views, W()[:5], n=0), want=[arg('n')]),
        case(G, 'DiffAug.save then load from a renamed folder (valid: same embedding)', rt_renamed, expect='ok',
             check=lambda e: None if e < 1e-5 else f"embeddings differ by {e}"),
        # explore
        case(G, 'explore.diffusion_states: a batch (4, 1, 8, 8) instead of one item', lambda: api(dexp.diffusion_states, fx('den'), XS()[:4], [0, 10]),
             want=['x0']),
        case(G, 'explore.item_views(idx=100) on 60 rows', lambda: api(dexp.item_views, fx('dam'), W(), 100), want=['idx', '100']),
        # tl.embed
        case(G, "tl.embed(key_added='X_pca') over an existing obsm key of another shape (n_latent=4 vs 5 columns)", clash, expect='either',
             want=['X_pca'], check=lambda a: None if a.obsm['X_pca'].shape == (60, 4) and np.isfinite(a.obsm['X_pca']).all() else 'obsm["X_pca"] not the embedding'),
        case(G, 'tl.embed: adata.X holds a NaN', emb_nan, want=['NaN']),
        case(G, 'DiffAug.fit: pandas DataFrame of floats (valid)', lambda: api(dfit, pd.DataFrame(W(), columns=[f'g{j}' for j in range(13)])),
             expect='ok', check=lambda m: None if m.transform(W()).shape == (60, 4) else 'bad embedding'),
        # CLI
        case(G, "CLI embed --gen steps=0", ch('--gen', 'steps=0'), want=['steps'], cli=True, early=True),
        case(G, 'CLI embed --epochs "(1,2)"', ch('--epochs', '(1,2)'), want=['epochs'], cli=True, early=True),
        case(G, 'CLI embed --n-pcs 0', ch('--n-pcs', '0'), want=[('n_pcs', 'n-pcs')], cli=True, early=True),
        case(G, 'CLI embed: input .h5ad whose X holds a NaN', lambda: ch(x=nan_x())(), want=['NaN'], cli=True, early=True),
        case(G, 'CLI embed: input .h5ad with 3 cells', lambda: ch(x=H.wine()[:3])(), want=[('cell', 'row')], cli=True, early=True),
    ]

def batch_cases():
    G = 'batch'
    def bfit(batch, **kw): return lambda: api(lambda: DiffAug(**dict(DA_FAST, **kw)).fit(W(), batch=batch))
    two = lambda: np.where(np.arange(60) % 2, 'donor1', 'donor2')
    def nan_b(): b = two().astype(object); b[[4, 9]] = None; return b
    def emb_b(col, values):
        def fn():
            a = H.adata(); a.obs[col] = values
            return api(tl.embed, a, batch_key=col, **DA_FAST)
        return fn
    def cli_b(col):
        def fn():
            p = h5copy()
            with keep_files(p), call(): return cli(['embed', p, '--out', p.parent / 'out.h5ad', *CLI_FAST, '--batch-key', col])
        return fn
    def fitted():
        return DiffAug(**DA_FAST).fit(W(), batch=two())
    def gen_unseen():
        m = fitted(); return api(m.generate_views, W()[:5], batch='donor3')
    def gen_none():
        m = fitted(); return api(m.generate_views, W()[:5])
    def refmap():  # cells of a batch never seen: transform needs no batch (reference mapping)
        m = DiffAug(**DA_FAST).fit(W()[:40], batch=two()[:40]); return api(m.transform, W()[40:])
    def unused_cats():
        b = pd.Categorical(two(), categories=['donor1', 'donor2', 'donor9'])
        return api(lambda: DiffAug(**DA_FAST).fit(W(), batch=b))
    return [
        case(G, 'DiffAug.fit: batch with 2 missing labels (None)', bfit(nan_b()), want=['2 missing', ('drop', 'give every cell')], early=True),
        case(G, 'DiffAug.fit: batch with a NaN', bfit(pd.Series([np.nan] + ['a', 'b'] * 29 + ['a'])), want=['missing'], early=True),
        case(G, 'DiffAug.fit: a batch of one cell', bfit(np.r_[['lone'], two()[1:]]), want=['single cell', 'lone'], early=True),
        case(G, 'DiffAug.fit: more batches than cells per batch (10 batches of 6 cells)', bfit(np.arange(60) // 6),
             want=['10 batches', ('per-cell', 'sample')], early=True),
        case(G, 'DiffAug.fit: batch of 59 labels for 60 rows', bfit(two()[:59]), want=['59', '60 rows'], early=True),
        case(G, 'DiffAug.fit: batch with a single value', bfit(np.repeat('a', 60)), want=['single batch', 'batch=None'], early=True),
        case(G, "DiffAug(gen=dict(cross='offset')).fit without batch", lambda: api(lambda: DiffAug(**dict(DA_FAST, gen=dict(steps=2, cross='offset'))).fit(W())),
             want=['needs batches', 'batch='], early=True),
        case(G, "DiffAug(gen=dict(cross='bogus'))", lambda: api(lambda: DiffAug(**dict(DA_FAST, gen=dict(cross='bogus')))), want=['cross', "'offset'"]),
        case(G, "tl.embed(batch_key='sample'): no such obs column", lambda: api(tl.embed, H.adata(), batch_key='sample', **DA_FAST),
             want=["'sample'", 'label'], early=True),
        case(G, "tl.embed(batch_key='sample'): 2 missing labels", emb_b('sample', nan_b()), want=["adata.obs['sample']", '2 missing'], early=True),
        case(G, 'CLI embed --batch-key nope: no such obs column', cli_b('nope'), want=["'nope'", 'label'], cli=True, early=True),
        case(G, "generate_views(batch='donor3') of a model trained on donor1 and donor2", gen_unseen, want=['donor3', 'donor1']),
        case(G, 'generate_views without a batch on a batch-aware model', gen_none, want=['which batch', 'donor1']),
        case(G, 'transform of cells of a batch never seen in training (valid: reference mapping)', refmap, expect='ok',
             check=lambda z: None if z.shape == (20, 4) and np.isfinite(z).all() else f'bad embedding {getattr(z, "shape", z)}'),
        case(G, 'DiffAug.fit: a Categorical batch with an unused category (valid)', unused_cats, expect='ok',
             check=lambda m: None if m.batches_ == ['donor1', 'donor2'] else f'batches {m.batches_}'),
    ]

GROUP_CASES = [atomic_cases, checkpoint_cases, late_cases, dtype_cases, args_cases, cli_cases, caller_cases, holdout_cases, batch_cases]
CASES = [c for group in GROUP_CASES for c in group()]

# ---------------------------------------------------------------------------------------------------------------------
# fixtures: the trained models and files the cases share, built on first use in each test process (`_bad_inputs.fx`)

@pytest.fixture(scope='session')
def digits(): return H.digits()
@pytest.fixture(scope='session')
def wine(): return H.wine()
@pytest.fixture(scope='session')
def x3(digits): return digits[0].repeat(1, 3, 1, 1), digits[1]
@pytest.fixture(scope='session')
def x16(digits): return digits[0].repeat_interleave(2, 2).repeat_interleave(2, 3), digits[1]
@pytest.fixture(scope='session')
def den(digits): return H.train_den(digits[0])
@pytest.fixture(scope='session')
def den_np(digits): return H.train_den(digits[0], prior=None)
@pytest.fixture(scope='session')
def den2(den):
    "Another denoiser of the same architecture (other weights): saving it over ck_denoiser changes the bytes."
    d = copy.deepcopy(den)
    with torch.no_grad():
        for p in d.parameters(): p.add_(0.01)
    return d
@pytest.fixture(scope='session')
def plain(digits): return H.fit_cls(*digits)
@pytest.fixture(scope='session')
def plain2(digits): return H.fit_cls(*digits, random_state=1)
@pytest.fixture(scope='session')
def noisy(digits, den): return H.fit_cls(*digits, mode='noisy', schedule=den.schedule)
@pytest.fixture(scope='session')
def da(digits, den): return H.fit_cls(*digits, mode='da', denoiser=den)
@pytest.fixture(scope='session')
def plain16(x16): return H.fit_cls(*x16)
@pytest.fixture(scope='session')
def plain3(x3): return H.fit_cls(*x3)
@pytest.fixture(scope='session')
def dam(wine): return H.new_diffaug().fit(wine)
@pytest.fixture(scope='session')
def dam2(wine): return H.new_diffaug(random_state=1).fit(wine)
@pytest.fixture(scope='session')
def dam_knn(wine): return H.new_diffaug(augment='knnmix').fit(wine)
@pytest.fixture(scope='session')
def pristine(tmp_path_factory): return tmp_path_factory.mktemp('pristine')
@pytest.fixture(scope='session')
def h5ad(pristine): p = pristine / 'cells.h5ad'; H.adata().write_h5ad(p); return p
@pytest.fixture(scope='session')
def h5ad_sparse(pristine): p = pristine / 'cells_sparse.h5ad'; H.adata(sparse=True).write_h5ad(p); return p
@pytest.fixture(scope='session')
def ck_diffaug(pristine, dam): return dam.save(pristine / 'ck_diffaug')
@pytest.fixture(scope='session')
def ck_denoiser(pristine, den): return den.save(pristine / 'ck_denoiser')
@pytest.fixture(scope='session')
def ck_classifier(pristine, plain): return save_classifier(plain, pristine / 'ck_classifier')

@pytest.fixture(scope='module')
def fit_spy():
    "Counts fastai's `Learner.fit` calls in `_bad_inputs.FITS`: a case marked `early` must fail before any fit."
    from fastai.learner import Learner
    orig = Learner.fit
    def spy(self, *a, **k):
        H.FITS[0] += 1; return orig(self, *a, **k)
    Learner.fit = spy
    try: yield H.FITS
    finally: Learner.fit = orig

# ---------------------------------------------------------------------------------------------------------------------
# the tests

@pytest.mark.parametrize('c', [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES])
def test_bad_input(c, request, tmp_path, fit_spy):
    r = H.run_case(c, request, tmp_path)
    if r.outcome == 'skipped': pytest.skip(r.message)
    if r.outcome not in H.PASS[c.expect]: pytest.fail(f"{c.id}: expected {' or '.join(H.PASS[c.expect])}, got {r}", pytrace=False)

def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})
    assert {c.group for c in CASES} == set(H.GROUPS) and all(c.expect in H.PASS for c in CASES)

def test_every_defined_case_is_registered():
    "Every function defined inside a group function is used there: no case is defined and then forgotten."
    tree = ast.parse(Path(__file__).read_text())
    for fn in tree.body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name.endswith('_cases')): continue
        inner = [n.name for n in fn.body if isinstance(n, ast.FunctionDef)]
        used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert not set(inner) - used, f"{fn.name} defines {sorted(set(inner) - used)} but never adds them as cases"
    assert [f.__name__ for f in GROUP_CASES] == [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.endswith('_cases')]
