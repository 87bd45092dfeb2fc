"Build the documentation preview (no quarto needed) and open every page in headless Chromium."
import os, re, shutil, sys
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
    assert {'index.html', 'core.html', 'schedule.html', 'denoiser.html', 'sampling.html'} <= {str(p) for p in pages}
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
    shots = build_docs.screenshots(out, tmp_path / 'shots')  # every page at full length, as a reader scrolls through it
    assert len(shots) == len(pages) and all(s.stat().st_size > 10_000 for s in shots)
    from PIL import Image
    heights = {s.name: Image.open(s).height for s in shots}
    assert heights['results__contrastive.png'] > 6000 and heights['tl.png'] > 2000, heights  # whole pages, not the first screen
    dom = build_docs.dump_dom(out / 'tutorials' / 'digits.html', '?q=denoiser')  # the search box runs from file://
    assert re.search(r'<ul id="search-results"><li><a href="\.\./[\w/]+\.html', dom), 'search found nothing for "denoiser"'

def test_api_pages(preview):
    "API pages as fastai's and scanpy's: usage with its output first, a parameter table, tests folded, human titles."
    out, pages, _ = preview
    page = (out / 'tl.html').read_text()
    assert page.index('id="Usage"') < page.index('id="embed"'), 'the usage example comes before the reference'
    assert 'X_diffaug (700, 10)' in page, 'the usage example shows its output'
    assert re.search(r'<th[^>]*>Parameter</th>', page) and re.search(r'<code>batch_key</code>', page), 'no parameter table'
    assert 'window.FOLD = [' in page and 'celltag_fold' in page, 'tests are not folded'
    assert '# cells x genes' not in page, 'docments shown as comments in the signature'
    assert "<title>Embedding AnnData - diffaug</title>" in page and ">Embedding AnnData</a>" in page  # title and sidebar entry

def test_check_missing_alt(tmp_path):
    assert any('figure without a description' in p for p in _problems(tmp_path, f'<img alt="{build_docs.NO_ALT}" src="x.png">'))
    assert not _problems(tmp_path, '<img alt="UMAPs coloured by cell type" src="x.png">')
    assert build_docs._set_alts(f'<img alt="{build_docs.NO_ALT}"><img alt="{build_docs.NO_ALT}">', ['a & b', None]) == \
        f'<img alt="a &amp; b"><img alt="{build_docs.NO_ALT}">'

def test_site_urls():
    "The deploy workflow points the site at the repository it runs in."
    import site_urls
    v = site_urls.site_settings('SomeLab/diffaug')
    assert v == {'user': 'SomeLab', 'doc_host': 'https://somelab.github.io', 'doc_baseurl': '/diffaug',
                 'git_url': 'https://github.com/SomeLab/diffaug'}
    ini = (ROOT / 'settings.ini').read_text()
    new = site_urls.rewrite(ini, v)
    assert 'doc_host = https://somelab.github.io' in new and 'git_url = https://github.com/SomeLab/diffaug' in new
    assert [l for l in ini.splitlines() if not l.startswith(tuple(v))] == [l for l in new.splitlines() if not l.startswith(tuple(v))]
    with pytest.raises(ValueError, match='OWNER/REPO'): site_urls.site_settings('not a repo')
    wf = (ROOT / '.github' / 'workflows' / 'deploy.yaml').read_text()
    assert wf.index('tools/site_urls.py "${{ github.repository }}"') < wf.index('run: nbdev_docs')
    assert 'code-overflow: wrap' in (ROOT / '_quarto.yml').read_text()  # long code lines wrap on the site, not cut off

def test_preview_navigation(preview):
    out, pages, _ = preview
    page = (out / 'learner.html').read_text()
    assert "<aside class='toc'>" in page and "class='pagenav'" in page and "id='search'" in page
    assert 'after_cancel_fit' not in page, 'BatchLossLog/EpochTimer signatures list fastai event keywords'
    assert "src/diffaug/learner.py.html#L" in page and (out / 'search-index.js').read_text().startswith('window.DIFFAUG_INDEX = [')

# The checks themselves, on small hand-written pages (fast).

def _problems(tmp_path, body, name='p.html'):
    (tmp_path / name).write_text(f"<html><head><title>t</title><style>/* the Material Design specification */</style></head><body>{body}</body></html>")
    return build_docs.check(tmp_path, {}, [])

def test_check_title_backticks(tmp_path):
    assert any('backticks' in p for p in _problems(tmp_path, "<h1>The `DiffAug` object</h1>"))
    assert any('backticks' in p for p in _problems(tmp_path, "<h1>x</h1><p class='description'>fit, `transform`</p>"))
    assert not _problems(tmp_path, f"<h1>x</h1><p class='description'>{build_docs._inline('fit, `transform`')}</p>")

def test_check_latex_left_in_maths(tmp_path):
    bad = build_docs._mathml(r'$g(x) = \arg\max_c P(c)$')
    assert any('LaTeX command left raw' in p for p in _problems(tmp_path, f'<p>{bad}</p>'))
    good = build_docs._mathml(r'$g(x) = \operatorname*{argmax}_c P(c)$')
    assert not _problems(tmp_path, f'<p>{good}</p>')

def test_check_raw_markdown_links(tmp_path):
    sig = '<pre><span class="c1"># a [`Denoiser`](denoiser.html#denoiser), or [x](https://example.org/x)</span></pre>'
    assert any('raw markdown link' in p for p in _problems(tmp_path, sig))
    assert any('raw markdown link' in p for p in _problems(tmp_path, '<p>see [the guide](guide.html)</p>'))
    fixed = build_docs._md_links_to_html(sig)
    assert '<a href="denoiser.html#denoiser"><code>Denoiser</code></a>' in fixed
    (tmp_path / 'denoiser.html').write_text('<h3 id="Denoiser">Denoiser</h3>')
    assert not _problems(tmp_path, fixed + '<pre>x = d[0](y); a[i](b)</pre>')

def test_check_placeholder_urls(tmp_path):
    for bad in ['<a href="https://github.com/diffaug/diffaug/blob/main/diffaug/core.py#L10">source</a>',
                '<p>docs at https://diffaug.github.io/diffaug/core.html</p>']:
        assert any('placeholder URL' in p for p in _problems(tmp_path, bad)), bad
    assert not _problems(tmp_path, '<a href="https://github.com/fastai/fastai">fastai</a>')

def test_check_internal_wording(tmp_path):
    for bad in ['as SPEC A says', 'see SPEC.md', 'part B of the specification', 'chosen in issue 12', 'Issues #3 and 4',
                'on a lent device machine', "the machine's time limit cut it", 'left for a later session',
                'after we fixed the bug', 'the target is not met', 'not the 4 of 6 we aimed for', 'heldout-issue12-tables.md']:
        assert any('internal development wording' in p for p in _problems(tmp_path, f'<p>{bad}</p>')), bad
    assert not _problems(tmp_path, '<p>the contrastive method (method A); an issue with the spectrum; a talented, silent target</p>')

def test_check_remote_scripts(tmp_path):
    assert any('network' in p for p in _problems(tmp_path, '<script src="https://cdn.example.org/mathjax.js"></script>'))

def test_search_index():
    page = ("<html><head><title>T</title></head><body><nav>sidebar words</nav><main><h1 id='c'>core<a>\u00b6</a></h1>"
            "<h2 id='Seeds'>Seeds<a class='anchor-link' href='#Seeds'>\u00b6</a></h2><p>Make a <code>generator</code>.</p>"
            "<h3 id='make_generator'>make_generator</h3><h4 id='x'>not in the index</h4></main>"
            "<aside class='toc'>On this page</aside><script>var x = 1;</script></body></html>")
    [e] = build_docs.search_index({'core.html': page})
    assert e['u'] == 'core.html' and e['t'] == 'core'
    assert e['h'] == [['Seeds', 'Seeds'], ['make_generator', 'make_generator']]
    assert 'Make a generator .' in e['x'] and 'sidebar' not in e['x'] and 'var x' not in e['x'] and 'On this page' not in e['x']
    assert len(build_docs.search_index({'a.html': page.replace('Make', 'word ' * 5000)}, max_chars=100)[0]['x']) == 100

def test_write_sources(tmp_path):
    lib = tmp_path / 'pkg'; lib.mkdir()
    (lib / 'mod.py').write_text('"doc"\nx = 1\n')
    (lib / '_modidx.py').write_text('d = {}\n')
    [f] = build_docs.write_sources(lib, tmp_path / 'out', {'mod.html'})
    assert f == tmp_path / 'out' / 'src' / 'pkg' / 'mod.py.html'
    page = f.read_text()
    assert 'id="L1"' in page and 'id="L2"' in page and 'id="L3"' not in page and 'href="../../mod.html"' in page

def test_local_href():
    assert build_docs._local_href('../24_report.html') == '../report.html'
    assert build_docs._local_href('./06_schedule.html') == 'schedule.html'
    assert build_docs._local_href('tutorials/digits.html') == 'tutorials/digits.html'

def test_check_event_keywords(tmp_path):
    sig = ('<pre><span class="k">def</span> <span class="nf">BatchLossLog</span>(\n    after_create:NoneType=None, '
           'after_cancel_fit:NoneType=None, after_fit:NoneType=None\n):</pre>')
    found = [p for p in _problems(tmp_path, sig) if 'event keywords' in p]
    assert len(found) == 1 and 'BatchLossLog' in found[0]
    assert not _problems(tmp_path, '<pre>def BatchLossLog():</pre><p>restore it in <code>after_cancel_fit</code></p>')

def test_run_notebooks_checks_figures(monkeypatch):
    "Every figure a notebook draws is checked as it is rendered; the problems name the cell."
    import io, matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureCanvasBase
    import run_notebooks
    monkeypatch.setattr(FigureCanvasBase, 'print_figure', FigureCanvasBase.print_figure)  # restored after the test
    monkeypatch.setattr(run_notebooks, 'FIGURE_PROBLEMS', [])
    run_notebooks.check_rendered_figures(['demo.ipynb, cell 3'])
    fig, ax = plt.subplots(figsize=(4, 3)); ax.plot([0, 1], label='a'); ax.legend(fontsize=5)
    fig.savefig(io.BytesIO(), format='png'); plt.close(fig)
    assert "demo.ipynb, cell 3: legend text 'a' is 5.2 pt on the page (at least 8)" in run_notebooks.FIGURE_PROBLEMS
    assert 'demo.ipynb, cell 3: plot 1: no x label' in run_notebooks.FIGURE_PROBLEMS

def test_run_notebooks_keeps_prints_of_cells_ending_in_semicolon(tmp_path):
    "A cell that prints and ends in ';' (to hide a figure's value) keeps its printed lines, as in Jupyter."
    import json, run_notebooks
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "a1", "metadata": {}, "outputs": [],
                     "source": ["print('hello line')\n", "x = 3\n", "x;"]}],
          "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    f = tmp_path / 'semi.ipynb'; f.write_text(json.dumps(nb))
    run_notebooks.run(f)
    outs = json.loads(f.read_text())['cells'][0]['outputs']
    assert [(o['output_type'], ''.join(o.get('text', ''))) for o in outs] == [('stream', 'hello line\n')]  # the print, no value

def test_results_pages_show_the_committed_reports():
    "Every report a results page shows is the report as committed now: rerun `tools/run_notebooks.py` on the page after a benchmark writes."
    import ast, json
    from diffaug.docs import result_markdown, RESULTS
    pages = [ROOT / 'nbs' / 'results.ipynb', *sorted((ROOT / 'nbs' / 'results').glob('*.ipynb'))]
    stale, n = [], 0
    for page in pages:
        for cell in json.loads(page.read_text())['cells']:
            src = ''.join(cell['source'])
            if cell['cell_type'] != 'code' or 'show_result(' not in src: continue
            calls = [c for c in ast.walk(ast.parse('\n'.join(l for l in src.splitlines() if not l.startswith('#|'))))
                     if isinstance(c, ast.Call) and getattr(c.func, 'id', '') == 'show_result']
            want = []
            for c in calls:
                args = [ast.literal_eval(a) for a in c.args]; kw = {k.arg: ast.literal_eval(k.value) for k in c.keywords}
                want.append(result_markdown(RESULTS / args[0], args[1] if len(args) > 1 else kw.get('sections'), kw.get('depth', 3)))
            got = [''.join(o['data']['text/markdown']) for o in cell.get('outputs', []) if 'text/markdown' in o.get('data', {})]
            n += len(want)
            if got != want: stale.append(f"{page.name}: {src.splitlines()[-1][:80]}")
    assert n >= 15, n
    assert not stale, f"results pages showing an old report (run `python tools/run_notebooks.py nbs/results.ipynb nbs/results/*.ipynb`): {stale}"
