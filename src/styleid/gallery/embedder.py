"""Photos -> embeddings with a trained model: the model's own transform, face alignment, flip averaging, L2
normalisation. Loaded once, used for many calls: by `styleid search` (the pipeline's settings), and by folder
indexes and the server (the settings in the model's card)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from styleid.data.align import AlignSettings
from styleid.fileio import read_json
from styleid.inference.onnx_session import ONNX_FILES, model_file, onnx_precision


class PhotoEmbedder:
    def __init__(self, model_dir: Path, align: AlignSettings, flip: bool, runtime: str = "auto", device: str = "cpu",
                 batch_size: int = 64, precision: str = "fp32"):
        import torch

        from styleid.data.align import FaceAligner
        from styleid.inference.runtimes import load_runtime
        from styleid.inference.transforms import eval_transform

        self.model = load_runtime(runtime, model_dir, torch.device(device), precision)
        self.transform = eval_transform(self.model.spec)
        self.flip, self.batch_size = flip, batch_size
        self.aligner = FaceAligner(align) if align.method == "mtcnn" else None

    @classmethod
    def from_card(cls, model_dir: Path, align: bool = True) -> "PhotoEmbedder | OnnxPhotoEmbedder":
        """As the model's card.json says (alignment, flip averaging, precision when its file is there); align=False: the
        images go in as they are."""
        card = read_json(model_dir / "card.json") if (model_dir / "card.json").is_file() else {}
        alignment = card.get("alignment", {"method": "none"})
        method = alignment.get("method", "none") if align else "none"
        precision = onnx_precision(card.get("precision", "fp32"), model_dir)  # auto: int8 where its check agrees
        if precision == "int8" and not model_file(model_dir, ONNX_FILES["int8"]).is_file():
            precision = "fp32"  # a folder exported without its int8 file still works, at full precision
        if method == "none" and importlib.util.find_spec("onnxruntime") is not None and model_file(model_dir, ONNX_FILES[precision]).is_file():
            return OnnxPhotoEmbedder(model_dir, card.get("flip_tta", True), precision)  # no face to find: torch is not needed
        return cls(model_dir, AlignSettings(method, alignment.get("size", 256), alignment.get("margin", 0.2)), card.get("flip_tta", True),
                   precision=precision)

    def crops(self, images: list) -> list:
        """What the model sees of each photo: its face crop when the model was trained on aligned photos."""
        return [self.aligner(img).crop for img in images] if self.aligner else list(images)

    def embed_crops(self, crops: list) -> np.ndarray:
        from styleid.inference.embed import embed_images
        from styleid.inference.normalize import l2_normalize

        return l2_normalize(embed_images(self.model, crops, self.transform, self.flip, self.batch_size))

    def embed(self, images: list) -> np.ndarray:
        return self.embed_crops(self.crops(images))


class OnnxPhotoEmbedder:
    """PhotoEmbedder's calls for a model whose photos need no face alignment, through ONNX Runtime without torch
    (inference/onnx_photos.py): what `styleid search --index` and the server use for such models."""

    def __init__(self, model_dir: Path, flip: bool, precision: str = "fp32", batch_size: int = 64):
        from styleid.inference.onnx_photos import OnnxPhotoModel

        self.model = OnnxPhotoModel(model_dir, precision)
        self.flip, self.batch_size = flip, batch_size

    def crops(self, images: list) -> list:
        return list(images)

    def embed_crops(self, crops: list) -> np.ndarray:
        from styleid.inference.normalize import l2_normalize

        return l2_normalize(self.model.embed(crops, self.flip, self.batch_size))

    def embed(self, images: list) -> np.ndarray:
        return self.embed_crops(images)
