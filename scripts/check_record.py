"""Is the record true? Two checks that `make test` runs (tests/test_record.py) and `make check-record` prints.

imports   every project module a stage's script imports (transitively, lazy imports included) is
          among that stage's `deps` in dvc.yaml, so a change to it reruns the stage.
baseline  `dvc status` reports no changed code or params for any stage: dvc.lock (and the metrics
          and plots committed with it) describe the committed code and params. Outputs that are
          simply absent (a fresh clone) and fetch's always-changed check are not changes.

The params a stage reads are checked at run time instead (STYLEID_PARAMS_READ, see params/schema.py and
tests/test_pipeline_e2e.py): `params_not_declared` compares them with dvc.yaml.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import yaml

PACKAGE = "styleid"


def _module_file(src: Path, dotted: str) -> Path | None:
    """src/styleid/a/b.py or src/styleid/a/b/__init__.py for 'styleid.a.b'; None when it is no module."""
    base = src.joinpath(*dotted.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _is_docstring_only(path: Path) -> bool:
    """A package __init__ with nothing but a docstring runs no code: no dep needed."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def _imported_modules(path: Path, src: Path) -> set[Path]:
    """Project module files that `path` imports anywhere (top level or inside functions), with their packages."""
    found: set[Path] = set()
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]  # `from pkg import module`
    for name in names:
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            continue
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            module = _module_file(src, ".".join(parts[:depth]))
            if module is not None:
                found.add(module)
    return found


def import_closure(script: Path, src: Path) -> set[Path]:
    """Every project module file that running `script` can import, transitively."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for module in _imported_modules(todo.pop(), src):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return {m for m in seen if not (m.name == "__init__.py" and _is_docstring_only(m))}


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def _stage_script(cmd: str) -> str | None:
    words = cmd.split()
    return next((w for w in words if w.startswith("stages/") and w.endswith(".py")), None)


def missing_deps(root: Path) -> list[str]:
    """'stage: module' for every imported project module a stage does not list in its deps."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    problems = []
    for name, stage in stages.items():
        script = _stage_script(stage["cmd"])
        deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
        if script is None:
            problems.append(f"{name}: its cmd runs no stages/*.py script")
            continue
        needed = {script} | {m.relative_to(root).as_posix() for m in import_closure(root / script, root / "src")}
        problems += [f"{name}: {path} is imported but not in deps" for path in sorted(needed) if not _covered(path, deps)]
    return problems


def params_not_declared(root: Path, reads: dict[str, list[str]]) -> list[str]:
    """'stage: key' for every param a stage read (reads: stage -> dotted keys) that dvc.yaml does not list for it."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    problems = []
    for name, keys in sorted(reads.items()):
        declared = [p for p in stages.get(name, {}).get("params", []) if isinstance(p, str)]
        problems += [f"{name}: reads param {key} but dvc.yaml does not list it" for key in keys
                     if not any(key == d or key.startswith(d + ".") for d in declared)]
    return problems


def stale_stages(root: Path, dvc: str = "dvc") -> list[str]:
    """'stage: what changed' for code or params that differ from dvc.lock (`dvc status`)."""
    proc = subprocess.run([dvc, "status", "--json"], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        return [f"dvc status failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"]
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    produced = {next(iter(o)) if isinstance(o, dict) else o for s in stages.values() for key in ("outs", "metrics", "plots")
                for o in s.get(key, [])}
    problems = []
    for name, changes in json.loads(proc.stdout or "{}").items():
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict):
                if change != "always changed":
                    problems.append(f"{name}: {change}")
                continue
            for path, state in (change.get("changed deps") or {}).items():
                if isinstance(state, dict):  # a params file: key -> new | modified | deleted
                    problems += [f"{name}: param {key} {s}" for key, s in state.items()]
                elif path in produced and state in ("deleted", "not in cache"):
                    continue  # an upstream output not built here (a fresh clone): absent, not different
                else:
                    problems.append(f"{name}: dep {path} {state}")
            for path, state in (change.get("changed outs") or {}).items():
                if state == "modified":  # committed (cache: false) metrics and plots that dvc.lock does not describe
                    problems.append(f"{name}: output {path} modified")
            if "changed command" in change:
                problems.append(f"{name}: command changed")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    problems = missing_deps(root) + stale_stages(root)
    for line in problems:
        print(f"check_record: {line}", file=sys.stderr)
    if problems:
        print("check_record: fix dvc.yaml's deps, or rerun `dvc repro` and commit dvc.lock, metrics/ and plots", file=sys.stderr)
        return 1
    print("check_record: dvc.yaml covers every imported module; dvc.lock matches the code and params")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
