"""training/cluster_memory.py: centroid memories self-training pulls each image toward."""

import torch
import torch.nn.functional as F

from styleid.training.cluster_memory import MEMORIES, create_memory

# two pseudo-people in 2-d: person 0's photos near (1, 0) and renders near (0.8, 0.6); person 1's near (0, 1) and (-0.6, 0.8)
EMB = torch.tensor([[1.0, 0.0], [0.98, 0.1], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
LABELS = torch.tensor([0, 0, 0, 1, 1])
PHOTO = torch.tensor([1, 1, 0, 1, 0])


def test_centroids_start_as_each_pseudo_persons_normalised_mean_and_follow_by_momentum():
    memory = create_memory("centroids", EMB, LABELS, PHOTO, temperature=0.05, momentum=0.5)
    expected = F.normalize(torch.stack([F.normalize(EMB[:3], dim=1).sum(0), F.normalize(EMB[3:], dim=1).sum(0)]), dim=1)
    assert torch.allclose(memory.centroids, expected, atol=1e-6)
    memory.update(torch.tensor([[0.0, -1.0]]), torch.tensor([1]), torch.tensor([1]))
    assert torch.allclose(memory.centroids[0], expected[0])  # only the batch's pseudo-people move
    assert torch.allclose(memory.centroids[1], F.normalize(0.5 * expected[1] + 0.5 * torch.tensor([0.0, -1.0]), dim=0), atol=1e-6)


def test_the_loss_is_lowest_at_the_right_centroid():
    for name in MEMORIES:
        memory = create_memory(name, EMB, LABELS, PHOTO, temperature=0.05, momentum=0.2)
        near = memory(memory.centroids[[0]], torch.tensor([0]), torch.tensor([1]))
        far = memory(torch.tensor([[0.0, 1.0]]), torch.tensor([0]), torch.tensor([1]))
        assert near < far, name


def test_domain_centroids_pull_a_photo_toward_its_persons_render_centroid():
    memory = create_memory("domain_centroids", EMB, LABELS, PHOTO, temperature=0.05, momentum=0.2)
    assert memory.centroids.shape == (4, 2)  # person 0 render, person 0 photo, person 1 render, person 1 photo
    assert torch.allclose(memory.centroids[0], F.normalize(EMB[2], dim=0)) and torch.allclose(memory.centroids[3], F.normalize(EMB[3], dim=0))
    photo = torch.tensor([1])
    at_render = memory(memory.centroids[[0]], torch.tensor([0]), photo)
    at_photo = memory(memory.centroids[[1]], torch.tensor([0]), photo)
    assert at_render < at_photo  # across the gap: the render centroid is the photo's first target
    memory.update(torch.tensor([[0.0, -1.0]]), torch.tensor([0]), photo)  # a photo moves its person's photo centroid only
    assert torch.allclose(memory.centroids[0], F.normalize(EMB[2], dim=0)) and not torch.allclose(memory.centroids[1], F.normalize(EMB[0] + EMB[1], dim=0))
