"""Execute notebooks in place so the documentation shows their outputs (figures, tables).

    python tools/run_notebooks.py nbs/08_denoiser.ipynb ... [--flags slow]

Cells flagged with tst_flags (`slow`, `gpu`) are skipped unless named in --flags; `#| eval: false` cells never run.
Warnings printed to stderr are not kept. Run `nbdev_clean` afterwards.
"""
import argparse, os, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.foundation import working_directory
from nbdev.config import get_config
from nbdev.process import NBProcessor, extract_directives

def run(path: Path, force=()):
    skip = set(get_config().get('tst_flags', '').split()) - set(force)
    nb = read_nb(path)
    def _skip(cell):
        if cell.cell_type != 'code': return True
        d = extract_directives(cell, remove=False)
        if d.get('eval:', [''])[0].lower() == 'false': return True
        return bool(skip & d.keys())
    sh = CaptureShell(path)
    t0 = time.time()
    with working_directory(path.parent): sh.run_all(nb, exc_stop=True, preproc=_skip)
    for c in nb.cells:
        if c.cell_type == 'code' and c.get('outputs'):
            c.outputs = [o for o in c.outputs if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
    write_nb(nb, path)
    return time.time() - t0

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('notebooks', nargs='+')
    ap.add_argument('--flags', nargs='*', default=[], help='flagged cells to run too (e.g. slow)')
    a = ap.parse_args()
    os.environ.setdefault('MPLBACKEND', 'module://matplotlib_inline.backend_inline')
    import torch; torch.set_num_threads(1)
    for p in a.notebooks:
        print(f'{p}: {run(Path(p).resolve(), a.flags):.0f} s', flush=True)
