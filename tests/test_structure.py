"""The shape of the house: imports run one way, every module sits in the wing of its job, the command
modules hold no training or selection logic, the docs are current and every link resolves."""

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import prunefuse
from prunefuse.cli.reference import cli_reference

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "prunefuse"
TOP_LEVEL = {"__init__", "__main__", "errors", "validation", "flops", "distributed"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every prunefuse module ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("prunefuse")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            elif node.module and node.module.startswith("prunefuse"):
                source = node.module
            else:
                continue
            for alias in node.names:
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
    return {m for m in found if m in known and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    mods = modules()
    cycle = find_cycle({name: imports(name, path, set(mods)) for name, path in mods.items()})
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle(tmp_path):
    """The check above is not vacuous: a module importing its importer is caught, function-level too."""
    texts = {"a": "from . import b\n", "b": "def f():\n    from .a import x\n", "c": "from . import a\n"}
    for stem, text in texts.items():
        (tmp_path / f"{stem}.py").write_text(text)
    names = {f"prunefuse.{s}" for s in texts}
    graph = {f"prunefuse.{s}": imports(f"prunefuse.{s}", tmp_path / f"{s}.py", names) for s in texts}
    assert graph["prunefuse.b"] == {"prunefuse.a"}
    assert find_cycle(graph) == ["prunefuse.a", "prunefuse.b", "prunefuse.a"]
    graph["prunefuse.b"] = set()
    assert find_cycle(graph) is None


def test_only_cross_cutting_modules_sit_at_the_top():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == TOP_LEVEL, f"loose modules: {sorted(top - TOP_LEVEL)}"


def test_command_modules_hold_no_training_or_selection_logic():
    forbidden = {"fit", "predict", "evaluate", "select", "prune", "fuse", "kd_loss", "TensorBatches"}
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert not names & forbidden, f"{path.name} imports {sorted(names & forbidden)}"


def test_public_api_is_documented():
    for name in prunefuse.__all__:
        obj = getattr(prunefuse, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"prunefuse.{name} has no docstring"


def test_cli_reference_is_current():
    assert (ROOT / "docs" / "cli.md").read_text() == cli_reference(), \
        "docs/cli.md is stale: run python -m prunefuse.cli.reference > docs/cli.md"


GENERATED_PAGES = {"benchmarks.md"}  # docs/hooks/benchmarks.py publishes BENCHMARKS.md under this name
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", ["README.md", "BENCHMARKS.md", *[str(p.relative_to(ROOT))
                                                                 for p in (ROOT / "docs").glob("*.md")]])
def test_links_resolve_inside_the_repository(page):
    for target in LINK.findall((ROOT / page).read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        assert not target.startswith(".."), f"{page} links outside the repository: {target}"
        generated = page.startswith("docs/") and target in GENERATED_PAGES
        assert generated or ((ROOT / page).parent / target).exists(), f"{page}: broken link {target}"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
                    reason="the docs extra is not installed (pip install -e '.[docs]')")
def test_docs_build_strict(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "methods" / "index.html").is_file()
