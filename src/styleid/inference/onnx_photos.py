"""Photos -> embeddings through the exported ONNX model with NumPy, Pillow and ONNX Runtime alone: no torch and no
torchvision, whose import would otherwise be most of a cold `styleid search` or a server's start.

The pixels are the test-time transform's (inference/transforms.py: torchvision resizes and crops PIL images with PIL
itself) and the model input is the same scale and shift per channel; flip averaging is inference/embed.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from styleid.images import read_image
from styleid.inference.normalize import l2_normalize
from styleid.inference.onnx_session import check_shapes, onnx_path, ort_session
from styleid.inference.prefetch import prefetched
from styleid.models.spec import load_spec
from styleid.progress import bar


def runs_without_torch(runtime: str, num_workers: int) -> bool:
    """Whether embed.runtime resolves to ONNX Runtime on the CPU (inference/runtimes.py: auto is ONNX Runtime unless
    OpenVINO is installed too, when the faster one is measured) and the images are decoded in this process, so this
    module can embed them."""
    import importlib.util

    if num_workers != 0 or importlib.util.find_spec("onnxruntime") is None:
        return False
    if runtime != "onnxruntime" and not (runtime == "auto" and importlib.util.find_spec("openvino") is None):
        return False
    import onnxruntime

    return "CUDAExecutionProvider" not in onnxruntime.get_available_providers()


RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


class OnnxPhotoModel:
    """The exported model (fp32 or int8) called on PIL images; `embed` gives raw float32 (n, d) rows."""

    def __init__(self, model_dir: Path, precision: str = "fp32", threads: int = 0):
        self.spec = spec = load_spec(Path(model_dir))
        path = onnx_path(model_dir, precision)
        self.session = ort_session(path, threads)
        check_shapes(path, spec, self.session.get_inputs()[0].shape, self.session.get_outputs()[0].shape)
        self.input_name = self.session.get_inputs()[0].name
        mean = np.array(spec.mean if spec.normalize_input else (0.0, 0.0, 0.0), np.float64)
        std = np.array(spec.std if spec.normalize_input else (1.0, 1.0, 1.0), np.float64)
        self.scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(3, 1, 1)
        self.shift = (-mean / std).astype(np.float32).reshape(3, 1, 1)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """uint8 (3, size, size): the whole image resized to size / crop_pct, then its centre (faces sit in the middle)."""
        size = self.spec.input_size
        side = int(round(size / self.spec.crop_pct))
        image = image.convert("RGB") if image.mode != "RGB" else image
        image = image.resize((side, side), RESAMPLE.get(self.spec.interpolation, Image.Resampling.BILINEAR))
        if side != size:
            top = left = int(round((side - size) / 2.0))
            image = image.crop((left, top, left + size, top + size))
        return np.asarray(image).transpose(2, 0, 1)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: np.ascontiguousarray(inputs, dtype=np.float32)})[0], np.float32)

    def run(self, pixels: np.ndarray, flip: bool = False) -> np.ndarray:
        """uint8 (n, 3, size, size) -> raw float32 (n, d); flip: each row is the sum of the L2-normalised image and mirror
        embeddings."""
        inputs = pixels.astype(np.float32) * self.scale + self.shift
        if not flip:
            return self.forward(inputs)
        both = self.forward(np.concatenate([inputs, inputs[..., ::-1]]))  # one call: one pass of the runtime's overhead, not two
        return l2_normalize(both[: len(inputs)]) + l2_normalize(both[len(inputs) :])

    def embed(self, images: Sequence[Image.Image], flip: bool = False, batch_size: int = 64) -> np.ndarray:
        """In-memory PIL images -> raw float32 (n, d)."""
        blocks = [self.run(np.stack([self.pixels(img) for img in images[lo : lo + batch_size]]), flip) for lo in range(0, len(images), batch_size)]
        return np.concatenate(blocks) if blocks else np.zeros((0, self.spec.out_dim), np.float32)

    def embed_files(self, paths: Sequence[Path], flip: bool = False, batch_size: int = 64, desc: str = "embed") -> Iterator[np.ndarray]:
        """Image files -> raw float32 (batch, d) blocks, in order; each next batch read and resized in a thread meanwhile."""
        chunks = [paths[lo : lo + batch_size] for lo in range(0, len(paths), batch_size)]
        decoded = (np.stack([self.pixels(read_image(Path(p))) for p in chunk]) for chunk in chunks)
        for pixels in bar(prefetched(decoded), desc=desc, leave=False, total=len(chunks), hide=len(paths) < batch_size * 4):
            yield self.run(pixels, flip)
