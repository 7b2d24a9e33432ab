"""Image transforms (torchvision v2) built from the model's own input size and normalisation.

Training augmentation targets the photo -> rendering gap: geometric and photometric changes,
and style changes that make a photo look drawn (the stylize renderers allowed for training,
an edge map, posterization). Every random choice comes from torch's generator, so a seed fixes
the augmented images.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision.transforms import v2 as T

from styleid.data.stylize import stylize
from styleid.inference.transforms import eval_transform, interpolation, to_pixels
from styleid.models.spec import ModelSpec
from styleid.params import AugmentParams


def _coin(p: float) -> bool:
    return p > 0 and float(torch.rand(())) < p


class StyleAugment:
    """With probability p, render the photo in one of the styles allowed for training."""

    def __init__(self, styles: Sequence[str], p: float):
        self.styles, self.p = list(styles), p

    def __call__(self, img: Image.Image) -> Image.Image:
        if not self.styles or not _coin(self.p):
            return img
        style = self.styles[int(torch.randint(len(self.styles), ()))]
        return stylize(img, style, np.random.default_rng(int(torch.randint(2**31 - 1, ()))))


class EdgeMap:
    """With probability p, an inverted edge map: dark strokes on white, like a line drawing."""

    def __init__(self, p: float):
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        if not _coin(self.p):
            return img
        edges = img.convert("L").filter(ImageFilter.SMOOTH).filter(ImageFilter.FIND_EDGES)
        return ImageOps.invert(ImageOps.autocontrast(edges)).convert("RGB")


class Exaggerate:
    """With probability p, a caricaturist's warp: each facial region (eyes, nose, mouth, chin, brow) is
    magnified or shrunk by a random amount up to `strength`, as artists enlarge what is distinctive.

    A smooth displacement field over the whole image (no landmarks needed: faces sit centred in the
    frame, in aligned crops and in the datasets' own crops), sampled bilinearly.
    """

    # (x, y) of face regions in [-1, 1] image coordinates for a centred face
    REGIONS = ((-0.3, -0.15), (0.3, -0.15), (0.0, 0.15), (0.0, 0.5), (0.0, 0.85), (0.0, -0.6))
    RADIUS = 0.35

    def __init__(self, p: float, strength: float):
        self.p, self.strength = p, strength

    def field(self, size: tuple[int, int], amounts: torch.Tensor) -> torch.Tensor:
        """The sampling grid (1, h, w, 2) for magnification `amounts` per region (> 0 enlarges it)."""
        h, w = size
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        grid = torch.stack([xs, ys], dim=-1)
        shift = torch.zeros_like(grid)
        for (cx, cy), a in zip(self.REGIONS, amounts):
            d = grid - torch.tensor([cx, cy])
            shift -= a * d * torch.exp(-(d**2).sum(-1, keepdim=True) / self.RADIUS**2)
        return (grid + shift).unsqueeze(0)

    def __call__(self, img: Image.Image) -> Image.Image:
        if not _coin(self.p) or self.strength <= 0:
            return img
        amounts = (torch.rand(len(self.REGIONS)) * 2 - 1) * self.strength
        x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
        warped = torch.nn.functional.grid_sample(x, self.field((img.height, img.width), amounts), mode="bilinear",
                                                 padding_mode="border", align_corners=True)
        return Image.fromarray(warped[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy())


def train_transform(spec: ModelSpec, augment: bool, aug: AugmentParams | None = None, styles: Sequence[str] = (),
                    photo: bool = True) -> Callable:
    """Photo-side augmentation first (style, edges; photos only), then geometry and colour, to uint8 pixels."""
    if not augment:
        return eval_transform(spec)
    aug = aug or AugmentParams()
    size = spec.input_size
    style_steps = [Exaggerate(aug.exaggerate, aug.exaggerate_strength), StyleAugment(styles, aug.style), EdgeMap(aug.edges)] if photo else []
    return T.Compose([
        *style_steps,
        T.RandomResizedCrop(size, scale=(aug.crop_scale, 1.0), ratio=(0.85, 1.15), interpolation=interpolation(spec.interpolation), antialias=True),
        T.RandomHorizontalFlip(aug.flip),
        T.RandomApply([T.ColorJitter(0.3, 0.3, 0.3, 0.05)], p=aug.color_jitter),
        T.RandomGrayscale(p=aug.grayscale),
        T.RandomApply([T.GaussianBlur(5, sigma=(0.1, 2.0))], p=aug.blur),
        T.RandomPosterize(bits=3, p=aug.posterize),
        to_pixels(),  # the model's float input is made per batch (inference.transforms.model_input)
    ])
