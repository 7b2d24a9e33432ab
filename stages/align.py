"""align: face crops for every image the split uses -> data/aligned/ (a content-addressed cache) + index.json."""

import time
from pathlib import Path

import typer

from styleid.data.align import AlignSettings, align_files, resolve_method
from styleid.data.splits import PARTS
from styleid.fileio import write_json
from styleid.params import load_params
from styleid.pipeline import ALIGNED, ALIGNED_INDEX, METRICS, load_split, stage


@stage
def align_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    start = time.perf_counter()
    params = load_params(params_file)
    data = params.data
    split = load_split(aligned=False)
    files = list(dict.fromkeys(Path(e["file"]) for part in PARTS for e in split[part]))
    photos = list(dict.fromkeys(Path(e["file"]) for part in PARTS for e in split[part] if e["domain"] == "photo"))
    method, share = resolve_method(data.align, photos, params.seed)
    settings = AlignSettings(method, data.align_size, data.align_margin)
    if settings.method == "none":
        mapping, computed, fallbacks = {}, 0, 0
    else:
        mapping, computed, fallbacks = align_files(files, ALIGNED, settings)
    write_json(ALIGNED_INDEX, {"method": settings.method, "asked": data.align, "face_share": share, "size": settings.size,
                               "margin": settings.margin, "crops": mapping})
    seconds = time.perf_counter() - start
    n = len(mapping)
    write_json(METRICS / "align.json", {"align_mtcnn": settings.method == "mtcnn", "align_face_share": round(share, 3) if share else 0.0,
                                        "align_images": n, "align_fallbacks": fallbacks,
                                        "align_fallback_rate": round(fallbacks / n, 4) if n else 0.0, "align_seconds": round(seconds, 2)})
    why = f"auto: faces fill {share:.2f} of the frame's side, " if share is not None else ("auto: faces found in under half the photos sampled, " if data.align == "auto" else "")
    if settings.method == "none":
        print(f"align: {why}none (images go to the model as they are)")
    else:
        print(f"align: {why}{settings.method}: {n} images ({computed} new, {n - computed} cached); no face found in {fallbacks} "
              f"({fallbacks / max(n, 1):.1%}), centred crop used; {seconds:.1f}s")


if __name__ == "__main__":
    typer.run(align_stage)
