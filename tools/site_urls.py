"""Point settings.ini at the GitHub repository the site is published from.

    python tools/site_urls.py OWNER/REPO        # rewrites user, doc_host, doc_baseurl and git_url in settings.ini

The deploy workflow (.github/workflows/deploy.yaml) runs this with `${{ github.repository }}` before `nbdev_docs`, so
the site's links (`site-url`, `repo-url`, the "source" links of the API pages) are those of whichever repository the
site is built in: https://OWNER.github.io/REPO for the pages and https://github.com/OWNER/REPO for the code.
"""
import re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def site_settings(repository:str) -> dict:
    "settings.ini values for the GitHub repository `repository` ('owner/name')."
    if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+', repository or ''):
        raise ValueError(f"expected OWNER/REPO (e.g. diffaug/diffaug), got {repository!r}")
    owner, name = repository.split('/')
    return {'user': owner, 'doc_host': f'https://{owner.lower()}.github.io', 'doc_baseurl': f'/{name}',
            'git_url': f'https://github.com/{owner}/{name}'}

def rewrite(ini:str, values:dict) -> str:
    "`ini` (the text of settings.ini) with the given keys set; every other line as it was."
    for k, v in values.items():
        ini, n = re.subn(rf'(?m)^{re.escape(k)}\s*=.*$', f'{k} = {v}', ini)
        if n != 1: raise ValueError(f"settings.ini has {n} lines for {k!r}, expected 1")
    return ini

if __name__ == '__main__':
    if len(sys.argv) != 2: raise SystemExit(__doc__)
    p = ROOT / 'settings.ini'
    p.write_text(rewrite(p.read_text(), site_settings(sys.argv[1])))
    print('\n'.join(f"{k} = {v}" for k, v in site_settings(sys.argv[1]).items()))
