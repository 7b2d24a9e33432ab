"""The record is true: dvc.yaml's deps cover the code each stage imports, and dvc.lock matches main's code and params.

Each check also runs on a deliberately broken copy of the repository, to show that it fails when it should.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO, load_script

check_record = load_script("check_record")

DVC = str(Path(sys.executable).with_name("dvc"))


def _copy_tracked(dest: Path) -> Path:
    """The committed files (and any uncommitted edits to them) in a fresh folder, as a clone would have them."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def test_every_stage_depends_on_every_module_it_imports():
    assert check_record.missing_deps(REPO) == []


def test_import_closure_follows_lazy_and_transitive_imports():
    closure = {p.relative_to(REPO).as_posix() for p in check_record.import_closure(REPO / "stages" / "embed.py", REPO / "src")}
    assert "src/styleid/inference/ray_engine.py" in closure  # imported inside a function, only for engine: ray
    assert "src/styleid/models/facenet.py" in closure  # via inference/engines.py -> models/embedder.py -> backbones.py: transitive
    assert "src/styleid/params/loader.py" in closure and "src/styleid/errors.py" in closure
    assert not any(p.startswith("src/styleid/training/") for p in closure)  # embedding never imports training


def test_import_check_names_the_stage_and_module_a_broken_dvc_yaml_misses(tmp_path):
    repo = _copy_tracked(tmp_path / "repo")
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())
    stages["stages"]["train"]["deps"].remove("src/styleid/data/stylize.py")
    stages["stages"]["index"]["deps"].remove("src/styleid/shards.py")
    (repo / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False))
    assert check_record.missing_deps(repo) == ["train: src/styleid/data/stylize.py is imported but not in deps",
                                               "index: src/styleid/shards.py is imported but not in deps"]


def test_params_check_names_a_key_a_stage_reads_but_does_not_declare():
    reads = {"train": ["lr", "embed.flip_tta", "model.embed_dim"], "retrieve": ["retrieve.top_k", "index.factory"]}
    assert check_record.params_not_declared(REPO, reads) == ["retrieve: reads param index.factory but dvc.yaml does not list it"]


def test_committed_lock_matches_the_committed_code_and_params(tmp_path):
    """A fresh copy of main (no outputs at all): dvc status may find outputs absent, never code or params changed."""
    repo = _copy_tracked(tmp_path / "repo")
    assert check_record.stale_stages(repo, DVC) == []


def test_baseline_check_fails_on_changed_code_or_params(tmp_path):
    repo = _copy_tracked(tmp_path / "repo")
    with open(repo / "src" / "styleid" / "data" / "stylize.py", "a") as fh:
        fh.write("\n# a change to the renderer\n")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["retrieve"]["top_k"] = 5
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / "metrics" / "eval.json").write_text('{"score": 1000.0}\n')  # a result nobody computed
    problems = check_record.stale_stages(repo, DVC)
    assert "split: dep src/styleid/data/stylize.py modified" in problems
    assert "train: dep src/styleid/data/stylize.py modified" in problems
    assert "retrieve: param retrieve modified" in problems  # dvc.yaml declares the whole section
    assert "evaluate: output metrics/eval.json modified" in problems
    assert not any(p.startswith(("fetch:", "index:")) for p in problems)
    proc = subprocess.run([sys.executable, str(repo / "scripts" / "check_record.py"), str(repo)], capture_output=True, text=True,
                          env={"PATH": str(Path(DVC).parent)})
    assert proc.returncode == 1 and "rerun `dvc repro` and commit dvc.lock" in proc.stderr

