#!/usr/bin/env bash
# GPU checks, ready to run on a machine with CUDA (about 5 minutes): train on CUDA (one process, and two
# under torchrun when two GPUs exist), embed with torch and with ONNX Runtime's CUDA provider, embed with
# Ray GPU actors; each prints images/s. Never part of the tests. Usage: bash scripts/gpu_check.sh [images]
# (ONNX Runtime's CUDA provider needs `pip install onnxruntime-gpu` in place of onnxruntime; Ray needs
# `pip install 'styleid[distributed]'`; a missing piece is reported and skipped.)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-1024}
WORK=$(mktemp -d /tmp/styleid-gpu-XXXX)
trap 'rm -rf "$WORK"' EXIT
PY=${PYTHON:-python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

cat > "$WORK/check.py" <<'PY'
import json, os, sys, time
from pathlib import Path

import torch

work, images, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
from styleid.data.synthetic import generate
from styleid.params import params_from_dict
from styleid.training.loop import TrainSet, train

if mode == "data":
    generate(work / "data", seed=0, people=max(8, images // 8), photos=4, renders=4, size=160)
    sys.exit(0)
pairs = [(f, f.parent.name) for f in sorted((work / "data" / "photos").rglob("*.png"))]
params = params_from_dict({"epochs": 1, "batch_size": 64, "train": {"num_workers": 4, "patience": 0}})
if mode == "train":
    from styleid.distributed import ddp

    ddp.init()  # joins torchrun's group when torchrun started this process; one process otherwise
    result = train(params, TrainSet(pairs))
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"train ({os.environ.get('WORLD_SIZE', '1')} process(es), {torch.cuda.get_device_name()}): "
              f"{result.images_seen / result.step_seconds:.1f} images/s")
    sys.exit(0)

from styleid.inference import runtimes
from styleid.inference.embed import extract
from styleid.inference.onnx_export import export_onnx
from styleid.models.embedder import ModelConfig, build, save
from styleid.params import EmbedParams

folder = work / "model"
save(build(ModelConfig("facenet", "offline")), folder)
export_onnx(runtimes.load_runtime("torch", folder, torch.device("cpu")), folder / runtimes.ONNX_FILE)
files = [f for f, _ in pairs][:images]
cuda = torch.device("cuda")
for name in ("torch", "onnxruntime"):
    try:
        model = runtimes.load_runtime(name, folder, cuda)
        if name == "onnxruntime":
            import onnxruntime as ort
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                print("embed (onnxruntime CUDA): skipped: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
                continue
        from styleid.inference.transforms import eval_transform
        tf = eval_transform(model.spec)
        extract(model, files[:128], tf, 128, 4)  # warm-up
        start = time.perf_counter()
        extract(model, files, tf, 128, 8, flip=True)
        print(f"embed ({name}, CUDA, flip averaging): {len(files) / (time.perf_counter() - start):.1f} images/s")
    except Exception as exc:
        print(f"embed ({name}): failed: {type(exc).__name__}: {str(exc)[:200]}")
try:
    from styleid.distributed.ray_embed import RayEngine
    engine_params = EmbedParams(engine="ray", batch_size=128, ray_gpus_per_actor=1.0, runtime="torch")
    with RayEngine(folder, engine_params) as engine:
        list(engine.iter_embed(files[:128]))
        start = time.perf_counter()
        n = sum(len(b) for b in engine.iter_embed(files))
        print(f"embed (Ray GPU actors, {torch.cuda.device_count()} GPU(s)): {n / (time.perf_counter() - start):.1f} images/s")
except Exception as exc:
    print(f"embed (Ray): skipped: {type(exc).__name__}: {str(exc)[:200]}")
PY

$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device here')"
echo "gpu_check: $($PY -c 'import torch; print(torch.cuda.device_count(), "x", torch.cuda.get_device_name(), "torch", torch.__version__)')"
timeout 60 $PY "$WORK/check.py" "$WORK" "$IMAGES" data
timeout 120 $PY "$WORK/check.py" "$WORK" "$IMAGES" train
if [ "$($PY -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  timeout 120 $PY -m torch.distributed.run --standalone --nproc-per-node=2 "$WORK/check.py" "$WORK" "$IMAGES" train
else
  echo "train (2 processes): skipped: one GPU"
fi
timeout 120 $PY "$WORK/check.py" "$WORK" "$IMAGES" embed
