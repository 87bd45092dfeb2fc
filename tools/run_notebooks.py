"""Execute notebooks in place so the documentation shows their outputs (figures, tables).

    python tools/run_notebooks.py nbs/08_denoiser.ipynb ... [--flags slow]

Cells flagged with tst_flags (`slow`, `gpu`) are skipped unless named in --flags; `#| eval: false` cells never run.
Warnings printed to stderr are not kept. Run `nbdev_clean` afterwards.

Every figure the notebooks draw (shown inline or saved) is checked with `diffaug.docs.check_figure` as it is
rendered: text under 8 pt at page width, axes without labels, colour maps without a colour bar. The problems are
listed with the cell that drew the figure and the exit status is 1 (`--no-figure-check` skips the check).
"""
import argparse, os, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.foundation import working_directory
from nbdev.config import get_config
from nbdev.process import NBProcessor, extract_directives

FIGURE_PROBLEMS = []

def check_rendered_figures(where):
    "Check every figure when matplotlib renders it (inline display or savefig); problems go to FIGURE_PROBLEMS."
    from matplotlib.backend_bases import FigureCanvasBase
    from diffaug.docs import check_figure
    orig = FigureCanvasBase.print_figure
    def print_figure(self, *args, **kw):
        dpi = kw.get('dpi')
        for p in check_figure(self.figure, dpi=dpi if isinstance(dpi, (int, float)) else None):
            FIGURE_PROBLEMS.append(f"{where[0]}: {p}")
        return orig(self, *args, **kw)
    FigureCanvasBase.print_figure = print_figure

class Shell(CaptureShell):
    "execnb's shell, except that a cell ending in ';' keeps what it printed (execnb drops the whole stdout; Jupyter only hides the value)."
    def _run(self, raw_cell, *args, **kw):
        if raw_cell.rstrip().endswith(';'): raw_cell = raw_cell.rstrip() + '\npass'  # still no value shown
        return super()._run(raw_cell, *args, **kw)

def run(path: Path, force=(), where=None):
    skip = set(get_config().get('tst_flags', '').split()) - set(force)
    nb = read_nb(path)
    def _skip(cell):
        if where is not None: where[0] = f"{path.name}, cell {cell.get('idx_', '?')} ({cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ''})"
        if cell.cell_type != 'code': return True
        d = extract_directives(cell, remove=False)
        if d.get('eval:', [''])[0].lower() == 'false': return True
        return bool(skip & d.keys())
    sh = Shell(path, mpl_format="png")  # 1x PNG: the size a reader sees, the size the figure check assumes, 4x smaller files
    t0 = time.time()
    with working_directory(path.parent): sh.run_all(nb, exc_stop=True, preproc=_skip)
    for c in nb.cells:
        if c.cell_type == 'code' and c.get('outputs'):
            c.outputs = [o for o in c.outputs if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
            if extract_directives(c, remove=False).get('output:', [''])[0].lower() == 'false': c.outputs = []  # as quarto hides them
    write_nb(nb, path)
    return time.time() - t0

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('notebooks', nargs='+')
    ap.add_argument('--flags', nargs='*', default=[], help='flagged cells to run too (e.g. slow)')
    ap.add_argument('--no-figure-check', action='store_true', help='do not check the figures')
    a = ap.parse_args()
    os.environ.setdefault('MPLBACKEND', 'module://matplotlib_inline.backend_inline')
    import torch; torch.set_num_threads(1)
    where = ['']
    if not a.no_figure_check: check_rendered_figures(where)
    for p in a.notebooks:
        print(f'{p}: {run(Path(p).resolve(), a.flags, where):.0f} s', flush=True)
    if FIGURE_PROBLEMS:
        print(f"{len(FIGURE_PROBLEMS)} figure problem(s):\n" + '\n'.join(f"  {p}" for p in dict.fromkeys(FIGURE_PROBLEMS)))
        sys.exit(1)
