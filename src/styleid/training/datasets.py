"""Datasets over split entries: decode safely, transform, and return (image, label)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from styleid.images import BadImage, load_rgb


class ImageDataset(Dataset):
    def __init__(self, paths: Sequence[Path], labels: Sequence[int], transform: Callable):
        self.paths, self.labels, self.transform = list(paths), list(labels), transform

    def __len__(self) -> int:
        return len(self.paths)

    def transform_for(self, index: int) -> Callable:
        return self.transform

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        """item: an index, or (index, seed) to draw this image's random augmentation from its own seed."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        try:
            img = load_rgb(self.paths[index])
        except BadImage as exc:  # checked at fetch; only a file changed since then gets here
            raise BadImage(f"{self.paths[index]}: {exc}; rerun `dvc repro` so fetch rechecks the data") from None
        if seed is None:
            return self.transform_for(index)(img), self.labels[index]
        with torch.random.fork_rng(devices=[]):  # the process's own stream (dropout, ...) is left as it was
            torch.manual_seed(seed)
            return self.transform_for(index)(img), self.labels[index]


class TrainDataset(ImageDataset):
    """Training images with a transform per domain: photos get the style augmentations, renders do not."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], domains: Sequence[str], photo_transform: Callable,
                 render_transform: Callable):
        super().__init__(paths, labels, photo_transform)
        self.domains, self.render_transform = list(domains), render_transform

    def transform_for(self, index: int) -> Callable:
        return self.transform if self.domains[index] == "photo" else self.render_transform
