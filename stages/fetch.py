"""fetch: materialise data.source, recognise its layout, check every image -> data/manifest.csv."""

import logging
import re
import time
from pathlib import Path

import typer

from styleid.artifacts import CACHE, MANIFEST, RAW, SOURCE
from styleid.data.fetch import fetch, source_fingerprint
from styleid.data.manifest import write_manifest
from styleid.data.sources import repo_root
from styleid.fileio import read_json, sweep_stale, write_json
from styleid.params import load_params
from styleid.runner import stage

log = logging.getLogger("styleid.fetch")


def _portable(root: Path) -> str:
    """Inside the repository: a relative path (the same in DVC's temporary copies); outside: absolute."""
    try:
        return root.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(root.resolve())


LEFTOVER = re.compile(r"^\.(?P<name>.+)\.\d+-[^/]*\.tmp$")  # styleid.fileio's temporary siblings


def _sweep_leftovers(*folders: Path) -> None:
    """A killed fetch's temporary siblings, removed even when this run has nothing to write."""
    for folder in folders:
        if folder.is_dir():
            for entry in folder.iterdir():
                if m := LEFTOVER.match(entry.name):
                    for removed in sweep_stale(folder / m["name"]):
                        log.info("fetch: removed %s, left by a killed run", removed)


@stage
def fetch_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    start = time.perf_counter()
    params = load_params(params_file)
    fp = source_fingerprint(params.data, params.seed)
    _sweep_leftovers(RAW, SOURCE.parent, repo_root() / CACHE / "downloads")
    previous = read_json(SOURCE) if SOURCE.is_file() else {}
    roots = previous.get("roots") or {"": previous.get("root", "/nonexistent")}
    if previous.get("fingerprint") == fp and MANIFEST.is_file() and all(Path(r).is_dir() for r in roots.values()):
        print(f"fetch: source unchanged ({params.data.source}); nothing to do")
        return
    result = fetch(params.data, params.seed, RAW, repo_root() / CACHE)
    RAW.mkdir(parents=True, exist_ok=True)  # a DVC output even when the data stays in place
    write_manifest(MANIFEST, result.items)
    people = {i.person for i in result.items if i.person}
    write_json(SOURCE, {
        "fingerprint": fp, "source": params.data.source, "root": _portable(result.root), "layout": result.layout,
        "roots": {tag: _portable(root) for tag, root in result.roots.items()}, "layouts": result.layouts,
        "n_images": len(result.items), "n_people": len(people), "n_skipped": len(result.skipped),
        "skipped": [{"path": p, "reason": r} for p, r in result.skipped],
    })
    print(f"fetch: {len(result.items)} images of {len(people)} people ({result.layout} layout) from {params.data.source}; "
          f"{len(result.skipped)} skipped; {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    typer.run(fetch_stage)
