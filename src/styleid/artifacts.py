"""Where the pipeline's artifacts live (the paths dvc.yaml names), and reading the split with its face crops."""

from __future__ import annotations

from pathlib import Path

from styleid.fileio import read_json

RAW = Path("data/raw")
CACHE = Path("data/cache")
MANIFEST = Path("data/manifest.csv")
SOURCE = Path("data/source.json")
SPLITS = Path("data/splits.json")
STYLIZED = Path("data/stylized")
ALIGNED = Path("data/aligned")
ALIGNED_INDEX = ALIGNED / "index.json"
DOMAINS = Path("data/domains.json")  # inferred photo/render labels of unmarked training images
MODEL_DIR = Path("models")
SELF_TRAINED = MODEL_DIR / "self_trained"  # the trained model fine-tuned on the test images' pseudo-people (self_train stage)
EMBEDDINGS = Path("data/embeddings")
INDEX = Path("models/index")  # part-000.faiss, ... (several = IndexShards)
INDEX_IDS = Path("models/gallery_ids.json")
RETRIEVED = Path("data/retrieved.npz")
SUBMISSION = Path("submission.json")
METRICS = Path("metrics")
RERANK_CHOICE = METRICS / "rerank.json"  # retrieve.rerank auto: what the validation people chose (retrieve stage; `styleid search` follows it)
PLOTS = Path("plots")


def load_split(aligned: bool = True) -> dict:
    """splits.json; with `aligned`, each entry's "image" is what the model reads (its face crop when align is on)."""
    split = read_json(SPLITS)
    crops = read_json(ALIGNED_INDEX)["crops"] if aligned and ALIGNED_INDEX.is_file() else {}
    for value in split.values():
        if isinstance(value, list):
            for entry in value:
                entry["image"] = crops.get(entry["file"], entry["file"])
    return split


def part_images(split: dict, part: str) -> tuple[list[Path], list[str]]:
    """One part of a loaded split (load_split): the images the model reads, in order, and whose they are."""
    entries = split[part]
    return [Path(e["image"]) for e in entries], [e["person"] for e in entries]


def embedding_model() -> Path:
    """The model the test set is embedded with: the self_train stage's fine-tune when it made one, else the trained model."""
    return SELF_TRAINED if (SELF_TRAINED / "model.json").is_file() else MODEL_DIR
