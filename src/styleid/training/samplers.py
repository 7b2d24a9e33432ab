"""Batch composition: class-balanced (m images per person), and cross-domain pairing.

Metric losses need positives in every batch: pytorch-metric-learning's MPerClassSampler puts m
images of each sampled person in a batch. When people have both photos and renders, the
cross-domain sampler splits those m between the two domains, so every positive pair the loss
sees can cross the gap the test asks it to cross.

Distributed: every rank takes rank_share of the same global batches (drawn once, by rank 0), so the
global batch stays class-balanced; seeded_batches gives each image its own augmentation seed from
its place in the epoch, so the augmented images do not depend on how many processes train.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def class_balanced(labels: Sequence[int], m: int, batch_size: int) -> Sampler[int]:
    from pytorch_metric_learning.samplers import MPerClassSampler

    return MPerClassSampler(list(labels), m=m, batch_size=batch_size, length_before_new_iter=len(labels))


class CrossDomainBatchSampler(Sampler[list[int]]):
    """Batches of batch_size // m people, m images each, half photos and half renders where a person has both."""

    def __init__(self, labels: Sequence[int], domains: Sequence[str], m: int, batch_size: int, seed: int):
        self.m, self.people_per_batch = m, max(1, batch_size // m)
        self.by_person: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for index, (label, domain) in enumerate(zip(labels, domains)):
            self.by_person[label][domain].append(index)
        self.people = sorted(self.by_person)
        self.n_batches = max(1, len(labels) // (self.people_per_batch * m))
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return self.n_batches

    def _take(self, pool: list[int], n: int, rng: np.random.Generator) -> list[int]:
        return list(rng.choice(pool, size=n, replace=len(pool) < n))

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, 73, self.epoch])
        self.epoch += 1
        queue: list[int] = []
        wanted = min(self.people_per_batch, len(self.people))
        for _ in range(self.n_batches):
            chosen: list[int] = []
            while len(chosen) < wanted:  # each person once per batch, everyone once per pass
                if not queue:
                    queue = [int(p) for p in rng.permutation(self.people)]
                person = queue.pop(0)
                if person not in chosen:
                    chosen.append(person)
            batch: list[int] = []
            for person in chosen:
                domains = self.by_person[person]
                if len(domains) >= 2:
                    renders = [i for d, idx in domains.items() if d != "photo" for i in idx]
                    photos = domains.get("photo") or renders
                    half = self.m // 2
                    batch += self._take(photos, self.m - half, rng) + self._take(renders, half, rng)
                else:
                    batch += self._take(next(iter(domains.values())), self.m, rng)
            yield [int(i) for i in batch]


def has_cross_domain_people(labels: Sequence[int], domains: Sequence[str]) -> bool:
    seen: dict[int, set[str]] = defaultdict(set)
    for label, domain in zip(labels, domains):
        seen[label].add(domain)
    return any(len(d) >= 2 for d in seen.values())


def seeded_batches(batches: Sequence[Sequence[int]], seed: int, epoch: int) -> list[list[tuple[int, int]]]:
    """(image index, augmentation seed) per batch item; the seed depends on the item's place in the epoch only."""
    base = int(np.random.SeedSequence([seed, 11, epoch]).generate_state(1)[0])
    out, position = [], 0
    for batch in batches:
        out.append([(int(i), (base + position + j) % 2**31) for j, i in enumerate(batch)])
        position += len(batch)
    return out


def rank_share(batches: Sequence[Sequence], rank: int, world: int) -> list[list]:
    """Rank `rank`'s contiguous share of every batch (shares differ in size by at most one item)."""
    return [list(b[(len(b) * rank) // world:(len(b) * (rank + 1)) // world]) for b in batches]
