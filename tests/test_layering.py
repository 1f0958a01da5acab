"""The package's shape (issue #14): imports run one way, down the layers

    data, params, configs  →  network  →  diffusion.core  →
        diffusion.training, diffusion.families, evaluation  →  the CLIs (train, generate, …)

(a module may import its own layer or any lower one, never a higher one), there is no import
cycle between modules, nothing outside the registry branches on a model's name, and no module
anywhere is over 400 lines (known debt listed below, to shrink). The scan reads the source (AST), so imports inside functions
count too. A checker fed a tree with one injected violation must report it.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("data", "network", "diffusion", "evaluation", "configs")
CLIS = ("train", "generate", "export", "evaluate", "app", "demo")

# Longest prefix wins. Same rank = same layer: allowed, cycles excepted.
RANKS = {"params": 0, "configs": 0, "data": 0,
         "diffusion": 4,                 # the package's API: __init__, pipeline (over the families)
         "diffusion.requests": 2,        # typed requests, which the families may take
         "network": 1,
         "diffusion.core": 2,
         "diffusion.training": 3, "diffusion.families": 3, "evaluation": 3,
         **{cli: 4 for cli in CLIS}}
LONG_FILE_EXCEPTIONS = {"network/diffwave/fused.py"}   # the hand-written backward, one piece


def modules(root: Path) -> dict:
    """{module name: path} of the package's modules below `root`."""
    found = {}
    for name in (*PACKAGES, ):
        for path in sorted((root / name).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    for name in ("params", *CLIS):
        if (root / f"{name}.py").exists():
            found[name] = root / f"{name}.py"
    return found


def imports(path: Path, known: dict) -> set:
    """The project modules `path` imports (a `from pkg import sub` names pkg.sub)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                     else node.module for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:            # a.b.c: the nearest known module
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def rank(module: str):
    best = max((p for p in RANKS if module == p or module.startswith(p + ".")),
               key=len, default=None)
    return None if best is None else RANKS[best]


def graph(root: Path) -> dict:
    known = modules(root)
    return {m: imports(p, known) - {m} for m, p in known.items()}


def upward_imports(edges: dict) -> list:
    """(importer, imported) pairs where the imported module sits on a higher layer."""
    return sorted((a, b) for a, deps in edges.items() for b in deps
                  if rank(a) is not None and rank(b) is not None and rank(b) > rank(a))


def cycles(edges: dict) -> list:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_upward_import():
    assert upward_imports(graph(ROOT)) == []


def test_no_import_cycle():
    assert cycles(graph(ROOT)) == []


def test_every_module_has_a_layer():
    assert [m for m in modules(ROOT) if rank(m) is None] == []


def test_the_checker_fails_on_injected_violations(tmp_path):
    for name in (*PACKAGES, "network/sub"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "data" / "clean.py").write_text("import numpy\nfrom data import other\n")
    (tmp_path / "data" / "other.py").write_text("X = 1\n")
    (tmp_path / "network" / "sub" / "net.py").write_text("from data.clean import numpy\n")
    edges = graph(tmp_path)
    assert upward_imports(edges) == [] and cycles(edges) == []
    # An upward import, inside a function (what a lazy import would hide from a quick look):
    (tmp_path / "data" / "bad.py").write_text("def f():\n    from network.sub import net\n")
    assert upward_imports(graph(tmp_path)) == [("data.bad", "network.sub.net")]
    # A cycle within one layer:
    (tmp_path / "data" / "other.py").write_text("import data.clean\n")
    assert cycles(graph(tmp_path)) == [["data.clean", "data.other"]]


def test_clis_do_not_branch_on_the_model():
    for cli in CLIS:
        text = (ROOT / f"{cli}.py").read_text()
        assert "params.model ==" not in text, cli
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
                 and p.name != "test_layering.py"
                 and re.search(r"hasattr\(\s*(self\.)?family\b", p.read_text())]
    assert offenders == []


def test_no_family_method_takes_an_argparse_namespace():
    """Families talk to callers in typed requests (diffusion/requests.py), never in `args`:
    a family method with a parameter named args/namespace is a leak of a CLI into the core."""
    offenders = []
    for path in (ROOT / "diffusion").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                offenders += [f"{path.relative_to(ROOT)}: {node.name}.{f.name}"
                              for f in node.body if isinstance(f, ast.FunctionDef)
                              and {a.arg for a in f.args.args} & {"args", "namespace"}]
    assert offenders == []


def python_files(root: Path) -> list:
    """Every .py of the tree (hidden folders such as .venv left out)."""
    return sorted(p for p in root.rglob("*.py")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def long_modules(root: Path, limit: int = 400) -> list:
    """"path: lines" of every module over `limit` lines, in every folder, params.py and the
    CLIs (the exceptions below aside)."""
    return [f"{p.relative_to(root)}: {n}" for p in python_files(root)
            if (n := len(p.read_text().splitlines())) > limit
            and str(p.relative_to(root)) not in LONG_FILE_EXCEPTIONS | LONG_FILE_DEBT]


MODEL_BRANCH = re.compile(r"\.model\s*(==|!=|not\s+in\b|in\b)")


def model_branches(root: Path) -> list:
    """"path:line" of every branch on a model name (`.model ==|!=|in`) outside the registry,
    which alone maps names to families; tests aside."""
    return [f"{p.relative_to(root)}:{i}" for p in python_files(root)
            if p.relative_to(root).parts[0] != "tests"
            and str(p.relative_to(root)) != "diffusion/families/registry.py"
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if MODEL_BRANCH.search(line) and str(p.relative_to(root)) not in MODEL_BRANCH_DEBT]


# Known debt (issue #28), to shrink, never to grow: a file leaves the list when it is mended.
LONG_FILE_DEBT = {"params.py", "app.py", "evaluation/report.py", "tests/test_evaluate.py"}
MODEL_BRANCH_DEBT = {"params.py", "train.py", "diffusion/families/mel/pipeline.py",
                     "diffusion/families/mel/vae.py", "diffusion/families/text_to_audio/family.py",
                     "evaluation/decoder_ceiling.py"}


def test_no_long_module():
    assert long_modules(ROOT) == []


def test_no_branch_on_the_model_name_outside_the_registry():
    assert model_branches(ROOT) == []


def test_the_debt_lists_hold_only_real_debt():
    """A mended file must leave its list (else the list would hide a new violation there)."""
    lengths = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
               for p in python_files(ROOT)}
    assert [f for f in LONG_FILE_DEBT if lengths.get(f, 0) <= 400] == []
    branching = {f for f in MODEL_BRANCH_DEBT
                 if MODEL_BRANCH.search((ROOT / f).read_text()) if (ROOT / f).exists()}
    assert MODEL_BRANCH_DEBT - branching == set()


def test_the_size_and_branch_rules_fail_on_injected_violations(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ok.py").write_text("x = 1\n" * 400)
    (tmp_path / "tool.py").write_text("if params.model_dir == 1:\n    pass\n")
    assert long_modules(tmp_path) == [] and model_branches(tmp_path) == []
    (tmp_path / "data" / "big.py").write_text("x = 1\n" * 401)
    (tmp_path / "tool.py").write_text("if params.model in ('a', 'b'):\n    pass\n")
    (tmp_path / "app2.py").write_text("ok = run.model != 'x'\n")
    assert long_modules(tmp_path) == ["data/big.py: 401"]
    assert model_branches(tmp_path) == ["app2.py:1", "tool.py:1"]
