"""The layout's rules, checked on the source: inference never imports training, no import cycles, small files."""

from __future__ import annotations

import ast
import io
import re
import sys
import tempfile
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
sys.path.insert(0, str(REPO / "scripts"))

import check_record  # noqa: E402

PACKAGE = SRC / "styleid"
MAX_LINES = 250  # a file past this holds more than one concern


def _top_level_imports(path: Path) -> set[Path]:
    """Project modules a file imports at module level (what runs on import: the edges a cycle would need)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[])
    with tempfile.TemporaryDirectory() as folder:  # never beside the module: other tests scan the package meanwhile
        probe = Path(folder) / f"probe_{path.stem}.py"
        probe.write_text(ast.unparse(top))
        return {m for m in check_record._imported_modules(probe, SRC) if m != path and m.name != "__init__.py"}


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


def _room(module: Path) -> str:
    """A module's room: its package under styleid/ (data, inference, ...), or the module itself at the top (fileio, ...)."""
    parts = module.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def test_no_package_imports_one_that_imports_it_back():
    """Rooms form a layered graph: counting every import (a function's own too), no room reaches itself again."""
    graph: dict[str, set[str]] = {}
    for module in PACKAGE.rglob("*.py"):
        for imported in check_record._imported_modules(module, SRC):
            if imported != PACKAGE / "__init__.py" and module != PACKAGE / "__init__.py" and _room(module) != _room(imported):
                graph.setdefault(_room(module), set()).add(_room(imported))
    assert "distributed" not in graph  # its Ray engine is inference's, its DDP launcher training's

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph.get(start, ()))

    assert [room for room in graph if reaches(room, room, {room})] == []


# The rule: comments and docstrings say what and why; a measured figure lives in metrics/ or reports/, never in code. A
# measurement shows as a signed gain (+24.3), a percentage other than an interval's 95%, a decimal of three or more
# digits (45.7, 0.965) or a number with a unit of speed or size (images/s, ms, MB).
FIGURE = re.compile(r"(?<![\w.])\+\d|(?<![\w.])(?!95\s?%)\d+(?:\.\d+)?\s?%|(?<![\w.])(?:\d\.\d{2,}|\d{2,}\.\d+)(?![\w.])"
                    r"|\d\s?(?:images/s|img/s|ms|MB|GB)\b")


def _prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring in a Python file."""
    source = path.read_text(encoding="utf-8")
    found = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and (doc := ast.get_docstring(node)):
            found += [(getattr(node, "lineno", 1), line) for line in doc.splitlines()]
    return found


def test_no_measured_figure_in_comments_or_docstrings():
    files = [*PACKAGE.rglob("*.py"), *(REPO / "stages").glob("*.py"), *(REPO / "scripts").glob("*.py")]
    figures = [f"{f.relative_to(REPO)}:{line}: {text.strip()}" for f in files for line, text in _prose(f) if FIGURE.search(text)]
    assert figures == []


def test_the_figure_rule_catches_measurements_and_lets_definitions_through():
    for measured in ("+24.3 after 8 epochs", "45.7 against 40.3 images/s", "in about 40% of the time", "a mean cosine of 0.965",
                     "answers in 164 ms", "is 200 MB"):
        assert FIGURE.search(measured), measured
    for defined in ("the 95% interval", "600 if right at 1", "(0.3: up to 1.3 times)", "0..255 pixels", "epoch 2 of 3", "x - 1"):
        assert not FIGURE.search(defined), defined
