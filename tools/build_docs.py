"""Build and check an HTML preview of the documentation site without quarto.

    python tools/build_docs.py                  # process notebooks, render _preview/, check it
    python tools/build_docs.py --screenshots shots/   # also take headless-Chromium screenshots of every page

Where quarto is installed, `nbdev_docs` builds the real site from the same notebooks. Here:
1. the notebooks are processed as nbdev's docs build does (`nbdev_proc_nbs` without its quarto installer):
   hidden cells dropped, `show_doc` cells run, directives applied -> `_proc/`;
2. every processed page is rendered to HTML with nbconvert, named the way quarto names it (`00_core.ipynb` ->
   `core.html`), with a sidebar grouped as in `nbs/sidebar.yml` -> `_preview/`;
3. the preview is checked: every sidebar page exists, no page holds a Python traceback or error output, every
   internal link points to an existing page (and anchor), and no raw `$...$` maths is left in the text.
Maths is rendered at build time: every `$...$` and `$$...$$` of the markdown cells becomes MathML (latex2mathml),
which browsers draw natively, so the pages need no MathJax from a CDN and render offline.
Exit status 1 and a list of problems if any check fails.
"""
import argparse, fnmatch, html, re, shutil, subprocess, sys
from pathlib import Path
import nbformat, yaml
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

ROOT = Path(__file__).resolve().parent.parent

def page_name(rel: Path) -> str:
    "Quarto's output name of a notebook: numeric prefixes dropped, .ipynb -> .html."
    parts = [re.sub(r'^\d+[a-z]?_', '', p) for p in rel.parts]
    return str(Path(*parts).with_suffix('.html'))

def process(n_workers=1):
    "nbdev's notebook processing for docs (what `nbdev_proc_nbs` does, minus installing quarto)."
    import nbdev.doclinks
    from nbdev.serve import proc_nbs
    from nbdev.config import get_config
    cfg = get_config()
    nbdev.doclinks._build_modidx()
    proc_nbs(cfg.nbs_path, n_workers=n_workers, force=True)
    return cfg.config_path / '_proc'

def sidebar(nbs: Path):
    "Sections and pages from nbs/sidebar.yml, with `auto` globs expanded."
    spec = yaml.safe_load((nbs / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    out = []
    for sec in spec:
        pages = []
        for item in sec['contents']:
            if isinstance(item, dict) and 'auto' in item:
                pages += sorted(str(p.relative_to(nbs)) for p in nbs.glob(item['auto']) if not p.name.startswith('_'))
            else: pages.append(item)
        out.append((sec['section'], [p for i, p in enumerate(pages) if p not in pages[:i]]))
    return out

CSS = """body{font-family:system-ui,sans-serif;margin:0;display:flex}nav{width:230px;min-height:100vh;background:#f4f6f8;
padding:1rem;font-size:14px;flex-shrink:0}nav h4{margin:1rem 0 .3rem;color:#555}nav a{display:block;color:#1a5fb4;
text-decoration:none;padding:2px 0}nav a.cur{font-weight:bold}main{padding:1rem 2rem;max-width:1000px;overflow-x:auto}
.jp-InputPrompt,.jp-OutputPrompt{display:none}.description{font-style:italic;font-size:125%;opacity:.7}"""

def _apply_directives(nb):
    "Honour quarto cell options the way the real site does: include, echo; drop `#|` lines; plain links."
    keep = []
    for c in nb.cells:
        if c.cell_type == 'code':
            opts = dict(re.findall(r'^#\|\s*([\w-]+):\s*(\S+)', c.source, re.M))
            if opts.get('include') == 'false': continue
            c.source = '\n'.join(l for l in c.source.splitlines() if not l.lstrip().startswith('#|')).strip()
            if opts.get('echo') == 'false' or not c.source: c.metadata.setdefault('tags', []).append('remove_input')
            for o in c.get('outputs', []):
                md = o.get('data', {}).get('text/markdown')
                if md: o['data']['text/markdown'] = re.sub(r'\]\(([^)]+)\)\{[^}]*\}', r'](\1)', md)
        keep.append(c)
    nb.cells = keep

_CODE = re.compile(r'(```.*?```|`[^`\n]*`)', re.S)
_MATH = re.compile(r'\$\$(.+?)\$\$|(?<![\\$\w])\$(?!\s)([^$\n]+?)(?<!\s)\$(?![\w$])', re.S)

def _mathml(text:str) -> str:
    "Markdown with its `$...$` / `$$...$$` maths (outside code) turned into MathML; `\\$` stays a dollar sign."
    from latex2mathml.converter import convert
    parts = _CODE.split(text)
    def one(m):
        block = m.group(1) is not None
        return convert((m.group(1) or m.group(2)).strip(), display='block' if block else 'inline')
    for i in range(0, len(parts), 2): parts[i] = _MATH.sub(one, parts[i])
    return ''.join(parts)

def _raw_math(page_html:str) -> list:
    "Raw `$...$` maths left in the visible text of a page (code, scripts and styles left out)."
    text = re.sub(r'(?is)<(code|pre|script|style|math)\b.*?</\1>', ' ', page_html)
    text = re.sub(r'<[^>]+>', ' ', text)
    return [m.group(0)[:60] for m in _MATH.finditer(html.unescape(text))]

def _title(nb):
    "Title and description from the processed notebook's front matter (a raw YAML cell)."
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.strip().startswith('---'):
            fm = yaml.safe_load(c.source.strip().strip('-')) or {}
            return fm.get('title', ''), fm.get('description', ''), c
    return '', '', None

def render(proc: Path, out: Path, nbs: Path, cfg_host: str):
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    secs = sidebar(nbs)
    exporter = HTMLExporter(template_name='lab')
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}), enabled=True)
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    pages = {}
    for nbp in sorted(proc.rglob('*.ipynb')):
        rel = nbp.relative_to(proc)
        if any(p.startswith(('_', '.')) for p in rel.parts): continue
        nb = nbformat.read(nbp, as_version=4)
        title, desc, fm = _title(nb)
        if fm is not None: nb.cells.remove(fm)
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"# {title}\n\n<p class='description'>{html.escape(desc)}</p>"))
        nb.metadata['language_info'] = {'name': 'python'}
        _apply_directives(nb)
        for c in nb.cells:
            if c.cell_type == 'markdown': c.source = _mathml(c.source)
        body, _ = exporter.from_notebook_node(nb)
        body = re.sub(r'(?is)<script[^>]*mathjax[^>]*>\s*</script>', '', body)  # maths is MathML now: no CDN script
        body = re.sub(r'(?is)<script type="text/x-mathjax-config">.*?</script>', '', body)
        name = page_name(rel)
        depth = name.count('/')
        up = '../' * depth
        nav = ''.join(f"<h4>{html.escape(s)}</h4>" + ''.join(
            f"<a class='{'cur' if page_name(Path(p)) == name else ''}' href='{up}{page_name(Path(p))}'>"
            f"{html.escape(page_name(Path(p))[:-5].split('/')[-1])}</a>" for p in ps) for s, ps in secs)
        body = re.sub(r'href="(?!https?:|#|mailto:)([^"#]+?)\.ipynb', r'href="\1.html', body)
        body = re.sub(r'href="(?!https?:|#|mailto:)(?:\./)?(\d+[a-z]?_)', 'href="', body)
        if cfg_host: body = body.replace(f'href="{cfg_host}/', f'href="{up}')
        body = re.sub(r'(<body[^>]*>)', rf"\1<nav><b>diffaug</b>{nav}</nav><main>", body, count=1)
        body = body.replace('</body>', '</main></body>', 1).replace('</head>', f'<style>{CSS}</style></head>', 1)
        dest = out / name; dest.parent.mkdir(parents=True, exist_ok=True); dest.write_text(body)
        pages[name] = nb
    return pages, secs

def check(out: Path, pages: dict, secs) -> list:
    problems = []
    for s, ps in secs:
        for p in ps:
            if not (out / page_name(Path(p))).exists(): problems.append(f"sidebar page {p} ({s}) was not built")
    for name, nb in pages.items():
        for i, c in enumerate(nb.cells):
            for o in c.get('outputs', []):
                txt = o.get('text', '') if o.get('output_type') == 'stream' else str(o.get('data', {}).get('text/plain', ''))
                if o.get('output_type') == 'error' or 'Traceback (most recent call last)' in txt:
                    problems.append(f"{name}: cell {i} shows a Python traceback or error output")
    for f in out.rglob('*.html'):
        raw = _raw_math(f.read_text())
        if raw: problems.append(f"{f.relative_to(out)}: raw maths not rendered: {raw[:3]}")
    ids = {}
    for f in out.rglob('*.html'):
        ids[f] = set(re.findall(r'\bid="([^"]+)"', f.read_text()))
    for f in out.rglob('*.html'):
        for href in re.findall(r'href="([^"]+)"', f.read_text()):
            if re.match(r'(https?:|mailto:|data:|javascript:)', href) or href.startswith('#'): continue
            path, _, anchor = href.partition('#')
            target = (f.parent / path).resolve()
            if not path.endswith('.html'): continue
            if not target.exists(): problems.append(f"{f.relative_to(out)}: broken link {href}")
            elif anchor and anchor not in ids.get(target, set()) and anchor.lower() not in {i.lower() for i in ids.get(target, set())}:
                problems.append(f"{f.relative_to(out)}: link {href} points to a missing anchor")
    return problems

def chromium():
    for c in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(c): return shutil.which(c)

def screenshots(out: Path, dest: Path, width=1280, height=1600):
    exe = chromium()
    if exe is None: raise FileNotFoundError("no chromium found: `apt-get install chromium` (Debian) for screenshots")
    dest.mkdir(parents=True, exist_ok=True)
    shots = []
    for f in sorted(out.rglob('*.html')):
        png = dest / (str(f.relative_to(out))[:-5].replace('/', '__') + '.png')
        subprocess.run([exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                        '--disable-background-networking', '--disable-component-update', '--disable-sync',
                        '--hide-scrollbars', f'--user-data-dir={dest / ".chromium"}',
                        f'--window-size={width},{height}', f'--screenshot={png}', f.as_uri()],
                       check=True, capture_output=True, timeout=120)
        shots.append(png)
    shutil.rmtree(dest / '.chromium', ignore_errors=True)
    return shots

def dump_dom(page: Path) -> str:
    "The DOM of `page` after Chromium has loaded it (scripts run)."
    exe = chromium()
    if exe is None: raise FileNotFoundError("no chromium found: `apt-get install chromium` (Debian)")
    r = subprocess.run([exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                        '--disable-background-networking', '--disable-component-update', '--disable-sync',
                        '--dump-dom', page.as_uri()], check=True, capture_output=True, text=True, timeout=120)
    return r.stdout

def build(out=None, n_workers=1):
    from nbdev.config import get_config
    cfg = get_config()
    out = Path(out) if out else ROOT / '_preview'
    proc = process(n_workers)
    host = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    pages, secs = render(proc, out, cfg.nbs_path, host)
    return out, pages, check(out, pages, secs)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=None, help='output folder (default _preview/)')
    ap.add_argument('--screenshots', default=None, help='folder for one PNG per page (needs chromium)')
    ap.add_argument('--workers', type=int, default=1)
    a = ap.parse_args()
    out, pages, problems = build(a.out, a.workers)
    print(f"built {len(pages)} pages into {out}")
    if a.screenshots: print(f"{len(screenshots(out, Path(a.screenshots)))} screenshots in {a.screenshots}")
    for p in problems: print('PROBLEM:', p)
    sys.exit(1 if problems else 0)
