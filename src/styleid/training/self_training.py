"""Self-training on the test images (the self_train stage): the top of the trained model fine-tuned on pseudo-identities.

The pseudo-people come from search/pseudo_identities.py (k-reciprocal clusters that hold photos and renders);
no test label is read. What it costs is a few passes over the images, not a training run's worth:

- the model is cut in two (models/split.py): the lower layers, which layer-wise lr decay leaves nearly still anyway, run
  once over self_train.views views of each image (the image, its mirror, augmented ones) and their outputs are cached
  (training/view_cache.py); the images' embeddings before and after come from that cache too;
- only the top (self_train.top_stages of the backbone's last stages and the head) trains, for self_train.epochs passes
  over the clustered images, each image as one of its cached views drawn at random, in the training recipe's
  cross-domain batches;
- each image is pulled toward a memory of its pseudo-person's centroids (training/cluster_memory.py), one per domain
  by default, which starts from the clusters themselves and follows the model by momentum, instead of class proxies
  learnt from nothing.

With self_train.rounds > 1 the clustering is redone after each fine-tune with the model it left (from the same cache).

Whether it helps depends on the data: clusters are only as good as the embedding's neighbourhoods, and with a few
images a person they chain people together. So the stage first runs the very same procedure on the validation people as
if they were a test set (`validation_gain`) and keeps it only when their score rises beyond its paired bootstrap noise,
or their mAP does while their score is not worse beyond its own (`keeps`; self_train.use: auto).

Resumable (`Resume`): the view cache is saved once it is made, each fine-tune's state after every epoch and, once it
ends, its weights, so a killed stage goes on where it stopped and ends as an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from styleid import metrics
from styleid.artifacts import part_images
from styleid.fileio import empty_resume_folder
from styleid.models.embedder import Embedder
from styleid.params import Params
from styleid.search.pseudo_identities import PseudoIdentities, find, purity
from styleid.training import checkpoint as checkpoints
from styleid.training.top_fine_tune import self_train
from styleid.training.view_cache import Cached, cached_views

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Resume:
    """Where the stage keeps its view caches and fine-tunes' checkpoints, and the key of what it runs (params, inputs, code)."""

    folder: Path
    key: str

    def at(self, name: str, pseudo: np.ndarray) -> tuple[Path, str]:
        """The checkpoint of the fine-tune called `name` on these pseudo-labels: other pseudo-people start afresh."""
        return self.folder / f"{name}.pt", checkpoints.run_key(self.key, name, np.asarray(pseudo, np.int64).tobytes())

    def views(self, name: str, paths: list[Path]) -> tuple[Path, str]:
        """Where the view cache of these images is kept."""
        return self.folder / f"{name}-views.pt", checkpoints.run_key(self.key, name, "\n".join(map(str, paths)))

    def clear(self) -> None:
        """After the stage's outputs are written: nothing left to resume (fileio.empty_resume_folder)."""
        empty_resume_folder(self.folder)



def cache_views(model: Embedder, params: Params, queries: list[Path], gallery: list[Path], resume: Resume | None = None,
                name: str = "test", exported: Sequence[tuple[Callable, str]] = ()) -> Cached:
    """The queries' and gallery's views through `model`'s trunk (`exported`: the same trunk cut out of the export, faster); with
    `resume`, kept there as `<name>-views` for a rerun."""
    where = resume.views(name, [*queries, *gallery]) if resume is not None else None
    return cached_views(model, params, queries, gallery, where, name, exported)


@dataclasses.dataclass(frozen=True)
class Rounds:
    model: Embedder  # what the last round left (the given model when no round had 2 pseudo-people)
    first: PseudoIdentities  # the first round's pseudo-people
    last: PseudoIdentities  # the last round's
    rounds: int  # rounds that fine-tuned
    seconds: float  # their fine-tuning time
    asked: int  # self_train.rounds
    before: tuple[np.ndarray, np.ndarray]  # queries' and gallery's embeddings (adapted) before self-training
    after: tuple[np.ndarray, np.ndarray]  # and after it
    views_seconds: float = 0.0  # how long caching the views took
    seen: int = 0  # images (views) the fine-tunes trained on
    views_runtime: str = "torch"  # what ran the trunk for the views

    def summary(self) -> dict:
        """The rounds' own figures for metrics and the model card; none when one round was asked (the pseudo-people are the first's)."""
        if self.asked == 1:
            return {}
        return {"self_train_rounds": self.rounds, **{f"last_round_{k}": v for k, v in self.last.summary().items()}}


def adapt_rounds(model: Embedder, params: Params, queries: list[Path], gallery: list[Path], adapt: str, resume: Resume | None = None,
                 name: str = "test", cached: Cached | None = None, exported: Sequence[tuple[Callable, str]] = ()) -> Rounds:
    """self_train.rounds of clustering the queries and gallery (embedded as the embed stage embeds them, from the view cache) and
    fine-tuning on the pseudo-people. Stops early when a round finds fewer than 2. `resume`: the views and each round's fine-tune
    kept as `<name>-views` and `<name>-round-<r>`; `cached`: their views when the caller has them (the same model, top_stages, views)."""
    cached = cached or cache_views(model, params, queries, gallery, resume, name, exported)
    before = embedded = cached.embed(model, params, adapt)
    found = pseudo = pseudo_people(*embedded, params)
    done, seconds, seen = 0, 0.0, 0
    for r in range(params.self_train.rounds):
        if r:
            pseudo = pseudo_people(*embedded, params)
        if pseudo.people < 2:
            break
        labels = np.concatenate([pseudo.query, pseudo.gallery])
        result = self_train(model, params, cached, labels, resume.at(f"{name}-round-{r + 1}", labels) if resume else None)
        model, done, seconds, seen = result.model, done + 1, seconds + result.seconds, seen + result.images_seen
        embedded = cached.embed(model, params, adapt)
    return Rounds(model, found, pseudo, done, seconds, params.self_train.rounds, before, embedded, cached.seconds, seen, cached.runtime)


def pseudo_people(queries: np.ndarray, gallery: np.ndarray, params: Params) -> PseudoIdentities:
    """The pseudo-people among L2-normalised, adapted query and gallery embeddings, with self_train's clustering settings."""
    s = params.self_train
    return find(queries, gallery, s.eps, s.k1, s.k2, s.min_samples)


def validation_gain(model: Embedder, params: Params, split_: dict, adapt: str, resume: Resume | None = None,
                    exported: Sequence[tuple[Callable, str]] = ()) -> dict:
    """Self-training run on the validation people as a test set: their score before and after, the paired bootstrap 95% interval
    of the gain (what self_train.use auto decides on), and the purity of their pseudo-people (validation labels, read only here)."""
    return validation_rankings(model, params, split_, adapt, resume, exported=exported)[0]


def validation_rankings(model: Embedder, params: Params, split_: dict, adapt: str, resume: Resume | None = None,
                        cached: Cached | None = None, exported: Sequence[tuple[Callable, str]] = ()) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    """validation_gain's row with the validation rankings before and after self-training (None without validation people);
    scripts/probe_self_training.py compares the after-rankings of settings, paired (`cached`: the views it made for another)."""
    (q_paths, q_people), (g_paths, g_people) = part_images(split_, "val_query"), part_images(split_, "val_gallery")
    if not q_paths or not g_paths:
        return {"val_people": 0}, None, None
    start = time.perf_counter()
    rounds = adapt_rounds(model, params, q_paths, g_paths, adapt, resume=resume, name="validation", cached=cached, exported=exported)
    before = metrics.rank_by_scores(rounds.before[0] @ rounds.before[1].T)
    measured = metrics.evaluate(before, q_people, g_people)
    pseudo = rounds.first
    row = {"val_people": len(set(q_people)), **{f"val_{k}": v for k, v in pseudo.summary().items()},
           "val_purity": round(purity(np.concatenate([pseudo.query, pseudo.gallery]), q_people + g_people), 4),
           "val_score": measured["score"]}
    if rounds.rounds == 0:
        return {**row, "val_score_self_trained": row["val_score"], "val_gain_low": 0.0, "val_gain_high": 0.0,
                "val_check_seconds": round(time.perf_counter() - start, 2)}, before, before
    if more := rounds.summary():
        row.update({f"val_{k}": v for k, v in more.items()},
                   val_last_round_purity=round(purity(np.concatenate([rounds.last.query, rounds.last.gallery]), q_people + g_people), 4))
    after = metrics.rank_by_scores(rounds.after[0] @ rounds.after[1].T)
    low, high = metrics.difference_interval(before, after, q_people, g_people, seed=params.seed)
    map_low, map_high = metrics.difference_interval(before, after, q_people, g_people, seed=params.seed, measure="mAP")
    moved = bool(np.any(metrics.per_query("score", before, q_people, g_people) != metrics.per_query("score", after, q_people, g_people)))
    measured_after = metrics.evaluate(after, q_people, g_people)
    return {**row, "val_score_self_trained": measured_after["score"], "val_gain_low": low, "val_gain_high": high, "val_score_moved": moved,
            "val_map": measured["mAP"], "val_map_self_trained": measured_after["mAP"], "val_map_gain_low": map_low, "val_map_gain_high": map_high,
            "val_check_seconds": round(time.perf_counter() - start, 2)}, before, after


def keeps(checked: dict) -> bool:
    """self_train.use auto's rule on validation_gain's row (metrics.gains_beyond_noise): the score gains beyond its paired
    noise, or mAP, which weighs every right image's rank, gains beyond its noise while the score is not worse beyond its own
    (a saturated set, every query found at 1 before and after, is the case where the score cannot move at all)."""
    return metrics.gains_beyond_noise(checked.get("val_gain_low", 0.0), checked.get("val_gain_high", 0.0), checked.get("val_map_gain_low", 0.0))
