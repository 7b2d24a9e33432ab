"""evaluate: score the rankings against ground truth -> metrics/eval.json, plots/."""

import csv
from pathlib import Path

import numpy as np
import typer

from styleid import metrics
from styleid.artifacts import EMBEDDINGS, METRICS, PLOTS, RETRIEVED, load_split
from styleid.fileio import atomic_dir, atomic_path, read_json, write_json
from styleid.params import load_params
from styleid.runner import stage

CURVE_K = 20  # recall@k plotted for k = 1..CURVE_K
PANEL_K = 10  # results shown per panel


def _write_panels(n: int, seed: int, ids: np.ndarray, queries: list[dict], gallery: list[dict], labelled: bool) -> int:
    """Panels for a seeded sample of queries: PLOTS/panels/q<query row>.png (old panels removed first)."""
    from styleid.panels import make_panel

    folder = PLOTS / "panels"
    with atomic_dir(folder, "panels") as tmp:
        picks = sorted(np.random.default_rng([seed, 97]).choice(len(queries), size=min(n, len(queries)), replace=False)) if n else []
        for q in picks:
            row = [i for i in ids[q][:PANEL_K] if i >= 0]
            hits = [gallery[i]["person"] == queries[q]["person"] for i in row] if labelled else [None] * len(row)
            panel = make_panel(Path(queries[q]["file"]), [Path(gallery[i]["file"]) for i in row], hits)
            panel.save(tmp / f"q{q:05d}.png", format="PNG")
    return len(picks)


def _write_csv(path: Path, header: list[str], rows: list) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)


@stage
def evaluate_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    split = load_split()
    retrieved = np.load(RETRIEVED)
    ids = retrieved["ids"]
    query_meta, gallery_meta = read_json(EMBEDDINGS / "query.json"), read_json(EMBEDDINGS / "gallery.json")
    query_people = [q["person"] for q in query_meta]
    gallery_people = [g["person"] for g in gallery_meta]
    timing = {**read_json(METRICS / "embed.json"), **read_json(METRICS / "index.json"),
              "search_ms_per_query": round(float(retrieved["ms_per_query"]), 4)}
    train_json = METRICS / "train.json"
    if train_json.is_file():
        timing["train_seconds"] = read_json(train_json)["train_seconds"]
    PLOTS.mkdir(parents=True, exist_ok=True)
    n_panels = _write_panels(params.evaluate.panels, params.seed, ids, query_meta, gallery_meta, split["labelled"])
    if not split["labelled"]:
        write_json(METRICS / "eval.json", {"labelled": False, "n_queries": len(query_people), "n_gallery": len(gallery_people),
                                           "note": "the test set has no ground truth: submission.json was written, nothing scored", **timing})
        _write_csv(PLOTS / "recall_at_k.csv", ["k", "recall"], [])
        _write_csv(PLOTS / "per_person.csv", ["person", "n_queries", "recall@1"], [])
        print(f"evaluate: unlabelled test set ({len(query_people)} queries): submission.json only, no scores; {n_panels} panels")
        return
    result = metrics.evaluate(ids, query_people, gallery_people)
    result.update(metrics.bootstrap_intervals(ids, query_people, gallery_people, params.seed))
    write_json(METRICS / "eval.json", {**result, "labelled": True, **timing})
    curve = metrics.recall_curve(ids, query_people, gallery_people, min(CURVE_K, ids.shape[1]))
    _write_csv(PLOTS / "recall_at_k.csv", ["k", "recall"], [(k + 1, round(r, 6)) for k, r in enumerate(curve)])
    table = metrics.per_person_recall(ids, query_people, gallery_people, k=1)
    _write_csv(PLOTS / "per_person.csv", ["person", "n_queries", "recall@1"], [(p, n, round(r, 4)) for p, n, r in table])
    print(f"evaluate: score {result['score']:.1f} (95% interval {result['score_ci95_low']:.1f}-{result['score_ci95_high']:.1f})  R@1 {result['recall@1']:.3f}  R@5 {result['recall@5']:.3f}  "
          f"R@10 {result['recall@10']:.3f}  mAP {result['mAP']:.3f}  ({result['n_queries']} queries, {result['n_gallery']} gallery); "
          f"{n_panels} panels in {PLOTS / 'panels'}")


if __name__ == "__main__":
    typer.run(evaluate_stage)
