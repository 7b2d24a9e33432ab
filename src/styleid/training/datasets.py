"""Training datasets over split entries: decode safely (once, when the pixels fit in RAM), transform per domain, and
return (image, label)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from styleid.images import read_image

log = logging.getLogger(__name__)


class DecodedImages:
    """Training images decoded once and kept as uint8 RGB arrays: epochs after the first skip decoding (JPEG and PNG
    decoding is a sizeable share of a CPU step). Built before any DataLoader worker starts, so workers share the
    arrays copy-on-write. When the pixels would exceed `max_bytes`, nothing is kept and images decode every epoch."""

    def __init__(self, paths: Sequence[Path], max_bytes: float):
        self.arrays: list[np.ndarray] | None = None
        if max_bytes <= 0:
            return
        need = 0
        for path in paths:
            try:
                with Image.open(path) as img:  # reads the header only
                    need += img.width * img.height * 3
            except OSError:
                pass  # read_image names the file below
        if need > max_bytes:
            log.info("train: the decoded images need %.1f GB, over train.decoded_cache_gb; decoding them every epoch", need / 1e9)
            return
        self.arrays = [np.asarray(read_image(path)) for path in paths]

    def image(self, index: int, path: Path) -> Image.Image:
        return read_image(path) if self.arrays is None else Image.fromarray(self.arrays[index])


class TrainDataset(Dataset):
    """Training images with a transform per domain: photos get the style augmentations, renders do not."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], domains: Sequence[str], photo_transform: Callable,
                 render_transform: Callable, cache_bytes: float = 0):
        self.paths, self.labels, self.domains = list(paths), list(labels), list(domains)
        self.photo_transform, self.render_transform = photo_transform, render_transform
        self.decoded = DecodedImages(self.paths, cache_bytes)

    def __len__(self) -> int:
        return len(self.paths)

    def transform_for(self, index: int) -> Callable:
        return self.photo_transform if self.domains[index] == "photo" else self.render_transform

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        """item: an index, or (index, seed) to draw this image's random augmentation from its own seed."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        img = self.decoded.image(index, self.paths[index])
        if seed is None:
            return self.transform_for(index)(img), self.labels[index]
        with torch.random.fork_rng(devices=[]):  # the process's own stream (dropout, ...) is left as it was
            # the CPU stream the transforms draw from; torch.manual_seed also seeds every accelerator backend, recording a
            # stack trace per call while they are uninitialised (a fifth of an image's augmentation time)
            torch.default_generator.manual_seed(seed)
            return self.transform_for(index)(img), self.labels[index]
