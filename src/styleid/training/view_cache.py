"""A few views of every image through the model's trunk, computed once (models/split.py): what self-training trains the
top on, and what embeds the images before and after it without another pass over them.

View 0 is the image as the embed stage sees it, view 1 its mirror image (the two that flip averaging sums), views 2..
are the training recipe's augmentations (photos get the style ones too), each drawn from a seed of its own (the run's
seed, the image's place, the view), so the cache is the same on every run. Features are kept in float16: half the
memory, far below the fine-tune's own noise.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from styleid.images import read_image
from styleid.inference.prefetch import prefetched
from styleid.inference.transforms import eval_transform, prepare_batch
from styleid.models.embedder import Embedder
from styleid.models.spec import ModelSpec
from styleid.models.split import Split, split
from styleid.params import Params
from styleid.progress import bar
from styleid.search.adapt import adapt_pair
from styleid.training import checkpoint as checkpoints
from styleid.training.transforms import train_transform

log = logging.getLogger(__name__)


class Views(Dataset):
    """Image i -> its `views` views as one uint8 (views, 3, H, W) tensor."""

    def __init__(self, paths: Sequence[Path], domains: Sequence[str], spec: ModelSpec, params: Params, views: int, seed: int):
        self.paths, self.domains, self.views, self.seed = list(paths), list(domains), views, seed
        self.clean = eval_transform(spec)
        styles = params.augment.styles
        self.augment = {photo: train_transform(spec, True, params.augment, styles, photo=photo) for photo in (True, False)}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        img = read_image(self.paths[index])
        clean = self.clean(img)
        out = [clean, clean.flip(-1)]
        for view in range(2, self.views):
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(int(np.random.SeedSequence([self.seed, 29, index, view]).generate_state(1)[0]))
                out.append(self.augment[self.domains[index] == "photo"](img))
        return torch.stack(out[: self.views])


MIN_TRUNK_COSINE = 0.98  # an exported trunk whose features agree less with torch's (per image, flattened) is not used


def trunk_views(parts: Split, paths: Sequence[Path], domains: Sequence[str], params: Params, views: int,
                seed: int, desc: str = "self_train: views", exported: Sequence[tuple[Callable, str]] = ()) -> tuple[torch.Tensor, str]:
    """(float16 (n images, views, *trunk output) of the images' views through the model's trunk (eval mode), what made them):
    `exported` are the same trunk run faster ((run, name), fastest first: inference/onnx_trunk.py); the first whose features
    agree with torch's on the first batch makes them all, else torch does."""
    spec = parts.model.spec
    per_batch = max(1, params.embed.batch_size // views)
    loader = DataLoader(Views(paths, domains, spec, params, views, seed), batch_size=per_batch, shuffle=False,
                        num_workers=params.embed.num_workers)
    chunks = []
    parts.model.eval()
    with torch.inference_mode():
        for batch in bar(prefetched(loader) if params.embed.num_workers == 0 else loader, desc=desc, total=len(loader), leave=False,
                         hide=len(paths) < per_batch * 4):
            x = prepare_batch(spec, batch.flatten(0, 1)).contiguous(memory_format=torch.channels_last)
            if not chunks:  # the first batch chooses what runs the trunk (its check's output is the batch's views)
                out = reference = parts.trunk(x)
                runner = (None, "torch")
                for run, name in exported:
                    if _agrees(candidate := run(x.contiguous()), reference, name):
                        runner, out = (run, name), candidate
                        break
            else:
                out = parts.trunk(x) if runner[0] is None else runner[0](x.contiguous())
            chunks.append(out.reshape(batch.shape[0], views, *out.shape[1:]).to(torch.float16).contiguous())
    return (torch.cat(chunks) if chunks else torch.zeros((0, views))), (runner[1] if chunks else "torch")


def _agrees(exported: torch.Tensor, reference: torch.Tensor, name: str) -> bool:
    cosine = F.cosine_similarity(exported.flatten(1).float(), reference.flatten(1).float(), dim=1).min().item()
    if cosine < MIN_TRUNK_COSINE:
        log.info("self_train: the trunk in %s differs from torch's (cosine %.3f, under %.2f); not used", name, cosine, MIN_TRUNK_COSINE)
    return cosine >= MIN_TRUNK_COSINE


def embed_cached(parts: Split, cache: torch.Tensor, flip: bool, batch_size: int = 256) -> np.ndarray:
    """The images' embeddings from the cache (top in eval mode), as the embed stage makes them: view 0, or with flip
    averaging the sum of the L2-normalised embeddings of views 0 and 1; then L2-normalised."""
    parts.model.eval()
    top, rows = parts.top, []
    with torch.inference_mode():
        for lo in range(0, len(cache), batch_size):
            part = cache[lo : lo + batch_size]
            out = F.normalize(top(part[:, 0].float()), dim=1)
            if flip:
                out = out + F.normalize(top(part[:, 1].float()), dim=1)
            rows.append(F.normalize(out, dim=1))
    return torch.cat(rows).numpy().astype(np.float32) if rows else np.zeros((0, 0), np.float32)


@dataclasses.dataclass
class Cached:
    """Images (queries first, then the gallery) with their views through the model's trunk."""

    paths: list[Path]
    domains: list[str]  # photo | render
    views: torch.Tensor  # float16 (n, views, *trunk output)
    n_queries: int
    seconds: float  # how long the views took
    runtime: str = "torch"  # what ran the trunk: torch, or the export in onnxruntime (int8 or fp32)

    def embed(self, model: Embedder, params: Params, adapt: str) -> tuple[np.ndarray, np.ndarray]:
        """Queries and gallery as `model` embeds them (flip averaging, L2, then `adapt`), from the cache."""
        rows = embed_cached(split(model, params.self_train.top_stages), self.views, params.embed.flip_tta)
        return adapt_pair(rows[: self.n_queries], rows[self.n_queries:], adapt)


def cached_views(model: Embedder, params: Params, queries: list[Path], gallery: list[Path], where: tuple[Path, str] | None = None,
                 name: str = "test", exported: Sequence[tuple[Callable, str]] = ()) -> Cached:
    """The queries' and gallery's views through `model`'s trunk (self_train.top_stages, self_train.views); `where` (path, key):
    kept there once made, and read back from there by a rerun under the same key."""
    paths, domains = [*queries, *gallery], ["photo"] * len(queries) + ["render"] * len(gallery)
    s = params.self_train
    start = time.perf_counter()
    if where is not None and (saved := checkpoints.load(where[0], where[1], ("views",))) is not None:
        log.info("self_train: %s's views were cached before this run was stopped; reusing them", name)
        return Cached(paths, domains, saved["views"], len(queries), saved.get("seconds", 0.0), saved.get("runtime", "torch"))
    views, used = trunk_views(split(model, s.top_stages), paths, domains, params, s.views, params.seed, f"self_train: {name} views", exported)
    seconds = time.perf_counter() - start
    if where is not None:
        where[0].parent.mkdir(parents=True, exist_ok=True)
        checkpoints.save(where[0], {"key": where[1], "views": views, "seconds": seconds, "runtime": used})
    return Cached(paths, domains, views, len(queries), seconds, used)
