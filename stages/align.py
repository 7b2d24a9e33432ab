"""align: face crops for every image the split uses -> data/aligned/ (a content-addressed cache) + index.json."""

import time
from pathlib import Path

import typer

from styleid.artifacts import ALIGNED, ALIGNED_INDEX, METRICS, load_split
from styleid.data.align import AlignSettings, align_files, plan_sources, query_source
from styleid.data.fetch import tagged_sources
from styleid.data.sources import classify
from styleid.data.splits import PARTS
from styleid.fileio import write_json
from styleid.params import load_params
from styleid.runner import stage


@stage
def align_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    start = time.perf_counter()
    params = load_params(params_file)
    data = params.data
    split = load_split(aligned=False)
    drawn = [tag for tag, source in tagged_sources(data) if classify(source).kind == "synthetic"]
    plan = plan_sources(split, PARTS, data.align, params.seed, drawn)
    query_method, share = plan.get(query_source(split), ("none", None))
    settings = AlignSettings("mtcnn", data.align_size, data.align_margin)
    files = list(dict.fromkeys(Path(e["file"]) for part in PARTS for e in split[part] if plan[e.get("source", "")][0] == "mtcnn"))
    framing = {Path(e["file"]): Path(e["rendered_from"]) for part in PARTS for e in split[part] if e.get("rendered_from")}
    mapping, computed, fallbacks = align_files(files, ALIGNED, settings, framing) if files else ({}, 0, 0)
    write_json(ALIGNED_INDEX, {"method": query_method, "asked": data.align, "face_share": share, "size": settings.size,
                               "margin": settings.margin, "crops": mapping,
                               **({"sources": {tag: {"method": m, "face_share": f} for tag, (m, f) in plan.items()}} if len(plan) > 1 else {})})
    seconds = time.perf_counter() - start
    n = len(mapping)
    write_json(METRICS / "align.json", {"align_mtcnn": query_method == "mtcnn", "align_face_share": round(share, 3) if share else 0.0,
                                        "align_images": n, "align_fallbacks": fallbacks,
                                        "align_fallback_rate": round(fallbacks / n, 4) if n else 0.0, "align_seconds": round(seconds, 2)})
    for tag, (method, face) in plan.items():
        why = (f"auto: faces fill {face:.2f} of the frame's side, " if face is not None else
               "auto: the synthetic generator draws faces that fill the frame, " if data.align == "auto" and tag in drawn else
               "auto: faces found in under half the photos sampled, " if data.align == "auto" else "")
        print(f"align{' ' + tag if len(plan) > 1 else ''}: {why}{method}" + ("" if method == "mtcnn" else " (images go to the model as they are)"))
    if files:
        print(f"align: mtcnn: {n} images ({computed} new, {n - computed} cached); no face found in {fallbacks} "
              f"({fallbacks / max(n, 1):.1%}), centred crop used; {seconds:.1f}s")


if __name__ == "__main__":
    typer.run(align_stage)
