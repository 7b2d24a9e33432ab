"""Batched inference: images -> vectors, with decoding overlapped by DataLoader workers."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from styleid.training.datasets import ImageDataset


def extract(model: nn.Module, paths: Sequence[Path], transform: Callable, batch_size: int = 64,
            num_workers: int = 0, desc: str = "embedding") -> np.ndarray:
    """Run `model` over the images in eval mode; returns float32 (n, d)."""
    loader = DataLoader(ImageDataset(paths, [0] * len(paths), transform), batch_size=batch_size,
                        shuffle=False, num_workers=num_workers, persistent_workers=False)
    model.eval()
    chunks = []
    with torch.inference_mode():
        for images, _ in tqdm(loader, desc=desc, leave=False, disable=len(paths) < batch_size * 4):
            chunks.append(model(images.contiguous(memory_format=torch.channels_last)).float().cpu().numpy())
    if not chunks:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(chunks).astype(np.float32)
