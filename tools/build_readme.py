"""Regenerate README.md from nbs/index.ipynb without quarto.

Usage: python tools/build_readme.py
Where quarto is installed, `nbdev_readme` does the same job. Here the index notebook is processed the way
nbdev's docs build treats it (hidden cells and `#|` directive lines removed, the title and description turned
into a heading and a lead paragraph) and written as Markdown by nbconvert, outputs included.
"""
import re, sys
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter

def _hidden(cell):
    src = cell.source
    return cell.cell_type == 'code' and bool(re.search(r'^#\|\s*(hide|export|exporti|default_exp)\b', src, re.M))

def build(root: Path) -> str:
    nb = nbformat.read(root/'nbs'/'index.ipynb', as_version=4)
    cells = []
    for c in nb.cells:
        if _hidden(c): continue
        if c.cell_type == 'code':
            c.source = '\n'.join(l for l in c.source.splitlines() if not l.lstrip().startswith('#|')).strip()
            c.outputs = [o for o in c.get('outputs', []) if o.get('output_type') != 'stream' or o.get('name') != 'stderr']
        cells.append(c)
    first = cells[0]
    if first.cell_type == 'markdown':  # '# title\n\n> description' -> heading + lead paragraph
        first.source = re.sub(r'^>\s*(.*)$', r'\1', first.source, flags=re.M)
    nb.cells = cells
    nb.metadata['language_info'] = {'name': 'python'}  # nbdev_clean strips it; keeps ```python fences
    body, _ = MarkdownExporter().from_notebook_node(nb)
    note = '<!-- generated from nbs/index.ipynb by tools/build_readme.py (or nbdev_readme); do not edit -->\n\n'
    return note + re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'

if __name__ == '__main__':
    root = Path(__file__).resolve().parent.parent
    (root/'README.md').write_text(build(root))
    print('wrote', root/'README.md', file=sys.stderr)
