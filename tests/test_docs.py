"Build the documentation preview (no quarto needed) and open every page in headless Chromium."
import os, shutil, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import build_docs

@pytest.fixture(scope='module')
def preview(tmp_path_factory):
    out = tmp_path_factory.mktemp('preview')
    return build_docs.build(out)

def test_preview_pages_links_and_outputs(preview):
    out, pages, problems = preview
    assert {'index.html', 'core.html', 'schedule.html', 'scorenet.html', 'sampling.html'} <= {str(p) for p in pages}
    assert not problems, 'documentation problems:\n' + '\n'.join(problems)

def test_pages_open_in_chromium(preview, tmp_path):
    out, pages, _ = preview
    if build_docs.chromium() is None:
        if os.environ.get('CI'): pytest.fail('chromium is missing: .ci/run installs it with apt-get (Debian package chromium)')
        pytest.skip('chromium not installed (apt-get install chromium) -- CI installs it')
    for name in ['index.html'] + sorted(p for p in pages if p != 'index.html'):
        dom = build_docs.dump_dom(out / name)
        assert '<nav>' in dom and '<main>' in dom, f'{name} did not load'
        assert 'Traceback (most recent call last)' not in dom, f'{name} shows a traceback'
    shots = build_docs.screenshots(out, tmp_path / 'shots')
    assert len(shots) == len(pages) and all(s.stat().st_size > 10_000 for s in shots)
