"""Run styleid's training loop on a synthetic set, in one process or as one torchrun rank; rank 0 writes what it learned.

usage: python ddp_train_worker.py PARAMS_JSON_LIST DATA_ROOT OUT_DIR   (also under `torchrun --nproc-per-node N`)
Each params dict of the list is trained in turn, in the same process group (one launch: its start-up is most of the
cost), and rank 0 writes what the k-th learned under OUT_DIR/k.
"""

import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from styleid.training import ddp
from styleid.params import params_from_dict
from styleid.training.loop import TrainSet, train


def _pairs(root: Path, domain: str, people: list[str]) -> list[tuple[Path, str]]:
    return [(f, person) for person in people for f in sorted((root / domain / person).iterdir())]


def main(raw: str, root: str, out: str) -> None:
    here = ddp.init()
    root_path, out_path = Path(root), Path(out)
    people = sorted(p.name for p in (root_path / "photos").iterdir())
    train_people, val_people = people[:-3], people[-3:]
    pairs = _pairs(root_path, "photos", train_people) + _pairs(root_path, "renders", train_people)
    domains = ["photo"] * len(_pairs(root_path, "photos", train_people)) + ["render"] * len(_pairs(root_path, "renders", train_people))
    data = TrainSet(pairs, domains, [], _pairs(root_path, "photos", val_people), _pairs(root_path, "renders", val_people))
    for n, params in enumerate(json.loads(raw)):
        result = train(params_from_dict(params), data)
        if here.main:
            folder = out_path / str(n)
            folder.mkdir(parents=True, exist_ok=True)
            save_file({k: v.detach().contiguous().clone() for k, v in result.model.state_dict().items()}, str(folder / "state.safetensors"))
            (folder / "result.json").write_text(json.dumps({"history": result.history, "best_epoch": result.best_epoch,
                                                           "images_seen": result.images_seen, "world": here.size}))
    ddp.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
