"""params.yaml loaded once into typed, validated, frozen dataclasses.

A misspelt key, a wrong type or an out-of-range value is a one-line ParamsError naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from styleid.errors import ParamsError

STYLES = ("cartoon", "sketch", "posterize", "painterly", "colour_shift")
READS_ENV = "STYLEID_PARAMS_READ"  # a folder: each stage writes <stage>.json, the params keys it read (tests compare with dvc.yaml)
_reads: set[str] | None = None  # dotted keys read since record_reads() started


class _Section:
    """Base of every params dataclass: when recording, a read of a leaf value records its dotted key.

    Recording starts only after a Params object is built (validation reads every field), through
    `record_reads`; `dvc.yaml` must list every key a stage reads, and a test holds it to that.
    """

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if _reads is not None and not name.startswith("_") and not isinstance(value, _Section):
            prefix = object.__getattribute__(self, "__dict__").get("_key")
            if prefix is not None and name in type(self).__dataclass_fields__:
                _reads.add(prefix + name)
        return value


def record_reads() -> None:
    """Start recording which params keys are read (see READS_ENV)."""
    global _reads
    _reads = set()


def save_reads(stage: str) -> None:
    """Write the keys read so far to $STYLEID_PARAMS_READ/<stage>.json when that is set."""
    folder = os.environ.get(READS_ENV)
    if folder and _reads is not None:
        path = Path(folder) / f"{stage}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        earlier = set(json.loads(path.read_text())) if path.is_file() else set()
        path.write_text(json.dumps(sorted(earlier | _reads)))


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ParamsError(f"{key}: {message}")


@dataclass(frozen=True)
class SyntheticParams(_Section):
    people: int = 160  # generated people that train and validate (all of them, split by shares, when test_people is 0)
    test_people: int = 2000  # > 0: this many more people only test (competition layout): a big test set that costs no training
    photos: int = 2  # natural-looking photos per training person
    renders: int = 2  # stylized renders per training person
    test_photos: int = 1  # photos per test person (its queries)
    test_renders: int = 1  # renders per test person (its gallery images)
    image_size: int = 96  # side of the square images, px

    def __post_init__(self) -> None:
        _check(6 <= self.people <= 1_000_000, "data.synthetic.people", "must be in [6, 1000000] (train, val and test need people)")
        _check(1 <= self.photos <= 1000 and 1 <= self.renders <= 1000, "data.synthetic.photos", "photos and renders must be in [1, 1000]")
        _check(0 <= self.test_people <= 100_000, "data.synthetic.test_people", "must be in [0, 100000]")
        _check(self.photos >= 2, "data.synthetic.photos", "must be >= 2")
        _check(self.renders >= 1, "data.synthetic.renders", "must be >= 1")
        _check(1 <= self.test_photos <= 100 and 1 <= self.test_renders <= 100, "data.synthetic.test_photos/test_renders", "must be in [1, 100]")
        _check(32 <= self.image_size <= 1024, "data.synthetic.image_size", "must be in [32, 1024]")


@dataclass(frozen=True)
class DataParams(_Section):
    source: str | list[str] = "synthetic"  # synthetic | folder | .zip/.tar(.gz) | https URL | gdrive:ID or Drive link; a list: several
    test_source: str = ""  # "" = test on data.source's own test people | another source (same forms): its people are the test
    merge_names: bool = False  # several sources: people with the same folder name are one person (else kept apart)
    layout: Literal["auto", "people", "domains", "competition"] = "auto"  # how the source is organised
    protocol: Literal["open", "closed"] = "open"  # open: test people unseen in training; closed: the reference's
    sha256: str = ""  # expected SHA-256 of a downloaded or local archive ("" = do not check)
    max_bad_fraction: float = 0.05  # fail when more than this share of image files cannot be read
    max_archive_bytes: int = 20_000_000_000  # refuse archives (and downloads) larger than this once unpacked (downloaded)
    max_archive_members: int = 10_000_000  # refuse archives with more members than this
    align: Literal["auto", "none", "mtcnn"] = "auto"  # face crops before the model; auto: only for wide shots
    align_size: int = 256  # side of the cached aligned crops, px (the model resizes them to its input size)
    align_margin: float = 0.2  # context kept around the detected face, as a share of the box side
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)

    @property
    def sources(self) -> list[str]:
        """data.source as a list (one source or several)."""
        return [self.source] if isinstance(self.source, str) else list(self.source)

    def __post_init__(self) -> None:
        _check(bool(self.sources) and all(s.strip() for s in self.sources), "data.source", "must not be empty")
        _check(len(set(self.sources)) == len(self.sources), "data.source", "lists a source twice")
        _check(self.test_source not in self.sources, "data.test_source", "is also a training source; test on data you do not train on")
        _check(0.0 <= self.max_bad_fraction <= 1.0, "data.max_bad_fraction", "must be in [0, 1]")
        _check(self.max_archive_bytes >= 1 and self.max_archive_members >= 1, "data.max_archive_bytes", "max_archive_bytes and max_archive_members must be >= 1")
        _check(self.sha256 == "" or len(self.sha256) == 64, "data.sha256", "must be 64 hex digits or empty")
        _check(32 <= self.align_size <= 1024, "data.align_size", "must be in [32, 1024]")
        _check(0.0 <= self.align_margin <= 2.0, "data.align_margin", "must be in [0, 2]")


@dataclass(frozen=True)
class SplitParams(_Section):
    train_people: float = 0.6  # open: share of people used for training
    val_people: float = 0.2  # open: share of people used for validation (the rest are test people)
    closed_train: float = 0.5  # closed: share of each person's images for training
    closed_val: float = 0.2  # closed: share for validation (the rest are test images)
    query_fraction: float = 0.2  # share of a test person's photos used as queries (the rest: gallery)
    holdout_fraction: float = 0.1  # open: share of each training person's images kept for val_loss
    test_styles: list[str] = field(default_factory=lambda: ["cartoon", "sketch", "posterize"])  # render test galleries
    train_styles: list[str] = field(default_factory=lambda: ["painterly", "colour_shift"])  # allowed in training

    def __post_init__(self) -> None:
        for key in ("train_people", "val_people", "closed_train", "closed_val", "query_fraction"):
            _check(0.0 < getattr(self, key) < 1.0, f"split.{key}", "must be in (0, 1)")
        _check(0.0 <= self.holdout_fraction < 1.0, "split.holdout_fraction", "must be in [0, 1)")
        _check(self.train_people + self.val_people < 1.0, "split.val_people", "train_people + val_people must be < 1")
        _check(self.closed_train + self.closed_val < 1.0, "split.closed_val", "closed_train + closed_val must be < 1")
        for key in ("test_styles", "train_styles"):
            for style in getattr(self, key):
                _check(style in STYLES, f"split.{key}", f"unknown style {style!r}; choose from {', '.join(STYLES)}")
        _check(bool(self.test_styles), "split.test_styles", "needs at least one style")


@dataclass(frozen=True)
class DomainsParams(_Section):
    infer: bool = True  # unmarked training images (competition train/<person>/*): label each photo or render with a classifier
    min_confidence: float = 0.9  # an image whose predicted domain is less likely than this stays unknown
    max_fit_images: int = 2000  # labelled test images per domain the classifier fits on (a seeded sample)
    truth: str = ""  # optional CSV (path,domain; paths relative to the dataset root) of known domains, to measure the classifier

    def __post_init__(self) -> None:
        _check(0.5 <= self.min_confidence < 1.0, "domains.min_confidence", "must be in [0.5, 1)")
        _check(self.max_fit_images >= 10, "domains.max_fit_images", "must be >= 10")


@dataclass(frozen=True)
class ModelParams(_Section):
    input_size: int = 0  # square input side in px; 0 = the backbone's default, or the training images' median side when smaller
    embed_dim: int = 0  # 0 = penultimate features (the reference); >0 = a learned projection of this size
    crop_pct: float = 1.0  # centre crop share at test time (1.0 = the whole image)
    hub_weights: Literal["vggface2", "casia-webface"] = "vggface2"  # facenet with pretrained: hub: which download
    pooling: Literal["avg", "gem"] = "avg"  # global pooling of the backbone's feature map
    gem_p: float = 3.0  # GeM's initial exponent (learned)

    def __post_init__(self) -> None:
        _check(self.input_size == 0 or 32 <= self.input_size <= 1024, "model.input_size", "must be 0 or in [32, 1024]")
        _check(self.embed_dim >= 0, "model.embed_dim", "must be >= 0")
        _check(0.3 <= self.crop_pct <= 1.0, "model.crop_pct", "must be in [0.3, 1]")
        _check(self.gem_p >= 1, "model.gem_p", "must be >= 1")


@dataclass(frozen=True)
class TrainParams(_Section):
    loss: Literal["cross_entropy", "arcface", "subcenter_arcface", "multi_similarity", "supcon", "triplet"] = "arcface"  # objective
    loss_lr: float = 0.01  # learning rate of the loss's own parameters (class proxies)
    arc_margin: float = 28.6  # arcface / subcenter_arcface angular margin, degrees
    arc_scale: float = 30.0  # arcface / subcenter_arcface logit scale
    subcenters: int = 3  # subcenter_arcface: sub-centres per person
    ms_epsilon: float = 0.1  # multi_similarity miner slack
    supcon_temperature: float = 0.1  # supcon temperature
    triplet_margin: float = 0.2  # triplet margin on cosine distance (hard-triplet miner)
    m_per_class: int = 4  # images per person in a batch (class-balanced batches); 0 = plain shuffling
    cross_domain: bool = True  # people with photos and renders: half of their m images from each domain
    freeze: Literal["all", "none", "last_n"] = "none"  # which backbone layers stay frozen
    unfreeze_last_n: int = 2  # with freeze=last_n: how many of the backbone's last stages train
    layer_decay: float = 0.8  # layer-wise lr decay (timm): each earlier layer group gets this times the lr (1 = off)
    frozen_bn: bool = False  # keep the backbone's BatchNorm statistics fixed while it fine-tunes
    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"  # the reference used Adam
    weight_decay: float = 0.05  # decoupled for adamw, L2 for adam and sgd
    schedule: Literal["constant", "cosine"] = "cosine"  # lr over the run, after warmup
    warmup_epochs: float = 1.0  # linear warmup from lr/100
    select_by: Literal["val_score", "val_loss"] = "val_score"  # which checkpoint to keep (the reference: val_loss)
    patience: int = 3  # stop after this many epochs without improvement (0 = never stop early)
    imagenet_norm: bool = True  # normalise inputs with the backbone's mean/std (off = [0, 1] pixels)
    augment: bool = True  # the augmentations in the augment section
    num_workers: int = 0  # DataLoader workers for image decoding
    nproc: int = 1  # training processes (torchrun + DistributedDataParallel; gloo on CPU, nccl on GPUs)

    def __post_init__(self) -> None:
        _check(1 <= self.nproc <= 1024, "train.nproc", "must be in [1, 1024]")
        _check(self.loss_lr > 0, "train.loss_lr", "must be > 0")
        _check(0 < self.arc_margin < 90 and self.arc_scale > 0, "train.arc_margin", "arc_margin must be in (0, 90) degrees, arc_scale > 0")
        _check(self.subcenters >= 1, "train.subcenters", "must be >= 1")
        _check(self.supcon_temperature > 0 and self.triplet_margin >= 0 and self.ms_epsilon >= 0, "train.supcon_temperature",
               "supcon_temperature must be > 0; triplet_margin and ms_epsilon >= 0")
        _check(self.m_per_class == 0 or self.m_per_class >= 2, "train.m_per_class", "must be 0 (off) or >= 2")
        _check(self.unfreeze_last_n >= 1, "train.unfreeze_last_n", "must be >= 1")
        _check(0 < self.layer_decay <= 1, "train.layer_decay", "must be in (0, 1]")
        _check(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        _check(self.warmup_epochs >= 0, "train.warmup_epochs", "must be >= 0")
        _check(self.patience >= 0, "train.patience", "must be >= 0")
        _check(self.num_workers >= 0, "train.num_workers", "must be >= 0")


@dataclass(frozen=True)
class AugmentParams(_Section):
    crop_scale: float = 0.6  # random resized crop keeps at least this share of the image (1 = no crop)
    flip: float = 0.5  # horizontal flip probability
    color_jitter: float = 0.8  # probability of brightness/contrast/saturation/hue jitter
    grayscale: float = 0.2  # probability of dropping colour
    blur: float = 0.1  # probability of a Gaussian blur
    style: float = 0.3  # probability of rendering a photo in one of split.train_styles
    edges: float = 0.05  # probability of turning a photo into an edge drawing
    posterize: float = 0.1  # probability of posterizing to 3 bits
    exaggerate: float = 0.0  # probability of a caricature warp of a training photo (face regions magnified or shrunk)
    exaggerate_strength: float = 0.3  # the warp's largest magnification per region (0.3: up to about 30 %)

    def __post_init__(self) -> None:
        _check(0.05 <= self.crop_scale <= 1.0, "augment.crop_scale", "must be in [0.05, 1]")
        _check(0.0 <= self.exaggerate_strength <= 1.0, "augment.exaggerate_strength", "must be in [0, 1]")
        for key in ("flip", "color_jitter", "grayscale", "blur", "style", "edges", "posterize", "exaggerate"):
            _check(0.0 <= getattr(self, key) <= 1.0, f"augment.{key}", "is a probability: must be in [0, 1]")


@dataclass(frozen=True)
class EmbedParams(_Section):
    batch_size: int = 64  # images per forward pass
    num_workers: int = 0  # DataLoader workers for image decoding
    flip_tta: bool = True  # average each image's embedding with its mirror image's
    adapt: Literal["auto", "none", "center"] = "auto"  # centre queries and gallery on their own means (no labels); auto: what the validation people chose in training
    shard_rows: int = 100_000  # embeddings per .npy shard in data/embeddings/<part>/
    engine: Literal["local", "ray"] = "local"  # ray: Ray Data over a cluster (pip install 'styleid[distributed]')
    ray_address: str = ""  # "" = start a local Ray cluster; "auto" = the running one; "ray://host:10001" = a remote one
    ray_actors: int = 0  # model replicas (Ray actors), each loads the model once; 0 = one per GPU, or the CPUs left after one for decoding
    ray_cpus_per_actor: float = 1.0  # CPUs each replica reserves (also its torch threads)
    ray_gpus_per_actor: float = 1.0  # GPUs each replica reserves, only when the cluster has GPUs

    def __post_init__(self) -> None:
        _check(1 <= self.batch_size <= 1_000_000, "embed.batch_size", "must be in [1, 1000000]")
        _check(self.num_workers >= 0, "embed.num_workers", "must be >= 0")
        _check(self.shard_rows >= 1, "embed.shard_rows", "must be >= 1")
        _check(self.ray_actors >= 0, "embed.ray_actors", "must be >= 0 (0 = auto)")
        _check(self.ray_cpus_per_actor > 0 and self.ray_gpus_per_actor >= 0, "embed.ray_cpus_per_actor",
               "ray_cpus_per_actor must be > 0 and ray_gpus_per_actor >= 0")


@dataclass(frozen=True)
class IndexParams(_Section):
    factory: str = "Flat"  # a faiss.index_factory string: Flat, HNSW32, IVF64,Flat, IVF256,PQ16, ...
    nprobe: int = 8  # IVF: lists visited per query
    ef_search: int = 64  # HNSW: search breadth
    shards: int = 1  # indexes built over contiguous slices of the gallery (one trained quantizer for all)
    merge: bool = True  # merge the shards into one index; false = search them together as a faiss.IndexShards

    def __post_init__(self) -> None:
        _check(bool(self.factory.strip()), "index.factory", "must not be empty")
        _check(self.nprobe >= 1 and self.ef_search >= 1, "index.nprobe", "nprobe and ef_search must be >= 1")
        _check(self.shards >= 1, "index.shards", "must be >= 1")


@dataclass(frozen=True)
class RetrieveParams(_Section):
    top_k: int = 10  # gallery images returned per query
    rerank: Literal["none", "aqe", "kreciprocal"] = "none"  # re-ranking after the index search (kreciprocal: for several gallery images a person)
    depth: int = 100  # candidates per query that re-ranking reorders
    aqe_k: int = 3  # aqe: top gallery images averaged into the query
    aqe_alpha: float = 3.0  # aqe: weight = similarity ** alpha
    k1: int = 20  # kreciprocal: neighbourhood size
    k2: int = 6  # kreciprocal: local query expansion size
    lambda_value: float = 0.3  # kreciprocal: weight of the original distance

    def __post_init__(self) -> None:
        _check(1 <= self.top_k <= 100_000, "retrieve.top_k", "must be in [1, 100000]")
        _check(self.depth >= 1 and self.aqe_k >= 1 and self.k1 >= 1 and self.k2 >= 1, "retrieve.depth", "depth, aqe_k, k1 and k2 must be >= 1")
        _check(self.aqe_alpha >= 0, "retrieve.aqe_alpha", "must be >= 0")
        _check(0 <= self.lambda_value <= 1, "retrieve.lambda_value", "must be in [0, 1]")


@dataclass(frozen=True)
class EvaluateParams(_Section):
    panels: int = 8  # queries drawn (seeded) for the qualitative panels

    def __post_init__(self) -> None:
        _check(0 <= self.panels <= 1000, "evaluate.panels", "must be in [0, 1000]")


@dataclass(frozen=True)
class Params(_Section):
    backbone: str = "facenet"  # facenet or any timm model name
    pretrained: str = "offline"  # offline | hub | none | path to a weights file
    lr: float = 1e-4  # learning rate (ImageNet backbones: 1e-3)
    epochs: int = 8  # training epochs (at most: see train.patience)
    batch_size: int = 32  # training batch size
    seed: int = 42  # seeds splits, generator, sampling and initialisation
    data: DataParams = field(default_factory=DataParams)
    split: SplitParams = field(default_factory=SplitParams)
    domains: DomainsParams = field(default_factory=DomainsParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    augment: AugmentParams = field(default_factory=AugmentParams)
    embed: EmbedParams = field(default_factory=EmbedParams)
    index: IndexParams = field(default_factory=IndexParams)
    retrieve: RetrieveParams = field(default_factory=RetrieveParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)

    def __post_init__(self) -> None:
        _check(bool(self.backbone.strip()), "backbone", "must name a timm model")
        _check(0 < self.lr <= 10, "lr", f"must be in (0, 10] (got {self.lr})")
        _check(1 <= self.epochs <= 100_000, "epochs", "must be in [1, 100000]")
        _check(2 <= self.batch_size <= 1_000_000, "batch_size", "must be in [2, 1000000]")
        _check(0 <= self.seed < 2**32, "seed", "must be in [0, 2**32)")
        _check(self.pretrained.strip() != "", "pretrained", "must be offline, hub, none or a weights path")


def _short(value: Any, limit: int = 60) -> str:
    """repr of a value, cut to `limit` characters: a message never grows with the input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


MAX_INT = 10**12  # no count, size or seed in styleid is anywhere near this; bigger is a typo or an attack


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against a type hint, converting only where it is lossless (int -> float)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if value is None:
            value = {}
        _check(isinstance(value, dict), key, f"must be a mapping, got {type(value).__name__}")
        return _build(hint, value, key + ".")
    if origin is Literal:
        choices = typing.get_args(hint)
        _check(isinstance(value, (str, int, float, bool)) and value in choices, key, f"must be one of {', '.join(map(str, choices))} (got {_short(value)})")
        return value
    if origin in (list, tuple):
        _check(isinstance(value, list), key, f"must be a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        listy = [a for a in options if typing.get_origin(a) in (list, tuple)]
        plain = [a for a in options if a not in listy]
        return _coerce(value, (listy or plain)[0] if isinstance(value, list) else (plain or listy)[0], key)
    if hint is bool:
        _check(isinstance(value, bool), key, f"must be true or false, got {_short(value)}")
        return value
    if hint is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key, f"must be an integer, got {_short(value)}")
        _check(abs(value) <= MAX_INT, key, f"is absurdly large ({_short(value)}); use a value below {MAX_INT:.0e}")
        return value
    if hint is float:
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), key, f"must be a number, got {_short(value)}")
        _check(abs(value) <= MAX_INT and math.isfinite(float(value)), key, f"must be a finite number of sensible size, got {_short(value)}")
        return float(value)
    if hint is str:
        _check(isinstance(value, (str, int, float)) and not isinstance(value, bool), key, f"must be a string, got {_short(value)}")
        _check(len(str(value)) <= 4096, key, "is longer than 4096 characters")
        return str(value)
    raise TypeError(f"unsupported type hint {hint!r} for {key}")


def _build(cls: type, raw: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key)[:100], names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f"; known keys: {', '.join(names)}"
            raise ParamsError(f"{prefix}{_short(key, 40) if not isinstance(key, str) or len(key) > 40 else key}: unknown key{hint}")
    kwargs = {name: _coerce(raw[name], hints[name], prefix + name) for name in names if name in raw}
    return cls(**kwargs)


def _label(section: _Section, prefix: str = "") -> _Section:
    """Give every section its dotted key prefix, so recorded reads name the whole key."""
    object.__setattr__(section, "_key", prefix)
    for f in dataclasses.fields(section):
        value = object.__getattribute__(section, f.name)
        if isinstance(value, _Section):
            _label(value, f"{prefix}{f.name}.")
    return section


def params_from_dict(raw: dict | None) -> Params:
    """Build validated Params from a plain dict (the parsed params.yaml)."""
    return _label(_build(Params, raw or {}))


MAX_PARAMS_BYTES = 1_000_000
MAX_DEPTH = 16  # params.yaml nests three levels; deeper is a mistake (or an attack on the parser)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases (a "billion laughs" expands a few KB into gigabytes), duplicate keys or deep nesting."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(problem="YAML aliases (*name) are not allowed; write the value out", problem_mark=event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {_short(key, 40)} (the last would silently win); keep one",
                                           problem_mark=key_node.start_mark)
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every problem is a one-line ParamsError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found; run from the repository root or pass --params")
    if path.stat().st_size > MAX_PARAMS_BYTES:
        raise ParamsError(f"{path}: larger than {MAX_PARAMS_BYTES:,} bytes; params.yaml is a few KB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = str(getattr(exc, "problem", None) or exc)
        raise ParamsError(f"{path}:{where}: not valid YAML ({problem if len(problem) <= 160 else problem[:157] + '...'})") from None
    except RecursionError:
        raise ParamsError(f"{path}: nested too deeply to read; params.yaml nests three levels") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path}: must be a mapping of keys to values")
    try:
        return params_from_dict(raw)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None
