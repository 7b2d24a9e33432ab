"""Image files as a torch Dataset: decoded safely (a bad file is one line naming it), then transformed."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from styleid.images import read_image


class ImageDataset(Dataset):
    """paths -> transformed image tensors, in order."""

    def __init__(self, paths: Sequence[Path], transform: Callable):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(read_image(self.paths[index]))
