"""Benchmarks: styleid's stages against what the hardware allows. Writes metrics/bench.json and prints one table.

    python scripts/bench.py [--vectors 200000] [--queries 10000] [--dim 512] [--images 768] [--only embed,growth,cluster,self_train]

- cluster_100k_seconds, cluster_100k_peak_gb: the self_train stage's pseudo-identity clustering (sparse k-reciprocal
  Jaccard, then DBSCAN) of 100,000 synthetic embeddings, in a process of its own (scripts/bench_cluster.py).
- self_train_seconds: the self_train stage (its validation check included) on 3,000 synthetic 160 px test images (1,000
  photos query 2,000 renders) after a one-epoch training and its export; self_train_vs_forward_backward: its fine-tune's images/s over
  a bare forward+backward+step of the part that trains (the top, on in-memory trunk features).
- embed_vs_best_runtime: the embed path (decode + transform, batched, the runtime and precision that
  embed.runtime and embed.precision auto pick; batch size and workers from params.yaml) in images/s, over
  the fastest bare runtime's forward pass at that precision (torch eager, ONNX Runtime, OpenVINO: each
  installed one is measured, fp32 and int8) on the same images already in memory. The images are read as
  align's JPEG face crops (what every photo dataset's embed stage reads); _png: as the synthetic default's PNGs.
  With embed.flip_tta (the default) the stage embeds each image and its mirror, and so do the bare passes;
  _noflip: both without.
- train_vs_forward_backward: the training loop's images/s (decode, augmentation, forward, backward,
  optimiser step; validation excluded; workers and decoded cache from params.yaml) over a bare
  forward+backward+step on in-memory tensors, same batch size, at FaceNet's 160 px; _default: at the
  synthetic default's 96 px, where augmentation weighs more against a cheaper forward pass.
- default_repro_seconds: `dvc repro` of the default params in a fresh copy of the pipeline, from nothing.
- noop_repro_seconds: `dvc repro` in a finished copy of the pipeline, nothing to do.
- FAISS: per index_factory string, build seconds, queries/s and recall@10 against exact search,
  on clustered random unit vectors.
No timed asserts anywhere: these are measurements, run by `make bench`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import typer
import yaml

REPO = Path(__file__).resolve().parents[1]
FACTORIES = ["Flat", "HNSW32", "IVF1024,Flat", "IVF1024,PQ64"]
ROUNDS = 3  # interleaved repeats of the embed comparison


def _images(n: int, size: int, root: Path) -> list[Path]:
    from styleid.data.synthetic import generate

    people = max(6, n // 8)
    generate(root, seed=0, people=people, photos=4, renders=4, size=size)
    files = sorted(root.rglob("*.png"))[:n]
    return files


def bench_embed(files: list[Path], crops: list[Path], backbone: str, batch_size: int, workers: int, runtime: str, precision: str,
                flip: bool) -> dict:
    """The embed stage's path (decode + transform in a DataLoader, batched, the runtime and precision params.yaml's
    embed section resolves to) against each runtime's bare forward pass, fp32 and int8, on the same images already in
    memory; embed_vs_best_runtime divides by the fastest bare runtime at the stage's precision. Two forms of the same
    pictures: `crops`, JPEG face crops as align writes them (what the stage reads on every photo dataset: their own
    JPEGs, or align's crops), and `files`, PNGs as the synthetic default's fetch writes them. flip (embed.flip_tta): the
    stage embeds each image and its mirror image, so the bare passes run both too; _noflip: the same without."""
    from styleid.fileio import write_json
    from styleid.images import load_rgb
    from styleid.inference import runtimes
    from styleid.inference.embed import extract
    from styleid.inference.onnx_export import export_onnx
    from styleid.inference.quantize import quantize_onnx
    from styleid.inference.transforms import eval_transform, model_input
    from styleid.models.embedder import ModelConfig, build, save

    folder, cpu = Path(tempfile.mkdtemp(prefix="styleid-bench-model-")), torch.device("cpu")
    try:
        save(build(ModelConfig(backbone, "offline", 0, 0, 1.0, True)).eval(), folder)
        torch_model = runtimes.load_runtime("torch", folder, cpu)
        export_onnx(torch_model, folder / runtimes.ONNX_FILE)
        spec = torch_model.spec
        tf = eval_transform(spec)
        tensors = model_input(spec)(torch.stack([tf(load_rgb(f)) for f in files]))
        installed = [r for r in runtimes.FASTEST_FIRST if runtimes.RUNTIMES.get(r).installed()]
        if "onnxruntime" in installed:  # the export stage's int8 model and its check, as auto precision reads them
            check = quantize_onnx(folder / runtimes.ONNX_FILE, folder / runtimes.INT8_FILE, tensors[:128].numpy(), tensors[-64:].numpy())
            write_json(folder / runtimes.INT8_CHECK, check)
        models = {(r, "fp32"): runtimes.load_runtime(r, folder, cpu) for r in installed}
        models.update({(r, "int8"): runtimes.load_runtime(r, folder, cpu, "int8") for r in installed if r != "torch" and "onnxruntime" in installed})
        layout = {"torch": torch.channels_last}

        def bare_pass(key) -> tuple[float, float]:
            """(images/s with the mirror pass when flip, images/s one pass per image) of one runtime on in-memory batches."""
            model, fmt = models[key], layout.get(key[0], torch.contiguous_format)
            batches = [b.contiguous(memory_format=fmt) for b in tensors.split(batch_size)]
            mirrors = [b.flip(-1).contiguous(memory_format=fmt) for b in tensors.split(batch_size)] if flip else []
            with torch.inference_mode():
                model(batches[0])  # warm-up
                start = time.perf_counter()
                for batch in batches:
                    model(batch)
                plain_s = time.perf_counter() - start
                for mirror in mirrors:
                    model(mirror)
                return len(files) / (time.perf_counter() - start), len(files) / plain_s

        first = {key: bare_pass(key) for key in models}  # every runtime once: the table
        stage_model = runtimes.load_runtime(runtime, folder, cpu, precision)
        chosen = getattr(stage_model, "name", "torch")  # auto may have measured which ONNX runtime is faster here
        chosen_precision = runtimes.resolve_precision(precision, chosen, folder)
        extract(stage_model, files[:batch_size], tf, batch_size, workers)  # warm-up, as the bare passes had
        contenders = [key for key in models if key[1] == chosen_precision]
        rounds: list[dict] = []
        for _ in range(ROUNDS):  # this machine's speed drifts within minutes: interleave, then take medians
            row = {key: bare_pass(key) for key in contenders}
            for form, paths, mirror in (("jpeg", crops, flip), ("png", files, flip), ("noflip", crops, False)):
                start = time.perf_counter()
                extract(stage_model, paths, tf, batch_size, workers, flip=mirror)
                row[form] = len(paths) / (time.perf_counter() - start)
            rounds.append(row)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    best = max(contenders, key=lambda key: np.median([r[key][0] for r in rounds]))

    def ratio(form: str, flipped: bool) -> float:  # the median over rounds of the pipeline over the best bare runtime in the same round
        return round(float(np.median([r[form] / r[best][0 if flipped else 1] for r in rounds])), 3)

    def median(form: str) -> float:
        return round(float(np.median([r[form] for r in rounds])), 2)

    return {"embed_runtime": f"{chosen} {chosen_precision}", "embed_images_per_s": median("jpeg"), "embed_images_per_s_png": median("png"),
            "best_runtime": " ".join(best), "embed_rounds": ROUNDS,
            "runtime_images_per_s": {f"{name} {prec}": round(ips[1], 2) for (name, prec), ips in first.items()},  # one pass per image
            "int8_mean_cosine": check["int8_mean_cosine"] if "onnxruntime" in installed else None,
            "forward_images_per_s": round(first[("torch", "fp32")][1], 2), "embed_flip_tta": flip,
            "embed_vs_best_runtime": ratio("jpeg", flip), "embed_vs_best_runtime_png": ratio("png", flip),
            "embed_images_per_s_noflip": median("noflip"), "embed_vs_best_runtime_noflip": ratio("noflip", False)}


def _as_align_crops(files: list[Path], root: Path, side: int) -> list[Path]:
    """The same pictures as align's cached face crops: `side` px JPEG at align's quality."""
    from PIL import Image

    from styleid.data.align import CROP_JPEG_QUALITY

    crops = []
    root.mkdir(parents=True, exist_ok=True)
    for k, f in enumerate(files):
        crops.append(root / f"{k:05d}.jpg")
        with Image.open(f) as img:
            img.convert("RGB").resize((side, side), Image.BICUBIC).save(crops[-1], format="JPEG", quality=CROP_JPEG_QUALITY)
    return crops


def bench_train(root: Path, backbone: str, batch_size: int, workers: int, cache_gb: float, image_side: int = 0, suffix: str = "") -> dict:
    """The training loop (train(): decode, augmentation, forward, backward, fused AdamW step) over the bare
    forward+backward+step on one in-memory batch at the same input size (image_side caps it as in the train stage), after
    a warm-up step; the loop's figure covers two epochs with validation excluded, as the stage runs several."""
    from styleid.models.embedder import ModelConfig, build
    from styleid.params import params_from_dict
    from styleid.training.freeze import apply_freeze
    from styleid.training.loop import TrainSet, train

    pairs = [(f, f.parent.name) for f in sorted((root / "photos").rglob("*.png"))]
    raw = {"backbone": backbone, "epochs": 2, "batch_size": batch_size,  # two epochs: the first step's one-off set-up weighs half
           "train": {"freeze": "none", "loss": "arcface", "augment": True, "num_workers": workers, "m_per_class": 4, "decoded_cache_gb": cache_gb}}
    params = params_from_dict(raw)
    result = train(params, TrainSet(pairs, image_side=image_side))
    loop_ips = result.images_seen / result.step_seconds
    model = build(ModelConfig(backbone, "offline", 0, 0, 1.0, True), image_side=image_side)
    apply_freeze(model, "none", 1)
    model.train()
    x = torch.randn(batch_size, 3, model.spec.input_size, model.spec.input_size).contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as the loop's (training/optim.py)
    model(x).pow(2).mean().backward()  # warm-up
    steps = max(2, len(pairs) // batch_size)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    bare_ips = steps * batch_size / (time.perf_counter() - start)
    return {f"train_input_px{suffix}": model.spec.input_size, f"train_images_per_s{suffix}": round(loop_ips, 2),
            f"forward_backward_images_per_s{suffix}": round(bare_ips, 2), f"train_vs_forward_backward{suffix}": round(loop_ips / bare_ips, 3)}


def bench_growth(sizes: list[int], queries: int, dim: int, rerank: str = "kreciprocal_local") -> dict:
    """scripts/bench_growth.py at each gallery size (a process each: its own peak memory), and how each cost grows:
    the exponent b in cost ~ size^b between the smallest and the largest size (1: linear)."""
    rows = []
    for size in sizes:
        proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_growth.py"), "--size", str(size), "--queries", str(queries),
                               "--dim", str(dim), "--rerank", rerank], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    growth = {}
    if len(rows) > 1:
        span = np.log(rows[-1]["size"] / rows[0]["size"])
        for key in ("build_s", "search_ms_per_query", "retrieve_ms_per_query", "peak_gb", "retrieve_peak_gb"):
            growth[key] = round(float(np.log(max(rows[-1].get(key) or 0, 1e-9) / max(rows[0].get(key) or 0, 1e-9)) / span), 2)
    return {"growth": rows, "growth_exponent": growth}


def bench_cluster(size: int, dim: int) -> dict:
    """scripts/bench_cluster.py: the self_train stage's clustering of `size` synthetic embeddings, in a process of its own."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_cluster.py"), "--size", str(size), "--dim", str(dim)],
                          capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    tag = f"{size // 1000}k" if size % 1000 == 0 else str(size)
    return {f"cluster_{tag}_seconds": row["seconds"], f"cluster_{tag}_peak_gb": row["peak_gb"], f"cluster_{tag}_found_people": row["pseudo_people"]}


def bench_self_train(test_people: int = 1000, epochs: int = 1) -> dict:
    """The self_train stage on a fixed synthetic set, 1,000 test people with a 160 px photo and 2 renders each (3,000 test
    images), after a one-epoch training and its export (not timed): its validation check (a use: auto run, which the synthetic
    validation people decline) plus the whole stage with the test's fine-tune and export (use: always); and that fine-tune's
    images/s against a bare forward+backward+step of the part that trains."""
    from styleid.models.embedder import ModelConfig, build
    from styleid.models.split import split

    tmp = Path(tempfile.mkdtemp(prefix="styleid-bench-self-train-"))
    try:
        copy_pipeline(tmp)
        params = yaml.safe_load((tmp / "params.yaml").read_text())
        params["epochs"] = epochs
        params["data"]["synthetic"].update(test_people=test_people, test_photos=1, test_renders=2, image_size=160)
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        timed = {}
        for use in ("auto", "always"):
            params["self_train"]["use"] = use
            (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            if use == "auto":
                for cmd in (["git", "init", "-q"], ["git", "-c", "user.email=b@b", "-c", "user.name=b", "add", "-A"],
                            ["git", "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "bench"], ["dvc", "repro", "-q", "export"]):
                    subprocess.run(cmd, cwd=tmp, env=env, check=True, capture_output=True)
            start = time.perf_counter()
            subprocess.run(["dvc", "repro", "-q", "-s", "self_train"], cwd=tmp, env=env, check=True, capture_output=True)
            timed[use] = (time.perf_counter() - start, json.loads((tmp / "metrics" / "self_train.json").read_text()))
        row = timed["always"][1]
        split_ = json.loads((tmp / "data" / "splits.json").read_text())
        n_test = len(split_["query"]) + len(split_["gallery"])
        check = timed["auto"][1].get("val_check_seconds", 0.0)
        stage_seconds = timed["always"][0] + check
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    s, batch = params["self_train"], params["batch_size"]
    model = build(ModelConfig("facenet", "offline", 160, 0, 1.0, True))
    parts = split(model, s["top_stages"])
    with torch.inference_mode():
        features = parts.trunk(torch.randn(batch, 3, 160, 160))
    features = features.clone()  # a normal tensor: autograd may keep it
    model.train()
    model.requires_grad_(False)
    for p in parts.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(parts.parameters(), lr=1e-4, fused=True)  # as the fine-tune's (training/optim.py)
    parts.top(features).pow(2).mean().backward()  # warm-up
    steps = 20
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        parts.top(features).pow(2).mean().backward()
        opt.step()
    bare_ips = steps * batch / (time.perf_counter() - start)
    tuned_ips = row.get("self_train_images_per_s")
    return {"self_train_seconds": round(stage_seconds, 1), "self_train_test_images": n_test, "self_train_kept": row["self_train"],
            "self_train_stage_parts": {"val_check_seconds": check, **{k: row[k] for k in row if k.endswith("_seconds")}},
            "self_train_images_per_s": tuned_ips, "self_train_forward_backward_images_per_s": round(bare_ips, 1),
            "self_train_vs_forward_backward": round(tuned_ips / bare_ips, 3) if tuned_ips else None}


def copy_pipeline(dest: Path) -> None:
    """The tracked pipeline files (code, dvc.yaml, params) into `dest`, without data or results."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if rel.startswith(("src/", "stages/", ".dvc/")) or rel in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)


def bench_default_repro() -> dict:
    """`dvc repro` of the default params in a fresh copy of the pipeline (nothing cached), with the stages' seconds."""
    tmp = Path(tempfile.mkdtemp(prefix="styleid-bench-default-"))
    try:
        copy_pipeline(tmp)
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        for cmd in (["git", "init", "-q"], ["git", "-c", "user.email=b@b", "-c", "user.name=b", "add", "-A"],
                    ["git", "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "bench"]):
            subprocess.run(cmd, cwd=tmp, env=env, check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run(["dvc", "repro", "-q"], cwd=tmp, env=env, check=True, capture_output=True)
        total = time.perf_counter() - start
        metrics = {f.stem: json.loads(f.read_text()) for f in (tmp / "metrics").glob("*.json")}
        stages = {"align": metrics.get("align", {}).get("align_seconds"), "train": metrics.get("train", {}).get("train_seconds"),
                  "export": metrics.get("export", {}).get("export_seconds"), "embed": metrics.get("embed", {}).get("embed_seconds")}
        return {"default_repro_seconds": round(total, 1), "default_repro_stage_seconds": stages,
                "default_repro_score": metrics.get("eval", {}).get("score")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_noop_repro() -> dict:
    """A finished tiny pipeline in a temporary git repo; time a `dvc repro` that has nothing to do."""
    tmp = Path(tempfile.mkdtemp(prefix="styleid-bench-"))
    try:
        copy_pipeline(tmp)
        params = yaml.safe_load((tmp / "params.yaml").read_text())
        params["epochs"] = 1
        params["data"]["synthetic"].update(people=20, photos=3, renders=3, image_size=64)
        params["model"]["input_size"] = 64
        params["backbone"] = "tf_efficientnet_lite0"
        (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        for cmd in (["git", "init", "-q"], ["git", "-c", "user.email=b@b", "-c", "user.name=b", "add", "-A"],
                    ["git", "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "bench"], ["dvc", "repro", "-q"]):
            subprocess.run(cmd, cwd=tmp, env=env, check=True, capture_output=True)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(["dvc", "repro", "-q"], cwd=tmp, env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        return {"noop_repro_seconds": round(min(times), 3)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_faiss(n: int, n_queries: int, dim: int, factories: list[str]) -> dict:
    from styleid.inference.normalize import l2_normalize
    from styleid.search import index as faiss_index

    rng = np.random.default_rng(0)
    # Clustered unit vectors, like embeddings (about 10 images per person): uniformly random vectors
    # in 512-d have no meaningful neighbours, so every approximate index would look useless on them.
    centres = rng.standard_normal((max(1, n // 10), dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = 0.5 / np.sqrt(dim)
    base = l2_normalize(centres[rng.integers(len(centres), size=n)] + noise * rng.standard_normal((n, dim)).astype(np.float32))
    queries = l2_normalize(centres[rng.integers(len(centres), size=n_queries)] + noise * rng.standard_normal((n_queries, dim)).astype(np.float32))
    out, truth = {}, None
    for factory in factories:
        start = time.perf_counter()
        index = faiss_index.build(base, factory, seed=0)
        build_s = time.perf_counter() - start
        faiss_index.set_search_params(index, nprobe=16, ef_search=64)
        start = time.perf_counter()
        _, ids = faiss_index.search(index, queries, 10)
        qps = n_queries / (time.perf_counter() - start)
        if truth is None:
            truth = ids
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)]))
        out[factory] = {"build_s": round(build_s, 3), "qps": round(qps, 1), "recall_at_10": round(recall, 4)}
    return out


def main(vectors: int = typer.Option(200_000, help="database vectors for the FAISS benchmark"),
         queries: int = typer.Option(10_000, help="queries for the FAISS benchmark"),
         dim: int = typer.Option(512, help="vector size"),
         images: int = typer.Option(768, help="images for the embed and train benchmarks (half are training photos)"),
         backbone: str = typer.Option("facenet", help="backbone for the embed and train benchmarks"),
         default_repro: bool = typer.Option(True, help="time the default `dvc repro` from nothing (about 5 minutes)"),
         growth_sizes: str = typer.Option("10000,100000,1000000", help="gallery sizes for the growth table"),
         growth_queries: int = typer.Option(10_000, help="queries at every gallery size"),
         cluster_size: int = typer.Option(100_000, help="embeddings the self_train clustering is timed on"),
         only: str = typer.Option("", help="measure only these parts (embed,train,noop,default,growth,faiss,cluster,self_train) and update them in --out"),
         out: Path = typer.Option(REPO / "metrics" / "bench.json")) -> None:
    parts = set(only.split(",")) if only else {"embed", "train", "noop", "default", "growth", "faiss", "cluster", "self_train"}
    if not default_repro:
        parts.discard("default")
    torch.manual_seed(0)
    result = json.loads(out.read_text()) if only and out.is_file() else {}  # --only: the other parts keep their last figures
    result.update({"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                              f"{torch.get_num_threads()} threads", "backbone": backbone})
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    e, t = params["embed"], params["train"]
    root = Path(tempfile.mkdtemp(prefix="styleid-bench-img-"))
    try:
        files = _images(images, 160, root / "png")
        if "embed" in parts:
            crops = _as_align_crops(files, root / "crops", params["data"]["align_size"])
            result.update(bench_embed(files, crops, backbone, e["batch_size"], e["num_workers"], e["runtime"], e["precision"], e["flip_tta"]))
        if "train" in parts:
            result.update(bench_train(root / "png", backbone, params["batch_size"], t["num_workers"], t["decoded_cache_gb"]))
            side = params["data"]["synthetic"]["image_size"]  # the default's own images and input size
            _images(images, side, root / "small")
            result.update(bench_train(root / "small", backbone, params["batch_size"], t["num_workers"], t["decoded_cache_gb"], side, "_default"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if "noop" in parts:
        result.update(bench_noop_repro())
    if "default" in parts:
        result.update(bench_default_repro())
    if "growth" in parts:
        result.update(bench_growth([int(n) for n in growth_sizes.split(",")], growth_queries, dim))
    if "cluster" in parts:
        result.update(bench_cluster(cluster_size, dim))
    if "self_train" in parts:
        result.update(bench_self_train())
    if "faiss" in parts:
        result["faiss"] = {"vectors": vectors, "queries": queries, "dim": dim, **bench_faiss(vectors, queries, dim, FACTORIES)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| measure | value | goal |\n|---|---|---|")
    for key in sorted(k for k in result if k.startswith("cluster_") and k.endswith("_seconds")):
        tag = key.removeprefix("cluster_").removesuffix("_seconds")
        print(f"| self_train clustering of {tag} embeddings: seconds, peak GB | {result[key]}, {result[f'cluster_{tag}_peak_gb']} | peak <= 4 GB |")
    if "self_train_seconds" in result:
        print(f"| self_train stage on {result['self_train_test_images']:,} synthetic test images, validation check included, seconds "
              f"(parts: {result['self_train_stage_parts']}) | {result['self_train_seconds']} | <= 360 |")
        print(f"| self_train_vs_forward_backward ({result['self_train_images_per_s']} vs {result['self_train_forward_backward_images_per_s']} img/s) | "
              f"{result['self_train_vs_forward_backward']} | >= 0.85 |")
    if "runtime_images_per_s" not in result:
        print(f"\nwritten: {out}")
        return
    runtimes_seen = ", ".join(f"{k} {v}" for k, v in result["runtime_images_per_s"].items())
    print(f"| embed_vs_best_runtime, align's JPEG crops (embed via {result['embed_runtime']} {result['embed_images_per_s']} img/s; bare: {runtimes_seen}) | "
          f"{result['embed_vs_best_runtime']} | >= 0.9 |")
    print(f"| embed_vs_best_runtime_png, the synthetic default's PNGs ({result.get('embed_images_per_s_png')} img/s) | {result.get('embed_vs_best_runtime_png')} | >= 0.9 |")
    print(f"| embed_vs_best_runtime_noflip, JPEG crops without flip averaging ({result.get('embed_images_per_s_noflip')} img/s) | {result.get('embed_vs_best_runtime_noflip')} | |")
    for suffix in ("", "_default"):
        if f"train_vs_forward_backward{suffix}" in result:
            print(f"| train_vs_forward_backward{suffix}, {result[f'train_input_px{suffix}']} px ({result[f'train_images_per_s{suffix}']} vs "
                  f"{result[f'forward_backward_images_per_s{suffix}']} img/s) | {result[f'train_vs_forward_backward{suffix}']} | >= 0.85 |")
    print(f"| noop_repro_seconds | {result['noop_repro_seconds']} | < 3 |")
    if "default_repro_seconds" in result:
        print(f"| default_repro_seconds (stages: {result['default_repro_stage_seconds']}) | {result['default_repro_seconds']} | < 300 |")
    print(f"\n| index ({vectors} x {dim}, {queries} queries) | build s | queries/s | recall@10 vs Flat |\n|---|---|---|---|")
    for factory in FACTORIES:
        r = result["faiss"][factory]
        print(f"| {factory} | {r['build_s']} | {r['qps']} | {r['recall_at_10']} |")
    print(f"\n| gallery (Flat, {growth_queries} queries, kreciprocal_local depth 100) | build s | search ms/query | retrieve ms/query | peak GB | retrieve peak GB |\n|---|---|---|---|---|---|")
    for r in result["growth"]:
        print(f"| {r['size']:,} | {r['build_s']} | {r['search_ms_per_query']} | {r['retrieve_ms_per_query']} | {r['peak_gb']} | {r.get('retrieve_peak_gb')} |")
    print("| growth exponent (cost ~ size^b) | " + " | ".join(str(result["growth_exponent"].get(k, "-")) for k in
          ("build_s", "search_ms_per_query", "retrieve_ms_per_query", "peak_gb", "retrieve_peak_gb")) + " |")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    typer.run(main)
