"""Photos -> embeddings with a model folder (model.json + model.onnx): the model's own transform, face
alignment as the card says, flip averaging, L2 normalisation. Loaded once, used for many calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from styleid.fileio import read_json


class PhotoEmbedder:
    def __init__(self, model_dir: Path, align: bool = True, runtime: str = "auto"):
        import torch

        from styleid.data.align import AlignSettings, FaceAligner
        from styleid.inference.runtimes import load_runtime
        from styleid.inference.transforms import eval_transform

        self.model = load_runtime(runtime, model_dir, torch.device("cpu"))
        self.transform = eval_transform(self.model.spec)
        card = read_json(model_dir / "card.json") if (model_dir / "card.json").is_file() else {}
        alignment = card.get("alignment", {"method": "none"})
        self.flip = card.get("flip_tta", True)
        self.aligner = (FaceAligner(AlignSettings("mtcnn", alignment.get("size", 256), alignment.get("margin", 0.2)))
                        if align and alignment.get("method") == "mtcnn" else None)

    def crops(self, images: list) -> list:
        """What the model sees of each photo: its face crop when the model was trained on aligned photos."""
        return [self.aligner(img).crop for img in images] if self.aligner else list(images)

    def embed(self, images: list) -> np.ndarray:
        from styleid.inference.embed import embed_images
        from styleid.inference.normalize import l2_normalize

        return l2_normalize(embed_images(self.model, self.crops(images), self.transform, self.flip))
