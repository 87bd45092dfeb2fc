"Project-level checks: the README commands, CI and the package metadata agree."
import re, subprocess, sys
from pathlib import Path
import diffaug

ROOT = Path(__file__).resolve().parent.parent

def readme_command(n):
    lines = (ROOT / 'README.md').read_text().splitlines()
    heads = [i for i, l in enumerate(lines) if re.match(rf'# {n}\. install and run', l)]
    assert len(heads) == 1, f'README must hold exactly one "# {n}. install and run ..." line'
    return lines[heads[0] + 1]

def test_readme_commands_use_constraints():
    for n in (1, 2):
        cmd = readme_command(n)
        assert 'pip install -c constraints.txt' in cmd and cmd.startswith('python3 -m venv .venv')
    assert readme_command(1).endswith('diffaug demo')

def test_ci_runs_readme_test_command():
    ci = (ROOT / '.ci' / 'run').read_text()
    assert "# 2. install and run all the tests" in ci  # .ci/run extracts the commands from the README itself
    assert "# 1. install and run the main job on data that ships with the installed packages" in ci

def test_readme_is_generated_from_index():
    sys.path.insert(0, str(ROOT / 'tools'))
    import build_readme
    assert build_readme.build(ROOT) == (ROOT / 'README.md').read_text(), 'README.md is stale: run `python tools/build_readme.py`'

def test_results_claims_are_generated_from_the_csvs():
    "Every method-B number in the README and the tutorials' claims blocks equals what tools/results_claims.py computes."
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'results_claims.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    index = (ROOT / 'nbs' / 'index.ipynb').read_text()
    assert 'claims:readme-method-b' in index and 'claims:digits-robustness' in (ROOT / 'nbs' / 'tutorials' / 'digits.ipynb').read_text()

def test_results_claims_statuses():
    "The words of tools/results_claims.py against hand-made paired results."
    sys.path.insert(0, str(ROOT / 'tools'))
    import results_claims as rc
    up6 = dict(mean=0.02, sd=0.01, wins=6, n=6, p=2 / 64)
    up5 = dict(mean=0.02, sd=0.01, wins=5, n=5, p=2 / 32)
    mixed = dict(mean=0.001, sd=0.01, wins=3, n=5, p=0.8)
    assert rc.status(up6, +1) == '**reproduces**'
    assert rc.status(up6, -1).startswith('**does not reproduce**')
    assert rc.status(up5, +1) == 'same direction in every seed, not significant at 5 seeds'
    assert rc.status(up5, -1).startswith('**does not reproduce**: the other way in every seed')
    assert rc.status(mixed, +1).startswith('a tie')
    assert rc.summary([('a', 'x'), ('b', 'y'), ('c', 'x')]) == 'a, c: x; b: y'
    # Holm: sorted p 0.01 < 0.05/3, 0.02 < 0.05/2, 0.04 < 0.05/1 -> 3; with 0.03 first at 0.05/3 = 0.0167 -> 0
    assert rc.holm([0.04, 0.01, 0.02]) == 3 and rc.holm([0.03, 0.04, 0.05]) == 0 and rc.holm([0.001, 0.04, 0.03]) == 1

def test_constraints_pin_tested_set():
    txt = (ROOT / 'constraints.txt').read_text()
    for pin in ['torch==2.14.1', 'torchvision==0.29.1', 'nbdev==2.4.14', 'fastai>=2.8,<2.8.8', 'execnb<0.2']:
        assert pin in txt

def test_version_matches_settings():
    ini = (ROOT / 'settings.ini').read_text()
    assert re.search(r'^version = (.+)$', ini, re.M).group(1).strip() == diffaug.__version__

def test_setup_py_has_no_pkg_resources():
    assert 'pkg_resources' not in (ROOT / 'setup.py').read_text()

def test_console_script_help():
    out = subprocess.run([sys.executable, '-m', 'diffaug.cli', '--help'], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and 'demo' in out.stdout

def test_benchmark_scripts_start():
    "Every benchmark script imports what it needs from the installed library and explains itself with --help."
    scripts = sorted((ROOT / 'benchmarks').glob('*.py'))
    assert len(scripts) >= 5
    code = ('import runpy, sys\n'
            'for f in sys.argv[1:]:\n'
            '    sys.argv = [f, "--help"]\n'
            '    try: runpy.run_path(f, run_name="__main__")\n'
            '    except SystemExit as e: assert e.code in (0, None), (f, e.code)\n')
    out = subprocess.run([sys.executable, '-c', code, *map(str, scripts)], capture_output=True, text=True, timeout=300,
                         cwd=ROOT / 'benchmarks')
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count('usage:') == len(scripts), out.stdout[-2000:]

def _mixed_import_cells(nb_path):
    "Code cells that mix imports with other statements: nbdev's docs build runs every cell holding an import."
    import ast, json
    bad = []
    for i, c in enumerate(json.loads(nb_path.read_text())['cells']):
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        if re.search(r'^#\|\s*(export|exports|exporti|exec_doc)\b|^#\|\s*eval:\s*false', src, re.M): continue
        try: tree = ast.parse('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!'))))
        except SyntaxError: continue
        has_imp = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
        other = any(not isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body)
        if has_imp and other: bad.append(i)
    return bad

def test_notebook_cells_keep_imports_apart():
    bad = {str(p.relative_to(ROOT)): c for p in sorted((ROOT / 'nbs').rglob('*.ipynb'))
           if not p.name.startswith('_') and (c := _mixed_import_cells(p))}
    assert not bad, f'cells mixing imports with other code (nbdev runs them while building docs; split them): {bad}'

def _library_imports():
    "{module: set of diffaug modules it imports (top level and inside functions)} and the private names imported across modules."
    import ast
    graph, private = {}, []
    for f in sorted((ROOT / 'diffaug').glob('*.py')):
        if f.name.startswith('_'): continue
        mod, deps = f.stem, set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = ('diffaug.' + node.module if node.level else node.module) if node.module else 'diffaug'
                if name.startswith('diffaug.'):
                    deps.add(name.split('.')[1])
                elif name == 'diffaug' and (node.level or node.module == 'diffaug'):  # `from . import core`, `from diffaug import core`
                    deps |= {a.name for a in node.names if (ROOT / 'diffaug' / f'{a.name}.py').exists()}
                    private += [f'{mod} imports {a.name} from {name}' for a in node.names if a.name.startswith('_')]
            elif isinstance(node, ast.Import):
                deps |= {a.name.split('.')[1] for a in node.names if a.name.startswith('diffaug.')}
                if any(a.name.split('.')[0] in ('benchmarks', 'tools') for a in node.names): deps.add('<outside>')
        graph[mod] = deps - {mod}
    return graph, private

LAYERS = {  # bottom to top; a module imports only from its own layer or the ones listed before it
    'foundation': ['distributed', 'core', 'streaming', 'io', 'learner', 'trunks', 'docs'],
    'diffusion': ['schedule', 'nets', 'denoiser', 'training', 'sampling'],
    'data': ['datasets', 'rows', 'corruptions'],
    'method A': ['encoder', 'losses', 'augment', 'contrastive', 'tl'],
    'method B': ['classifier', 'semisup', 'guidance', 'robustness'],
    'evaluation': ['metrics'],
    'faces': ['report', 'cli', 'explore'],
}
# layers that stand side by side: neither imports the other
SIBLINGS = [('diffusion', 'data'), ('method A', 'method B')]

def test_library_layers_point_down():
    "The import graph of diffaug/ is acyclic, no module imports another's private names, nothing imports benchmarks/."
    graph, private = _library_imports()
    assert not private, private
    assert not any('<outside>' in d for d in graph.values())
    import graphlib
    graphlib.TopologicalSorter(graph).static_order()  # raises CycleError on a cycle
    assert 'bench_classify' not in graph, 'benchmarks live in benchmarks/, not in the library'

def test_library_layers_are_named():
    "Every module sits in one named layer; imports point to the same layer or below; method A and method B never import each other."
    graph, _ = _library_imports()
    layer_of = {m: i for i, (_, ms) in enumerate(LAYERS.items()) for m in ms}
    assert len(layer_of) == sum(map(len, LAYERS.values())), 'a module is listed in two layers'
    names = list(LAYERS)
    assert sorted(layer_of) == sorted(graph), f'modules without a layer: {sorted(set(graph) - set(layer_of))}; layers naming no module: {sorted(set(layer_of) - set(graph))}'
    side = {frozenset((names.index(a), names.index(b))) for a, b in SIBLINGS}
    bad = [f'{m} ({names[layer_of[m]]}) imports {d} ({names[layer_of[d]]})' for m, deps in graph.items() for d in deps
           if layer_of[d] > layer_of[m] or frozenset((layer_of[d], layer_of[m])) in side]
    assert not bad, bad

def test_core_install_needs_no_widgets():
    ini = (ROOT / 'settings.ini').read_text()
    req = re.search(r'^requirements = (.+)$', ini, re.M).group(1)
    assert 'ipywidgets' not in req and 'ipywidgets' in re.search(r'^widgets_requirements = (.+)$', ini, re.M).group(1)

def test_results_index_lists_every_file():
    "benchmarks/results/README.md names every result file in its table (first column, in backticks), names no missing one, and no file name is a variant."
    results = ROOT / 'benchmarks' / 'results'
    files = {p.relative_to(results).as_posix() for p in results.rglob('*') if p.is_file()} - {'README.md'}
    rows = [l for l in (results / 'README.md').read_text().splitlines() if l.startswith('| ') and not l.startswith('| files |')]
    named = {n for l in rows for n in re.findall(r'`([^`]+)`', l.split(' | ')[0])}
    assert not files - named, f'result files missing from benchmarks/results/README.md: {sorted(files - named)}'
    assert not named - files, f'benchmarks/results/README.md names files that do not exist: {sorted(named - files)}'
    variants = sorted(f for f in files if re.search(r'-(rerun|quick|partial|smoke|before|after|issue\d+)', f))
    assert not variants, f'variant file names (rerun over the current file, or give the configuration a plain tag): {variants}'

def test_api_notebooks_are_small_and_in_reading_order():
    """API notebooks stay under 400 KB (outputs included: their figures are saved at 1x, page width, as the docs show
    them) and their numbers follow the sidebar's reading order."""
    import yaml
    big = {p.name: p.stat().st_size // 1024 for p in (ROOT / 'nbs').glob('[0-9]*.ipynb') if p.stat().st_size > 400 * 1024}
    assert not big, f'API notebooks over 400 KB (KB): {big}; shrink their figures or move the gallery to a tutorial'
    def entries(node):
        if isinstance(node, str): yield node
        elif isinstance(node, dict): yield from entries(node.get('contents', []))
        elif isinstance(node, list):
            for n in node: yield from entries(n)
    side = [e for e in entries(yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents'])
            if re.match(r'\d+_', e)]
    nums = [int(e.split('_')[0]) for e in side]
    assert nums == sorted(nums) and len(set(nums)) == len(nums), f'sidebar order vs notebook numbers: {side}'
    assert sorted(side) == sorted(p.name for p in (ROOT / 'nbs').glob('[0-9]*.ipynb')), 'every numbered notebook is in the sidebar'
