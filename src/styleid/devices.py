"""Where the model runs: the GPU when there is one, unless STYLEID_DEVICE=cpu says otherwise."""

from __future__ import annotations

import os

import torch


def best(local_rank: int = 0) -> torch.device:
    """cuda:<local_rank> when CUDA is usable and not switched off, else cpu."""
    wanted = os.environ.get("STYLEID_DEVICE", "auto").lower()
    if wanted != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")
