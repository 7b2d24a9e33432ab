"""split: apply the evaluation protocol -> data/splits.json (+ data/stylized/ for rendered galleries)."""

import time
from pathlib import Path

import numpy as np
import typer
from tqdm import tqdm

from styleid.artifacts import MANIFEST, SOURCE, SPLITS, STYLIZED
from styleid.data.manifest import TEST, entry_file, read_manifest, source_roots
from styleid.data.splits import PARTS, display_name, is_labelled, make_split
from styleid.data.stylize import stylize
from styleid.fileio import atomic_dir, read_json, write_json
from styleid.images import load_rgb
from styleid.params import load_params
from styleid.runner import stage


@stage
def split_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    start = time.perf_counter()
    params = load_params(params_file)
    source = read_json(SOURCE)
    roots = source_roots(source)
    test_layout = (source.get("layouts") or {}).get(TEST, "")
    layout = source["layout"]
    if len(roots) - 1 - bool(test_layout) > 1 and "domains" in source["layouts"].values() and layout != "competition":
        layout = "domains"  # several training sources: people with photos and renders validate and test
    split, to_render = make_split(read_manifest(MANIFEST), layout, params.data.protocol, params.split, params.seed, test_layout, TEST)
    with atomic_dir(STYLIZED, "stylized") as tmp:
        for k, out in enumerate(tqdm(to_render, desc="split: rendering galleries", leave=False)):
            rng = np.random.default_rng([params.seed, 41, k])
            target = tmp / out.path.removeprefix("stylized/")
            target.parent.mkdir(parents=True, exist_ok=True)
            stylize(load_rgb(entry_file(out.origin.path, roots[out.origin.source])), out.style, rng).save(target, quality=95)
        write_json(tmp / "renders.json", [{"source": out.origin.path, "render": out.path, "style": out.style} for out in to_render])
    protocol = "cross-dataset" if test_layout else params.data.protocol if layout != "competition" else "competition"
    doc = {"protocol": protocol, "layout": layout, "root": source["root"], "labelled": is_labelled(split)}
    for part in PARTS:
        doc[part] = [{"file": entry_file(e.path, roots[e.source]).as_posix(), "name": display_name(e.path), "person": e.person,
                      "domain": e.domain, **({"source": e.source} if e.source else {}), **({"style": e.style} if e.style else {}),
                      **({"rendered_from": entry_file(e.origin.path, roots[e.origin.source]).as_posix()} if e.origin else {})}
                     for e in split[part]]
    write_json(SPLITS, doc)
    counts = ", ".join(f"{part} {len(split[part])}" for part in PARTS)
    people = lambda part: len({e.person for e in split[part]})  # noqa: E731
    print(f"split: {doc['protocol']} protocol: {counts}; people train {people('train')}, val {people('val_query')}, "
          f"test {people('query')}; {len(to_render)} gallery renders; {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    typer.run(split_stage)
