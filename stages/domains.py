"""domains: label unmarked training images photo or render -> data/domains.json + metrics/domains.json.

Only the competition layout's unmarked train/<person>/* images need it; for everything else the stage
writes an empty labelling at once, without loading a model.
"""

import time
from pathlib import Path

import numpy as np
import typer

from styleid.artifacts import CACHE, DOMAINS, METRICS, SOURCE, load_split
from styleid.data import domains
from styleid.errors import DataError
from styleid.fileio import read_json, write_json
from styleid.hashing import file_digest
from styleid.images import median_side
from styleid.params import load_params
from styleid.runner import stage


def _write(labels: dict, summary: dict, note: str) -> None:
    write_json(DOMAINS, {"note": note, "domains": labels})
    write_json(METRICS / "domains.json", summary)
    print(f"domains: {note}")


@stage
def domains_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    start = time.perf_counter()
    params = load_params(params_file)
    d = params.domains
    split = load_split()
    unknown = list({e["file"]: e for part in domains.TRAIN_PARTS for e in split[part] if e["domain"] == domains.UNKNOWN}.values())
    if not d.infer or not unknown:
        why = "domains.infer is false" if unknown else "every training image is marked photo or render"
        _write({}, {"domains_inferred": 0}, f"nothing to infer ({why})")
        return
    from styleid import devices  # torch, timm: only when there is something to infer (a few seconds to import)
    from styleid.inference import transforms
    from styleid.inference.embed import extract
    from styleid.inference.feature_cache import FeatureCache, model_key
    from styleid.inference.transforms import eval_input_transform
    from styleid.models.embedder import build, model_config
    from styleid.models import style_stats
    from styleid.models.style_stats import StyleStatistics

    rng = np.random.default_rng([params.seed, 51])
    fit = []
    for part, is_photo in (("query", 1), ("gallery", 0)):  # the test split says which images are photos and which renders
        entries = split[part]
        keep = sorted(rng.choice(len(entries), size=min(len(entries), d.max_fit_images), replace=False)) if entries else []
        fit += [(entries[i]["image"], is_photo) for i in keep]
    model = build(model_config(params, embed_dim=0), median_side([e["image"] for e in split["train"]])).to(devices.best()).eval()
    transform = eval_input_transform(model.spec)  # a bare backbone: float input per image
    style = StyleStatistics(model.backbone).eval()
    compute = lambda paths: extract(style, paths, transform, params.embed.batch_size, params.embed.num_workers,  # noqa: E731
                                    desc="domains: style statistics")
    code = [file_digest(Path(m.__file__)) for m in (transforms, style_stats)]  # the input pipeline and the statistics
    cache = FeatureCache(CACHE / "features", model_key(style, "style statistics", model.spec, *code))  # the same images, the same model: read back
    embed = lambda paths: cache.rows([Path(p) for p in paths], compute)  # noqa: E731
    result = domains.label_domains(embed([p for p, _ in fit]), np.array([y for _, y in fit]), embed([e["image"] for e in unknown]),
                                   d.min_confidence, params.seed)
    predicted = {e["file"]: (label, float(p)) for e, label, p in zip(unknown, result.labels, result.p_photo)}
    counts = {name: result.labels.count(name) for name in (domains.PHOTO, domains.RENDER, domains.UNKNOWN)}
    summary = {"domains_inferred": len(unknown), "domains_photo": counts["photo"], "domains_render": counts["render"],
               "domains_unknown": counts["unknown"], "domains_cv_accuracy": round(result.cv_accuracy, 4),
               "domains_fit_images": len(fit)}
    if d.truth:
        root = Path(read_json(SOURCE)["root"])
        truth = domains.read_truth(Path(d.truth), root)
        summary.update({f"domains_{k}": v for k, v in domains.accuracy_against(
            truth, {Path(f).relative_to(root).as_posix() if Path(f).is_relative_to(root) else f: v for f, v in predicted.items()}).items()})
        if truth and not summary["domains_truth_images"]:
            raise DataError(f"{d.truth}: none of its {len(truth)} paths is an unmarked training image of {root} (e.g. {next(iter(truth))}); "
                            "give paths relative to the dataset root, as `styleid make-competition` writes them")
    summary["domains_seconds"] = round(time.perf_counter() - start, 2)
    labels = {f: {"domain": label, "p_photo": round(p, 4)} for f, (label, p) in predicted.items()}
    truth_note = f", accuracy on known domains {summary['domains_truth_accuracy']:.3f}" if "domains_truth_accuracy" in summary else ""
    _write(labels, summary, f"{len(unknown)} unmarked training images: {counts['photo']} photos, {counts['render']} renders, "
                            f"{counts['unknown']} unsure (below {d.min_confidence}); cross-validated accuracy on the test images "
                            f"{result.cv_accuracy:.3f}{truth_note}; {summary['domains_seconds']:.1f}s ({cache.hits} images' style "
                            f"statistics read back, {cache.misses} computed)")


if __name__ == "__main__":
    typer.run(domains_stage)
