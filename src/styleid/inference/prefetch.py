"""Each next batch prepared in a thread while the model runs on the current one (no torch: the ONNX path uses it too)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator


def prefetched(batches: Iterable) -> Iterator:
    """Each next batch decoded in a thread while the model runs on the current one. Decoding (PIL) and the forward pass
    (ONNX Runtime, torch) release the GIL, so one thread fills the cores' idle moments; DataLoader worker processes
    would compete with the runtime's threads instead (reports/speed.md: the embed path against the bare forward pass)."""
    source = iter(batches)
    with ThreadPoolExecutor(1, thread_name_prefix="styleid-decode") as pool:
        upcoming = pool.submit(next, source, None)
        while (batch := upcoming.result()) is not None:
            upcoming = pool.submit(next, source, None)
            yield batch
