"""What self-training pulls each image toward: a memory of its pseudo-person's centroid (cluster contrast, Dai et al.
2021), rather than class proxies learnt from nothing.

The memory starts as the mean of each pseudo-person's embeddings, so the first step already has a meaningful target,
and follows the model by momentum: after each step a centroid moves toward its members' new embeddings in the batch.
The loss is a softmax over every centroid at a temperature, the right one as target (an InfoNCE over people).

`domain_centroids` keeps two centroids per pseudo-person, one from its photos and one from its renders (proxies per
camera, as camera-aware re-identification keeps them): a photo is pulled toward its person's render centroid and a render
toward the photo one (every person's centroids of both domains the negatives), and each also toward its own domain's
centroid among that domain's. So the loss pulls across the gap rather than toward a centroid the photos dominate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from styleid.registry import Registry

MEMORIES: Registry = Registry("self-training memory")  # self_train.memory chooses: name -> ClusterMemory subclass


class ClusterMemory(nn.Module):
    """Unit centroids (k, d) as a buffer (saved with a checkpoint, never trained by the optimiser)."""

    def __init__(self, embeddings: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor, temperature: float, momentum: float):
        super().__init__()
        self.temperature, self.momentum = temperature, momentum
        slots = self.slots(labels, domains)
        k = int(slots.max()) + 1
        sums = torch.zeros(k, embeddings.shape[1]).index_add_(0, slots, F.normalize(embeddings.float(), dim=1))
        self.register_buffer("centroids", F.normalize(sums, dim=1))

    def slots(self, labels: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        """The centroid each image belongs to (domains: 1 for a photo, 0 for a render)."""
        return labels

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        logits = F.normalize(embeddings, dim=1) @ self.centroids.T / self.temperature
        return F.cross_entropy(logits, labels)

    @torch.no_grad()
    def update(self, embeddings: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor) -> None:
        """Each centroid in the batch moves toward the mean of its members there, by (1 - momentum)."""
        slots = self.slots(labels, domains)
        f = F.normalize(embeddings.detach().float(), dim=1)
        for slot in slots.unique():
            mean = f[slots == slot].mean(0)
            self.centroids[slot] = F.normalize(self.momentum * self.centroids[slot] + (1 - self.momentum) * mean, dim=0)


@MEMORIES.register("centroids")
class Centroids(ClusterMemory):
    """One centroid per pseudo-person."""


@MEMORIES.register("domain_centroids")
class DomainCentroids(ClusterMemory):
    """Two centroids per pseudo-person (2 * person + 1 from photos, 2 * person from renders); every pseudo-person holds both
    domains, so both are always there."""

    def slots(self, labels: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        return 2 * labels + domains

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        logits = F.normalize(embeddings, dim=1) @ self.centroids.T / self.temperature
        across = F.cross_entropy(logits, 2 * labels + 1 - domains)  # the person's centroid in the other domain, against everyone's
        own_domain = logits.view(len(logits), -1, 2).gather(2, domains.view(-1, 1, 1).expand(-1, logits.shape[1] // 2, 1)).squeeze(2)
        within = F.cross_entropy(own_domain, labels)  # the person's centroid in its own domain, against that domain's
        return (across + within) / 2


def create_memory(name: str, embeddings: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor, temperature: float,
                  momentum: float) -> ClusterMemory:
    return MEMORIES.get(name)(embeddings, labels, domains, temperature, momentum)
