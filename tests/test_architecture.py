"""The layout's rules, checked on the source: inference never imports training, no import cycles, small files."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
sys.path.insert(0, str(REPO / "scripts"))

import check_record  # noqa: E402

PACKAGE = SRC / "styleid"
MAX_LINES = 260  # "about 250": a file past this holds more than one concern


def _top_level_imports(path: Path) -> set[Path]:
    """Project modules a file imports at module level (what runs on import: the edges a cycle would need)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[])
    probe = path.with_name(f".probe_{path.stem}.py")
    try:
        probe.write_text(ast.unparse(top))
        return {m for m in check_record._imported_modules(probe, SRC) if m != path and m.name != "__init__.py"}
    finally:
        probe.unlink()


def test_models_search_and_inference_never_import_training():
    for room in ("models", "search", "inference"):
        for module in (PACKAGE / room).rglob("*.py"):
            imported = check_record._imported_modules(module, SRC)
            assert not [m for m in imported if "training" in m.relative_to(PACKAGE).parts], f"{module.relative_to(REPO)} imports training/"


def test_no_import_cycles():
    modules = [m for m in PACKAGE.rglob("*.py") if m.name != "__init__.py"]
    graph = {m: _top_level_imports(m) for m in modules}
    state: dict[Path, int] = {}

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(str(p.relative_to(PACKAGE)) for p in [*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for module in modules:
        if module not in state:
            visit(module, [])


def test_no_source_file_grows_past_about_250_lines():
    files = [*PACKAGE.rglob("*.py"), *(REPO / "stages").glob("*.py")]
    long = {str(f.relative_to(REPO)): n for f in files if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
