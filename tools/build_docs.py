"""Build and check an HTML preview of the documentation site without quarto.

    python tools/build_docs.py                  # process notebooks, render _preview/, check it
    python tools/build_docs.py --screenshots shots/   # also take headless-Chromium screenshots of every page

Needs the dev extra (`pip install -c constraints.txt -e ".[dev]"`: nbdev, nbconvert, latex2mathml) and, for
screenshots, Chromium (Debian: `apt-get install chromium`).

Where quarto is installed, `nbdev_docs` builds the real site from the same notebooks. Here:
1. the notebooks are processed as nbdev's docs build does (`nbdev_proc_nbs` without its quarto installer):
   hidden cells dropped, `show_doc` cells run, directives applied -> `_proc/`;
2. every processed page is rendered to HTML with nbconvert, named the way quarto names it (`00_core.ipynb` ->
   `core.html`), with a sidebar grouped as in `nbs/sidebar.yml` -> `_preview/`. Each page gets a search box
   (client-side: `search-index.js`, built here from the pages' titles, headings and text, is loaded with a
   `<script>` tag so that it also works from file://), a table of contents of its h2/h3 headings on the right,
   and previous/next links in sidebar order;
3. the preview is checked: every sidebar page exists, no page holds a Python traceback or error output, every
   internal link points to an existing page (and anchor), no raw `$...$` maths is left in the text, no title or
   subtitle shows literal backticks, no raw markdown link `[text](url)` is left as text, no signature lists
   fastai's event keywords (`after_create=None, ...`: a Callback without an `__init__`), no page links to or names
   the placeholder sites of settings.ini (`doc_host`, `git_url`: they do not exist), no page uses our internal
   development wording ("SPEC A", "the specification", "issue 12", ...), and no page loads a script from the network.
Maths is rendered at build time: every `$...$` and `$$...$$` of the markdown cells becomes MathML (latex2mathml),
which browsers draw natively, so the pages need no MathJax from a CDN and render offline.
Links to `doc_host` pages become relative links. Markdown links that nbdev leaves in signature comments become real
links. The "source" links of `show_doc` pointed to `git_url`; here they point to a copy of the exported module
shipped with the preview: `src/diffaug/<module>.py.html`, the source with an anchor per line (`#L42`).
Exit status 1 and a list of problems if any check fails.
"""
import argparse, fnmatch, html, json, re, shutil, subprocess, sys
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

CSS = """body{font-family:system-ui,sans-serif;margin:0;display:flex}nav{width:180px;min-height:100vh;background:#f4f6f8;
padding:1rem;font-size:14px;flex-shrink:0}nav h4{margin:1rem 0 .3rem;color:#555}nav a{display:block;color:#1a5fb4;
text-decoration:none;padding:2px 0}nav a.cur{font-weight:bold}main{padding:1rem 1rem;max-width:1000px;min-width:0;
flex:1;overflow-x:auto}.jp-Cell,.jp-InputArea,.jp-OutputArea,.jp-Cell-inputWrapper{min-width:0}
.jp-InputArea-editor,.jp-OutputArea-output{overflow-x:auto}.jp-InputArea-editor pre{white-space:pre-wrap;overflow-wrap:anywhere}.jp-OutputArea-output{padding-left:0;margin-left:0}.jp-RenderedImage img{max-width:100%;height:auto}body.srcpage main{max-width:none}.jp-InputPrompt,.jp-OutputPrompt{display:none}.description{font-style:italic;font-size:125%;
opacity:.7}#search{width:100%;box-sizing:border-box;margin:.6rem 0 0;padding:4px 6px;font-size:14px}
#search-results{list-style:none;margin:.3rem 0;padding:0;background:#fff}#search-results li{padding:3px 4px;
border-bottom:1px solid #e3e6ea}#search-results small{display:block;color:#666}aside.toc{width:160px;flex-shrink:0;
font-size:13px;padding:1rem .5rem;position:sticky;top:0;align-self:flex-start;max-height:100vh;overflow-y:auto}
aside.toc a{display:block;color:#1a5fb4;text-decoration:none;padding:2px 0}aside.toc a.h3{padding-left:.9rem}
aside.toc b{display:block;margin-bottom:.3rem}.pagenav{display:flex;justify-content:space-between;margin:3rem 0 1rem;
padding-top:1rem;border-top:1px solid #ccc}.pagenav a{color:#1a5fb4;text-decoration:none}
.highlight pre a[href]{color:#1a5fb4}pre.src span.ln a{display:inline-block;width:3.5em;color:#999;text-decoration:none;user-select:none}
pre.src span.ln:target{background:#fff3b0}
details>summary{cursor:pointer;color:#555;font-size:13px;margin:.2rem 0}
.jp-RenderedText pre,.jp-OutputArea-output pre{white-space:pre-wrap;word-break:normal;overflow-wrap:normal;overflow-x:auto}
.jp-RenderedMarkdown pre{background:#f6f8fa;padding:.6rem .8rem;border-radius:4px;overflow-x:auto;margin:.6rem 0 1rem}
aside.toc a{overflow-wrap:anywhere}"""

FOLD_JS = ("document.querySelectorAll('.celltag_fold').forEach(function (c, k) {"
           "var i = c.querySelector('.jp-Cell-inputWrapper'); if (!i) return;"
           "var d = document.createElement('details'), s = document.createElement('summary');"
           "s.textContent = (window.FOLD || [])[k] || 'Code'; d.appendChild(s);"
           "i.parentNode.insertBefore(d, i); d.appendChild(i); });")

SEARCH_JS = r"""(function () {
  var box = document.getElementById('search'), list = document.getElementById('search-results');
  var index = window.DIFFAUG_INDEX || [];
  if (!box || !list) return;
  var up = box.getAttribute('data-up') || '';
  function esc(s) { return s.replace(/[&<>"]/g, function (c) { return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]; }); }
  function snippet(text, term) {
    var i = text.toLowerCase().indexOf(term);
    if (i < 0) return '';
    var a = Math.max(0, i - 40);
    return (a ? '\u2026' : '') + text.slice(a, i + 60) + '\u2026';
  }
  function search(q) {
    var terms = q.toLowerCase().split(/\s+/).filter(Boolean), hits = [];
    if (!terms.length) return hits;
    index.forEach(function (p) {
      var score = 0, head = null, text = p.x.toLowerCase();
      var all = terms.every(function (t) {
        var s = p.t.toLowerCase().indexOf(t) >= 0 ? 10 : 0;
        p.h.forEach(function (h) { if (h[0].toLowerCase().indexOf(t) >= 0) { s += 5; head = head || h; } });
        if (text.indexOf(t) >= 0) s += 1;
        score += s;
        return s > 0;
      });
      if (all) hits.push({p: p, score: score, head: head, snip: snippet(p.x, terms[0])});
    });
    return hits.sort(function (a, b) { return b.score - a.score; }).slice(0, 10);
  }
  function show() {
    var q = box.value.trim(), hits = search(q);
    list.innerHTML = hits.map(function (h) {
      var href = up + h.p.u + (h.head ? '#' + h.head[1] : '');
      return '<li><a href="' + esc(href) + '">' + esc(h.p.t) + (h.head ? ' \u203a ' + esc(h.head[0]) : '') +
             '</a><small>' + esc(h.snip) + '</small></li>';
    }).join('') || (q ? '<li><small>no match</small></li>' : '');
  }
  box.addEventListener('input', show);
  box.addEventListener('keydown', function (e) {
    var first = list.querySelector('a');
    if (e.key === 'Enter' && first) window.location.href = first.getAttribute('href');
  });
  var q = new URLSearchParams(window.location.search).get('q');
  if (q) { box.value = q; show(); }
})();
"""

def _apply_directives(nb):
    "Honour quarto cell options the way the real site does: include, echo; drop `#|` lines; plain links."
    keep = []
    for c in nb.cells:
        if c.cell_type == 'code':
            opts = dict(re.findall(r'^#\|\s*([\w-]+):\s*(.+?)\s*$', c.source, re.M))
            if opts.get('include') == 'false': continue
            alt = opts.get('fig-alt') or opts.get('fig-cap')
            if alt: c.metadata['alt'] = alt.strip('"\'')
            if opts.get('code-fold') == 'true':  # quarto folds the code under its summary; here <details> (FOLD_JS)
                c.metadata.setdefault('tags', []).append('fold')
                c.metadata['summary'] = opts.get('code-summary', 'Code').strip('"\'')
            c.source = '\n'.join(l for l in c.source.splitlines() if not l.lstrip().startswith('#|')).strip()
            if opts.get('echo') == 'false' or not c.source: c.metadata.setdefault('tags', []).append('remove_input')
            if opts.get('output') == 'false': c.outputs = []
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

def _inline(text:str) -> str:
    "Escaped HTML of a one-line markdown text whose `code` spans become <code> (titles, descriptions)."
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(text))

def _strip_tags(s:str) -> str: return html.unescape(re.sub(r'<[^>]+>', ' ', s))

def _visible(page_html:str, drop=('script', 'style')) -> str:
    "The text a reader can see: tags, and the elements named in `drop`, removed; entities decoded."
    return _strip_tags(re.sub(r'(?is)<(%s)\b.*?</\1>' % '|'.join(drop), ' ', page_html))

def _raw_math(page_html:str) -> list:
    "Raw `$...$` maths left in the visible text of a page (code, scripts and styles left out)."
    text = _visible(page_html, ('code', 'pre', 'script', 'style', 'math'))
    return [m.group(0)[:60] for m in _MATH.finditer(text)]

def _latex_in_math(page_html:str) -> list:
    "LaTeX commands the MathML converter did not know and left as text inside <math> (e.g. `\\arg`): they show raw on the page."
    return [m[:60] for math in re.findall(r'(?is)<math\b.*?</math>', page_html)
            for m in re.findall(r'\\[A-Za-z]+', html.unescape(re.sub(r'<[^>]+>', ' ', math)))]

def _title_backticks(page_html:str) -> list:
    "Page title, h1 and subtitle (`p.description`) whose rendered text still shows markdown backticks."
    pats = [r'<title>(.*?)</title>', r'<h1\b[^>]*>(.*?)</h1>', r'<p class=.description.>(.*?)</p>']
    return [t.strip()[:80] for p in pats for t in map(_strip_tags, re.findall(p, page_html, re.S | re.I)) if '`' in t]

_MDLINK = re.compile(r'\[([^\]\[\n]{1,200})\]\(([^()\s<>"]+)\)')
_LINKISH = re.compile(r'https?://|#|[\w./-]+\.(?:html|ipynb|md)(?:#|$)')  # so that `d[k](x)` in code is no link

def _raw_md_links(page_html:str) -> list:
    "Markdown links `[text](url)` left as plain text (code included: signature comments are code)."
    return [m.group(0)[:80] for m in _MDLINK.finditer(_visible(page_html)) if _LINKISH.match(m.group(2))]

def _md_links_to_html(body:str) -> str:
    "Turn the raw markdown links nbdev leaves in code (docments comments of signatures) into <a> links."
    def one(m):
        if not _LINKISH.match(m.group(2)): return m.group(0)
        return f'<a href="{m.group(2)}">' + re.sub(r'`([^`]+)`', r'<code>\1</code>', m.group(1)) + '</a>'
    return re.sub(r'(?s)<pre\b.*?</pre>', lambda pre: _MDLINK.sub(one, pre.group(0)), body)

_PLACEHOLDERS = ('https://diffaug.github.io', 'https://github.com/diffaug/diffaug')

def _placeholders(page_html:str, urls=_PLACEHOLDERS) -> list:
    "Links to, or mentions of, the placeholder sites of settings.ini (they do not exist)."
    text = re.sub(r'(?is)<(script|style)\b.*?</\1>', ' ', page_html)
    return sorted({m.group(0)[:90] for u in urls if u for m in re.finditer(re.escape(u.rstrip('/')) + r'[^"\'<>\s)]*', text)})

_INTERNAL = [re.compile(r'\bSPEC\b|SPEC\.md'), re.compile(r'\bthe spec(?:ification)?\b|\bpart [AB] of the\b|\bissues? #?\d+\b', re.I),
             # the product's voice: no lent machines, time limits, sessions, targets or bug stories in the pages
             re.compile(r'\blent\b|\btime limit\b|\b(?:this|a later|the next) session\b|\bfixed (?:a |the )?bug\b|'
                        r'\btargets? (?:is|are|was|were) (?:not )?met\b|\bwe aimed\b|-issue\d+', re.I)]

def _internal_wording(page_html:str) -> list:
    "References to our internal development documents (specification, issue numbers) in the visible text."
    text = _visible(page_html)
    return [re.sub(r'\s+', ' ', text[max(0, m.start() - 30):m.end() + 30]).strip() for r in _INTERNAL for m in r.finditer(text)]

def _event_keywords(page_html:str) -> list:
    "Signatures that list fastai's ~25 event keywords (a Callback subclass without an `__init__` of its own)."
    return sorted(set(re.findall(r'def\s+(\w+)\s*\((?:(?!\)\s*(?::|->)|\bdef\s).)*?\bafter_cancel_fit\s*:', _visible(page_html), re.S)))

def _remote_scripts(page_html:str) -> list:
    "Scripts or stylesheets loaded from the network (the preview must render offline)."
    return re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="(https?://[^"]+)"', page_html)

NO_ALT = 'No description has been provided for this image'

def _set_alts(body:str, alts:list) -> str:
    "The n-th image output gets the n-th cell's `fig-alt` (or `fig-cap`) as its alt text, as quarto gives it."
    it = iter(alts)
    def one(m):
        a = next(it, None)
        return f'alt="{html.escape(a, quote=True)}"' if a else m.group(0)
    return re.sub(f'alt="{NO_ALT}"', one, body)

def _missing_alt(page_html:str) -> int:
    "How many images on the page have no description (nbconvert's placeholder alt)."
    return page_html.count(NO_ALT)

def _title(nb):
    "Title and description from the processed notebook's front matter (a raw YAML cell)."
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.strip().startswith('---'):
            fm = yaml.safe_load(c.source.strip().strip('-')) or {}
            return fm.get('title', ''), fm.get('description', ''), c
    return '', '', None

def _toc(body:str) -> list:
    "(level, id, text) of the h2/h3 headings of a rendered page."
    return [(int(l), i, _strip_tags(t).replace('\u00b6', '').strip())
            for l, i, t in re.findall(r'<h([23])\b[^>]*\bid=["\']([^"\']+)["\'][^>]*>(.*?)</h\1>', body, re.S)]

def search_index(pages_html:dict, max_chars=20000) -> list:
    "Search entries `{u: page, t: title, h: [[heading, id], ...], x: text}` of rendered pages (nav, toc, scripts left out)."
    out = []
    for name, page in sorted(pages_html.items()):
        main = re.sub(r'(?is)<(head|nav|aside|script|style|svg)\b.*?</\1>', ' ', page)
        h1 = re.search(r'<h1\b[^>]*>(.*?)</h1>', main, re.S)
        title = _strip_tags(h1.group(1)).replace('\u00b6', '').strip() if h1 else name[:-5]
        heads = [[t, i] for l, i, t in _toc(main)]
        text = re.sub(r'\s+', ' ', _strip_tags(main).replace('\u00b6', '')).strip()[:max_chars]
        out.append({'u': name, 't': title, 'h': heads, 'x': text})
    return out

def write_sources(lib:Path, out:Path, pages=()) -> list:
    "The exported modules as HTML pages `src/<lib>/<module>.py.html`, one anchor per line (`#L42`)."
    from pygments import highlight
    from pygments.lexers import PythonLexer
    from pygments.formatters import HtmlFormatter
    written = []
    for py in sorted(p for p in lib.rglob('*.py') if p.name != '_modidx.py'):  # _modidx: nbdev's symbol index
        rel = py.relative_to(lib.parent)
        dest = out / 'src' / (str(rel) + '.html')
        up = '../' * len(rel.parts)
        code = highlight(py.read_text(), PythonLexer(), HtmlFormatter(nowrap=True)).split('\n')
        if code and not code[-1]: code.pop()
        lines = ''.join(f'<span class="ln" id="L{n}"><a href="#L{n}">{n}</a>{l}</span>\n' for n, l in enumerate(code, 1))
        doc = f'{py.stem}.html'
        link = f' &middot; documentation: <a href="{up}{doc}">{html.escape(py.stem)}</a>' if doc in pages else ''
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(str(rel))} - diffaug</title>"
                        f"<style>{CSS}{HtmlFormatter().get_style_defs('.highlight')}</style></head><body class='srcpage'><main>"
                        f"<p><a href='{up}index.html'>diffaug</a> &middot; source of <b>{html.escape(str(rel))}</b>{link}</p>"
                        f"<div class='highlight'><pre class='src'>{lines}</pre></div></main></body></html>")
        written.append(dest)
    return written

def _local_href(path:str) -> str:
    "A relative link to a notebook's page the way quarto writes it: `../24_report.html` -> `../report.html`."
    return '/'.join(re.sub(r'^\d+[a-z]?_', '', p) for p in path.split('/') if p != '.')

def render(proc: Path, out: Path, nbs: Path, cfg_host: str, git_url: str = '', lib: Path = None):
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    secs = sidebar(nbs)
    exporter = HTMLExporter(template_name='lab')
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}), enabled=True)
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    pages, bodies, titles = {}, {}, {}
    for nbp in sorted(proc.rglob('*.ipynb')):
        rel = nbp.relative_to(proc)
        if any(p.startswith(('_', '.')) for p in rel.parts): continue
        nb = nbformat.read(nbp, as_version=4)
        title, desc, fm = _title(nb)
        if fm is not None: nb.cells.remove(fm)
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"# {title}\n\n<p class='description'>{_inline(desc)}</p>"))
        nb.metadata['language_info'] = {'name': 'python'}
        _apply_directives(nb)
        for c in nb.cells:
            if c.cell_type == 'markdown': c.source = _mathml(c.source)
        folds = [c.metadata.get('summary', 'Code') for c in nb.cells if 'fold' in c.metadata.get('tags', [])]
        alts = [c.metadata.get('alt') for c in nb.cells if c.cell_type == 'code'
                for o in c.get('outputs', []) if any(k.startswith('image/') for k in o.get('data', {}))]
        body, _ = exporter.from_notebook_node(nb)
        body = _set_alts(body, alts)
        body = body.replace('</body>', f"<script>window.FOLD = {json.dumps(folds)};</script></body>", 1)
        body = re.sub(r'(?is)<script[^>]*mathjax[^>]*>\s*</script>', '', body)  # maths is MathML now: no CDN script
        body = re.sub(r'(?is)<script type="text/x-mathjax-config">.*?</script>', '', body)
        body = re.sub(r'(?is)<script src="https?://[^"]*require[^"]*"></script>', '', body)  # widgets' loader, offline
        name = page_name(rel)
        body = re.sub(r'(?s)<title>.*?</title>', f"<title>{html.escape(title.replace('`', ''))} - diffaug</title>", body, count=1)
        pages[name], bodies[name], titles[name] = nb, body, title.replace('`', '') or name[:-5]
    order = [page_name(Path(p)) for s, ps in secs for p in ps if page_name(Path(p)) in bodies]
    final = {}
    for name, body in bodies.items():
        up = '../' * name.count('/')
        nav = ''.join(f"<h4>{html.escape(s)}</h4>" + ''.join(
            f"<a class='{'cur' if page_name(Path(p)) == name else ''}' href='{up}{page_name(Path(p))}'>"
            f"{html.escape(titles.get(page_name(Path(p)), page_name(Path(p))[:-5].split('/')[-1]))}</a>" for p in ps) for s, ps in secs)
        search = (f"<input id='search' type='search' placeholder='Search the docs' aria-label='Search' data-up='{up}'>"
                  "<ul id='search-results'></ul>")
        body = re.sub(r'href="(?!https?:|#|mailto:)([^"#]+?)\.ipynb', r'href="\1.html', body)
        body = re.sub(r'href="(?!https?:|#|mailto:)([^"#]+\.html)', lambda m: 'href="' + _local_href(m.group(1)), body)
        body = _md_links_to_html(body)
        if cfg_host: body = body.replace(f'href="{cfg_host}/', f'href="{up}')
        if git_url: body = re.sub(rf'href="{re.escape(git_url.rstrip("/"))}/blob/[^/"]+/([^"#]+\.py)(#L\d+)?"', rf'href="{up}src/\1.html\2"', body)
        toc = ''.join(f"<a class='h{l}' href='#{i}'>{html.escape(t)}</a>" for l, i, t in _toc(body))
        aside = f"<aside class='toc'><b>On this page</b>{toc}</aside>" if toc else ''
        k = order.index(name) if name in order else None
        prev_next = '' if k is None else "<div class='pagenav'>" + (
            f"<a class='prev' href='{up}{order[k-1]}'>&larr; {html.escape(titles[order[k-1]])}</a>" if k > 0 else '<span></span>') + (
            f"<a class='next' href='{up}{order[k+1]}'>{html.escape(titles[order[k+1]])} &rarr;</a>" if k + 1 < len(order) else '<span></span>') + '</div>'
        body = re.sub(r'(<body[^>]*>)', lambda m: rf"{m.group(1)}<nav><b>diffaug</b>{search}{nav}</nav><main>", body, count=1)
        scripts = f"<script src='{up}search-index.js'></script><script src='{up}search.js'></script><script>{FOLD_JS}</script>"
        body = body.replace('</body>', f'{prev_next}</main>{aside}{scripts}</body>', 1).replace('</head>', f'<style>{CSS}</style></head>', 1)
        dest = out / name; dest.parent.mkdir(parents=True, exist_ok=True); dest.write_text(body)
        final[name] = body
    (out / 'search-index.js').write_text('window.DIFFAUG_INDEX = ' + json.dumps(search_index(final)) + ';\n')
    (out / 'search.js').write_text(SEARCH_JS)
    if lib is not None: write_sources(lib, out, set(bodies))
    return pages, secs

def check(out: Path, pages: dict, secs, placeholders=_PLACEHOLDERS) -> list:
    "Every problem of the built preview in `out`, as one line each (empty: all checks pass)."
    problems, out = [], Path(out).resolve()
    for s, ps in secs:
        for p in ps:
            if not (out / page_name(Path(p))).exists(): problems.append(f"sidebar page {p} ({s}) was not built")
    for name, nb in pages.items():
        for i, c in enumerate(nb.cells):
            for o in c.get('outputs', []):
                txt = o.get('text', '') if o.get('output_type') == 'stream' else str(o.get('data', {}).get('text/plain', ''))
                if o.get('output_type') == 'error' or 'Traceback (most recent call last)' in txt:
                    problems.append(f"{name}: cell {i} shows a Python traceback or error output")
    texts = {f: f.read_text() for f in out.rglob('*.html')}
    for f, page in texts.items():
        rel = f.relative_to(out)
        for what, found in [('raw maths not rendered', _raw_math(page)),
                            ('LaTeX command left raw inside the maths (write it another way, e.g. \\operatorname*{argmax})', _latex_in_math(page)),
                            ('title or subtitle shows literal backticks', _title_backticks(page)),
                            ('raw markdown link left as text', _raw_md_links(page)),
                            ('placeholder URL (settings.ini doc_host/git_url: no such site)', _placeholders(page, placeholders)),
                            ('internal development wording', _internal_wording(page)),
                            ('signature lists fastai event keywords (give the class an __init__)', _event_keywords(page)),
                            ('loads from the network', _remote_scripts(page)),
                            ('figure without a description (give its cell `#| fig-alt: "..."`)', ['x'] * _missing_alt(page))]:
            if found: problems.append(f"{rel}: {what}: {found[:3]}")
    ids = {f: set(re.findall(r'\bid=["\']([^"\']+)["\']', t)) for f, t in texts.items()}
    for f, page in texts.items():
        for href in re.findall(r'href=["\']([^"\']+)["\']', page):
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

def _crop_to_content(png: Path, x0=230, x1=1000, pad=40) -> int:
    "Cut the screenshot below the last row the main column draws on (the sidebar fills the window's height); its height."
    import numpy as np
    from PIL import Image
    im = Image.open(png).convert('RGB')
    a = np.asarray(im)[:, x0:min(x1, im.width)]
    rows = np.flatnonzero((a < 235).any(axis=(1, 2)))
    h = min(im.height, int(rows.max()) + pad) if len(rows) else im.height
    im.crop((0, 0, im.width, h)).save(png)
    return h

def screenshots(out: Path, dest: Path, width=1280, height=None, max_height=48000):
    """A PNG of every page of the preview in `out`, into `dest`: `height` pixels tall, or (None) the whole page, as a
    reader scrolls through it (up to `max_height`)."""
    exe = chromium()
    if exe is None: raise FileNotFoundError("no chromium found: `apt-get install chromium` (Debian) for screenshots")
    dest.mkdir(parents=True, exist_ok=True)
    shots = []
    for f in sorted(out.rglob('*.html')):
        if f.relative_to(out).parts[0] == 'src': continue  # module sources: one plain page each, not docs pages
        png = dest / (str(f.relative_to(out))[:-5].replace('/', '__') + '.png')
        h = height or 6000
        while True:  # whole page: a window taller than the page, cropped (4x taller when the page fills it)
            subprocess.run([exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                            '--disable-background-networking', '--disable-component-update', '--disable-sync',
                            '--hide-scrollbars', f'--user-data-dir={dest / ".chromium"}', '--virtual-time-budget=3000',
                            f'--window-size={width},{h}', f'--screenshot={png}', f.as_uri()],
                           check=True, capture_output=True, timeout=180)
            if height is not None: break
            if _crop_to_content(png) < h or h >= max_height: break
            h = min(4 * h, max_height)
        shots.append(png)
    shutil.rmtree(dest / '.chromium', ignore_errors=True)
    return shots

def dump_dom(page: Path, query: str = '') -> str:
    "The DOM of `page` (with `query`, e.g. `?q=denoiser`, appended to its URL) after Chromium has loaded it (scripts run)."
    exe = chromium()
    if exe is None: raise FileNotFoundError("no chromium found: `apt-get install chromium` (Debian)")
    r = subprocess.run([exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                        '--disable-background-networking', '--disable-component-update', '--disable-sync',
                        '--dump-dom', page.as_uri() + query], check=True, capture_output=True, text=True, timeout=120)
    return r.stdout

def build(out=None, n_workers=1):
    from nbdev.config import get_config
    cfg = get_config()
    out = Path(out) if out else ROOT / '_preview'
    proc = process(n_workers)
    host = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    git_url = cfg.get('git_url', '').rstrip('/')
    pages, secs = render(proc, out, cfg.nbs_path, host, git_url, cfg.lib_path)
    return out, pages, check(out, pages, secs, (cfg.get('doc_host', ''), git_url))

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
