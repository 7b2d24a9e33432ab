"""Self-training on the test images (the self_train stage): a short fine-tune of the trained model on pseudo-identities.

The pseudo-people come from search/pseudo_identities.py (k-reciprocal clusters that hold photos and renders);
no test label is read. The fine-tune is the training recipe itself (loss, cross-domain batches,
augmentation) started from the trained weights, with the backbone's BatchNorm statistics held, for
self_train.epochs at self_train.lr, keeping the last epoch: nothing labelled is left to choose another.
With self_train.rounds > 1 the clustering is redone after each fine-tune with the model it left, so
neighbourhoods the fine-tune tightened give the next round better pseudo-people (`adapt_rounds`).

Whether it helps depends on the data: clusters are only as good as the embedding's neighbourhoods, and
with a few images a person they chain people together. So the stage first runs the very same procedure
on the validation people as if they were a test set (`validation_gain`) and keeps it only when their
score rises beyond its paired bootstrap noise, or, where their score cannot move (all found at 1), their
mAP does (`keeps`; self_train.use: auto).

Each fine-tune is resumable (`Resume`): its state is saved after every epoch and, once it ends, its weights, so a
killed stage goes on where it stopped and ends as an uninterrupted run would.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path

import numpy as np

from styleid import metrics
from styleid.artifacts import part_images
from styleid.fileio import write_json
from styleid.inference.embed import extract
from styleid.inference.normalize import l2_normalize
from styleid.inference.transforms import eval_transform
from styleid.models.embedder import Embedder
from styleid.params import Params
from styleid.search.adapt import adapt_pair
from styleid.search.pseudo_identities import PseudoIdentities, find, purity
from styleid.training import checkpoint as checkpoints
from styleid.training.loop import TrainResult, TrainSet, train

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Resume:
    """Where the stage keeps its fine-tunes' checkpoints, and the key of what it runs (params, inputs, code)."""

    folder: Path
    key: str

    def at(self, name: str, pseudo: np.ndarray) -> tuple[Path, str]:
        """The checkpoint of the fine-tune called `name` on these pseudo-labels: other pseudo-people start afresh."""
        return self.folder / f"{name}.pt", checkpoints.run_key(self.key, name, np.asarray(pseudo, np.int64).tobytes())

    def clear(self) -> None:
        """After the stage's outputs are written: nothing is left to resume (a forced rerun fine-tunes again). A marker
        stays, so the folder (a DVC output) is never empty."""
        for path in self.folder.glob("*.pt"):
            path.unlink()
        write_json(self.folder / "finished.json", {"resume": "nothing: the stage's outputs were written"})


def self_train(model: Embedder, params: Params, images: list[Path], domains: list[str], pseudo: np.ndarray,
               checkpoint: tuple[Path, str] | None = None) -> TrainResult:
    """Fine-tune `model` on the images with a pseudo-person (pseudo >= 0), each with its domain (photo | render).
    `checkpoint` (path, key): go on from, or return at once what, a fine-tune killed or finished under that key left there."""
    s = params.self_train
    keep = [i for i, c in enumerate(pseudo) if c >= 0]
    # the backbone's BatchNorm statistics stay the trained model's: a few hundred test images would re-standardise every layer
    # (and FaceNet's offline export folded its BN into the convolutions, which its loaded copy no longer knows)
    tuned = dataclasses.replace(params, epochs=s.epochs, lr=s.lr,
                                train=dataclasses.replace(params.train, patience=0, nproc=1, frozen_bn=True))
    data = TrainSet([(Path(images[i]), f"pseudo-{int(pseudo[i])}") for i in keep], [domains[i] for i in keep])
    if checkpoint is None:
        return train(tuned, data, init=model)
    path, key = checkpoint
    if (kept := checkpoints.finished(path, key)) is not None:
        log.info("self_train: %s finished before this run was stopped; its weights are reused", path.stem)
        done = copy.deepcopy(model)
        done.load_state_dict(kept.pop("model"))
        return TrainResult(done.eval(), **kept)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = train(tuned, data, checkpoint=path, key=key, init=model)
    checkpoints.finish(path, key, {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "model"}
                       | {"model": result.model.state_dict()})
    return result


@dataclasses.dataclass(frozen=True)
class Rounds:
    model: Embedder  # what the last round left (the given model when no round had 2 pseudo-people)
    first: PseudoIdentities  # the first round's pseudo-people
    last: PseudoIdentities  # the last round's
    rounds: int  # rounds that fine-tuned
    seconds: float  # their fine-tuning time
    asked: int  # self_train.rounds

    def summary(self) -> dict:
        """The rounds' own figures for metrics and the model card; none when one round was asked (the pseudo-people are the first's)."""
        if self.asked == 1:
            return {}
        return {"self_train_rounds": self.rounds, **{f"last_round_{k}": v for k, v in self.last.summary().items()}}


def adapt_rounds(model: Embedder, params: Params, queries: list[Path], gallery: list[Path], adapt: str,
                 first: PseudoIdentities | None = None, resume: Resume | None = None, name: str = "test") -> Rounds:
    """self_train.rounds of clustering the queries and gallery (as embed_pair embeds them) and fine-tuning on the pseudo-people;
    `first`: the first round's pseudo-people when the caller already has them. Stops early when a round finds fewer than 2.
    `resume`: each round's fine-tune checkpointed as `<name>-round-<r>`."""
    domains = ["photo"] * len(queries) + ["render"] * len(gallery)
    pseudo = first if first is not None else pseudo_people(*embed_pair(model, params, queries, gallery, adapt), params)
    found, done, seconds = pseudo, 0, 0.0
    for r in range(params.self_train.rounds):
        if r:
            pseudo = pseudo_people(*embed_pair(model, params, queries, gallery, adapt), params)
        if pseudo.people < 2:
            break
        labels = np.concatenate([pseudo.query, pseudo.gallery])
        result = self_train(model, params, [*queries, *gallery], domains, labels, resume.at(f"{name}-round-{r + 1}", labels) if resume else None)
        model, done, seconds = result.model, done + 1, seconds + result.seconds
    return Rounds(model, found, pseudo, done, seconds, params.self_train.rounds)


def pseudo_people(queries: np.ndarray, gallery: np.ndarray, params: Params) -> PseudoIdentities:
    """The pseudo-people among L2-normalised, adapted query and gallery embeddings, with self_train's clustering settings."""
    s = params.self_train
    return find(queries, gallery, s.eps, s.k1, s.k2, s.min_samples)


def embed_pair(model: Embedder, params: Params, queries: list[Path], gallery: list[Path], adapt: str) -> tuple[np.ndarray, np.ndarray]:
    """Queries and gallery through the torch model as the embed stage embeds (flip averaging, L2, then `adapt`)."""
    e = params.embed
    rows = l2_normalize(extract(model, [*queries, *gallery], eval_transform(model.spec), e.batch_size, e.num_workers, "self_train", e.flip_tta))
    return adapt_pair(rows[: len(queries)], rows[len(queries):], adapt)


def validation_gain(model: Embedder, params: Params, split: dict, adapt: str, resume: Resume | None = None) -> dict:
    """Self-training run on the validation people as a test set: their score before and after, the paired bootstrap 95% interval
    of the gain (what self_train.use auto decides on), and the purity of their pseudo-people (validation labels, read only here)."""
    return validation_rankings(model, params, split, adapt, resume)[0]


def validation_rankings(model: Embedder, params: Params, split: dict, adapt: str,
                        resume: Resume | None = None) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    """validation_gain's row with the validation rankings before and after self-training (None without validation people);
    scripts/probe_self_training.py compares the after-rankings of two settings, paired."""
    (q_paths, q_people), (g_paths, g_people) = part_images(split, "val_query"), part_images(split, "val_gallery")
    if not q_paths or not g_paths:
        return {"val_people": 0}, None, None
    q, g = embed_pair(model, params, q_paths, g_paths, adapt)
    before = metrics.rank_by_scores(q @ g.T)
    measured = metrics.evaluate(before, q_people, g_people)
    pseudo = pseudo_people(q, g, params)
    row = {"val_people": len(set(q_people)), **{f"val_{k}": v for k, v in pseudo.summary().items()},
           "val_purity": round(purity(np.concatenate([pseudo.query, pseudo.gallery]), q_people + g_people), 4),
           "val_score": measured["score"]}
    if pseudo.people < 2:
        return {**row, "val_score_self_trained": row["val_score"], "val_gain_low": 0.0, "val_gain_high": 0.0}, before, before
    rounds = adapt_rounds(model, params, q_paths, g_paths, adapt, first=pseudo, resume=resume, name="validation")
    if more := rounds.summary():
        row.update({f"val_{k}": v for k, v in more.items()},
                   val_last_round_purity=round(purity(np.concatenate([rounds.last.query, rounds.last.gallery]), q_people + g_people), 4))
    q_after, g_after = embed_pair(rounds.model, params, q_paths, g_paths, adapt)
    after = metrics.rank_by_scores(q_after @ g_after.T)
    low, high = metrics.difference_interval(before, after, q_people, g_people, seed=params.seed)
    map_low, map_high = metrics.difference_interval(before, after, q_people, g_people, seed=params.seed, measure="mAP")
    moved = bool(np.any(metrics.per_query("score", before, q_people, g_people) != metrics.per_query("score", after, q_people, g_people)))
    measured_after = metrics.evaluate(after, q_people, g_people)
    return {**row, "val_score_self_trained": measured_after["score"], "val_gain_low": low, "val_gain_high": high, "val_score_moved": moved,
            "val_map": measured["mAP"], "val_map_self_trained": measured_after["mAP"], "val_map_gain_low": map_low, "val_map_gain_high": map_high}, before, after


def keeps(checked: dict) -> bool:
    """self_train.use auto's rule on validation_gain's row: the score gains beyond its paired noise. Where the score
    cannot tell (no validation query's score moved: a saturated set, every person found at 1 before and after),
    mAP, which weighs every right image's rank, must gain beyond its noise instead."""
    if checked.get("val_gain_low", 0.0) > 0:
        return True
    return not checked.get("val_score_moved", True) and checked.get("val_map_gain_low", 0.0) > 0
