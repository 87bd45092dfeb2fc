"Run every notebook under nbs/ as a test, the way `nbdev_test` does (cells flagged `slow`/`gpu` are skipped)."
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev import test as nbdev_test_mod

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
NOTEBOOKS = sorted(p for p in NBS.rglob('*.ipynb')
                   if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts))

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[str(p.relative_to(NBS)) for p in NOTEBOOKS])
def test_notebook(nb, capsys):
    flags = get_config().get('tst_flags', '').split()
    ok, secs = nbdev_test_mod.test_nb(nb, skip_flags=flags, basepath=ROOT, showerr=True)
    assert ok, f'{nb.relative_to(ROOT)} failed after {secs:.1f}s: the traceback is in the captured stderr above'
