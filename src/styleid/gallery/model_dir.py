"""Where a trained model comes from for people's own galleries: an exported folder (model.json + model.onnx), a
repository's models/ (found from any directory by walking up to the repository root), or a DVC artifact (a git
URL: the registered `styleid-model` artifact and its model.json, fetched with DVC into a local cache)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from styleid import ownership
from styleid.errors import StyleidError
from styleid.hashing import file_digest
from styleid.fileio import user_cache_dir

MODEL_FILES = ("model.json", "model.onnx")
ARTIFACT = "styleid-model"  # dvc.yaml's artifacts: name of models/model.onnx


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith("git@")


def fetch_artifact(url: str, rev: str = "") -> Path:
    """The model registered in the repository at `url` (dvc artifacts get: the latest version, or `rev`), with its
    model.json (dvc get), in a local cache folder; fetched once per (url, rev)."""
    folder = user_cache_dir() / "artifacts" / hashlib.sha1(f"{url}@{rev}".encode()).hexdigest()[:16]  # $STYLEID_CACHE too
    if all((folder / f).is_file() for f in MODEL_FILES):
        return folder
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    commands = [[dvc, "artifacts", "get", url, ARTIFACT, *(["--rev", rev] if rev else []), "-o", str(tmp / "model.onnx")],
                [dvc, "get", url, "models/model.json", "-o", str(tmp / "model.json")]]
    for command in commands:
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0 or not (tmp / Path(command[-1]).name).is_file():
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise StyleidError(f"{url}: could not fetch the {ARTIFACT} artifact ({last}); register a version (an annotated "
                               "git tag styleid-model@vX.Y.Z) and `dvc push` the model there")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def find_model(asked: Path | str | None) -> Path:
    """`asked` (a folder holding model.json and model.onnx, a repository root with models/, or a git URL of a repository
    that registered the styleid-model artifact), else the enclosing repository's models/; a one-line error otherwise."""
    if asked is not None and _is_url(str(asked)):
        url, _, rev = str(asked).partition("#")  # URL#v1.0.0: that version
        return fetch_artifact(url, rev)
    asked = Path(asked) if asked is not None else None
    candidates = [asked, asked / "models"] if asked else [p / "models" for p in (Path.cwd(), *Path.cwd().parents)]
    for folder in candidates:
        if folder is not None and all((folder / f).is_file() for f in MODEL_FILES):
            return folder.resolve()
    where = asked or Path.cwd()
    raise StyleidError(f"{where}: no trained model (model.json + model.onnx); pass --model DIR (a `styleid export` folder or a "
                       "repository) or a repository's git URL (its styleid-model artifact), or run `dvc repro export` here")


def check_model(folder: Path) -> None:
    """The model files are the ones styleid wrote: an export's checksums, or for a repository's models/ the hashes
    dvc.lock recorded when the pipeline wrote them; one line naming the file otherwise (a folder with neither: unchecked)."""
    if ownership.read_marker(folder) is not None:
        ownership.verify(folder, "export")
        return
    lock = folder.parent / "dvc.lock"
    if folder.name != "models" or not lock.is_file():
        return
    import yaml

    recorded = {out["path"]: out.get("md5") for stage in (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {}).values()
                for out in stage.get("outs") or [] if isinstance(out, dict) and "path" in out}
    for name in MODEL_FILES:
        expected = recorded.get(f"models/{name}")
        if expected and file_digest(folder / name, "md5") != expected:
            raise StyleidError(f"{folder / name}: is not the file `dvc repro` wrote (dvc.lock has another hash: damaged or replaced); "
                               "run `dvc checkout` or `dvc repro export` to restore it")
