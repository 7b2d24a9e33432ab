"""Batched embedding: images -> vectors, decoding overlapped by DataLoader workers, optional flip averaging."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from styleid.inference.dataset import ImageDataset
from styleid.inference.prefetch import prefetched
from styleid.inference.transforms import prepare_batch
from styleid.progress import bar


def device_of(model) -> torch.device:
    """Where the model runs: a torch module's parameters' device, or an exported runtime's own `device`."""
    return model.device if hasattr(model, "device") and not isinstance(model, nn.Module) else next(model.parameters()).device


def embed_batch(model: nn.Module, images: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """One batch (uint8 pixels, or model input) through the model (channels_last); flip: sum of the L2-normalised image and
    mirror embeddings."""
    images = prepare_batch(getattr(model, "spec", None), images.to(device_of(model), non_blocking=True))
    layout = torch.channels_last if isinstance(model, nn.Module) else torch.contiguous_format  # exported runtimes take plain NCHW
    out = model(images.contiguous(memory_format=layout)).float()
    if flip:
        mirrored = model(images.flip(-1).contiguous(memory_format=layout)).float()
        out = F.normalize(out, dim=1) + F.normalize(mirrored, dim=1)
    return out


def iter_embed(model: nn.Module, paths: Sequence[Path], transform: Callable, batch_size: int = 64,
               num_workers: int = 0, desc: str = "embedding", flip: bool = False) -> Iterator[np.ndarray]:
    """Run `model` over the images in eval mode, one float32 (batch, d) block at a time, in order.

    flip: test-time augmentation; each row is the sum of the L2-normalised embeddings of the image
    and its mirror image (a face's identity does not change in the mirror).
    """
    loader = DataLoader(ImageDataset(paths, transform), batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        persistent_workers=False, pin_memory=device_of(model).type == "cuda")
    model.eval()
    with torch.inference_mode():
        for images in bar(prefetched(loader) if num_workers == 0 else loader, desc=desc, leave=False, total=len(loader),
                          hide=len(paths) < batch_size * 4):
            yield embed_batch(model, images, flip).cpu().numpy().astype(np.float32)


def extract(model: nn.Module, paths: Sequence[Path], transform: Callable, batch_size: int = 64,
            num_workers: int = 0, desc: str = "embedding", flip: bool = False) -> np.ndarray:
    """iter_embed gathered into one float32 (n, d) array."""
    chunks = list(iter_embed(model, paths, transform, batch_size, num_workers, desc, flip))
    if not chunks:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(chunks)


def embed_images(model: nn.Module, images: Sequence, transform: Callable, flip: bool = False, batch_size: int = 64) -> np.ndarray:
    """In-memory PIL images (a user's photos, already aligned) -> float32 (n, d), as iter_embed would embed their files."""
    model.eval()
    blocks = []
    with torch.inference_mode():
        for lo in range(0, len(images), batch_size):
            batch = torch.stack([transform(img) for img in images[lo : lo + batch_size]])
            blocks.append(embed_batch(model, batch, flip).cpu().numpy().astype(np.float32))
    return np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)
