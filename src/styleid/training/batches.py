"""Where training batches come from, behind one interface: images decoded and augmented each epoch, or,
for a frozen backbone without augmentation, its features computed once (the reference recipe then costs
one pass over the images, not one per epoch). Each source also embeds the validation parts."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from styleid.inference.embed import extract
from styleid.training.process_group import ProcessGroup

Pairs = list[tuple[Path, str]]  # (image, person)
Batch = tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]  # (images, labels, features): one of images, features


def embed_parts(network: nn.Module, parts: dict[str, Pairs], transform: Callable, batch_size: int, num_workers: int, flip: bool,
                desc: str, group: ProcessGroup) -> dict[str, torch.Tensor]:
    """Run `network` on each image once across parts (closed protocol: the held-out images are the val images);
    several processes each embed their share and gather the rest."""
    unique = list(dict.fromkeys(path for pairs in parts.values() for path, _ in pairs))
    if not unique:
        return {}
    row = {path: i for i, path in enumerate(unique)}
    mine = extract(network, group.share(unique), transform, batch_size, num_workers, desc, flip=flip)
    every = torch.from_numpy(np.concatenate([m for m in group.all_gather(mine) if m.size]))
    return {name: every[[row[path] for path, _ in pairs]] for name, pairs in parts.items() if pairs}


class ImageBatches:
    """Training images through the dataset's transforms (augmentation seeded per item), every epoch."""

    def __init__(self, dataset, val_parts: dict[str, Pairs], transform: Callable, batch_size: int, num_workers: int, flip: bool,
                 group: ProcessGroup):
        self.dataset, self.val_parts, self.transform = dataset, val_parts, transform
        self.batch_size, self.num_workers, self.flip, self.group = batch_size, num_workers, flip, group

    def epoch(self, batches: list[list[tuple[int, int]]]) -> Iterator[Batch]:
        loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers, pin_memory=self.group.device.type == "cuda")
        return ((images, labels, None) for images, labels in loader)

    def validation(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return embed_parts(model, self.val_parts, self.transform, self.batch_size, self.num_workers, self.flip, "train: validation", self.group)


class FeatureBatches:
    """A frozen backbone's features of every part, computed once; the epochs train the head on them."""

    def __init__(self, backbone: nn.Module, train: Pairs, labels: list[int], val_parts: dict[str, Pairs], transform: Callable,
                 batch_size: int, num_workers: int, group: ProcessGroup):
        self.labels, self.device = torch.as_tensor(labels), group.device
        self.features = embed_parts(backbone, {"train": train, **val_parts}, transform, batch_size, num_workers, False,
                                    "train: backbone features", group)

    def epoch(self, batches: list[list[tuple[int, int]]]) -> Iterator[Batch]:
        return ((None, self.labels[idx], self.features["train"][idx]) for idx in (torch.as_tensor([i for i, _ in b]) for b in batches))

    def validation(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {name: model.head(f.to(self.device)).cpu() for name, f in self.features.items() if name != "train"}
