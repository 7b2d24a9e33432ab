"""Training datasets over split entries: decode safely, transform per domain, and return (image, label)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from styleid.inference.dataset import read_image


class TrainDataset(Dataset):
    """Training images with a transform per domain: photos get the style augmentations, renders do not."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], domains: Sequence[str], photo_transform: Callable,
                 render_transform: Callable):
        self.paths, self.labels, self.domains = list(paths), list(labels), list(domains)
        self.photo_transform, self.render_transform = photo_transform, render_transform

    def __len__(self) -> int:
        return len(self.paths)

    def transform_for(self, index: int) -> Callable:
        return self.photo_transform if self.domains[index] == "photo" else self.render_transform

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        """item: an index, or (index, seed) to draw this image's random augmentation from its own seed."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        img = read_image(self.paths[index])
        if seed is None:
            return self.transform_for(index)(img), self.labels[index]
        with torch.random.fork_rng(devices=[]):  # the process's own stream (dropout, ...) is left as it was
            torch.manual_seed(seed)
            return self.transform_for(index)(img), self.labels[index]
