"""params.yaml's model, training and search sections (the data sections: data_sections.py) as typed, validated, frozen dataclasses; each field's comment says what it does.

Fields marked Registered(...) take a name from a registry (losses, styles, re-rankers, engines, weights):
each name is written once, where the thing it names is defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from styleid.params.data_sections import DataParams, DomainsParams, SplitParams, Style
from styleid.params.schema import _check, _Section
from styleid.registry import Registered

Loss = Annotated[str, Registered("styleid.training.losses:LOSSES")]
SelfTrainMemory = Annotated[str, Registered("styleid.training.cluster_memory:MEMORIES")]
Reranker = Annotated[str, Registered("styleid.search.rerank:RERANKERS", also=("auto",))]
Engine = Annotated[str, Registered("styleid.inference.engines:ENGINES")]
Runtime = Annotated[str, Registered("styleid.inference.runtimes:RUNTIMES", also=("auto",))]
HubWeights = Annotated[str, Registered("styleid.models.facenet:HUB_WEIGHTS")]


@dataclass(frozen=True)
class ModelParams(_Section):
    input_size: int = 0  # square input side in px; 0 = the backbone's default, or the training images' median side when smaller
    embed_dim: int = 0  # 0 = penultimate features (the reference); >0 = a learned projection of this size
    crop_pct: float = 1.0  # centre crop share at test time (1.0 = the whole image)
    hub_weights: HubWeights = "vggface2"  # facenet with pretrained: hub: which download
    pooling: Literal["avg", "gem"] = "avg"  # global pooling of the backbone's feature map
    gem_p: float = 3.0  # GeM's initial exponent (learned)

    def __post_init__(self) -> None:
        _check(self.input_size == 0 or 32 <= self.input_size <= 1024, "model.input_size", "must be 0 or in [32, 1024]")
        _check(self.embed_dim >= 0, "model.embed_dim", "must be >= 0")
        _check(0.3 <= self.crop_pct <= 1.0, "model.crop_pct", "must be in [0.3, 1]")
        _check(self.gem_p >= 1, "model.gem_p", "must be >= 1")


@dataclass(frozen=True)
class TrainParams(_Section):
    loss: Loss = "arcface"  # objective
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
    patience: int = 2  # stop after this many epochs without improvement (0 = never stop early)
    imagenet_norm: bool = True  # normalise inputs with the backbone's mean/std (off = [0, 1] pixels)
    augment: bool = True  # the augmentations in the augment section
    num_workers: int = 0  # DataLoader workers for image decoding
    decoded_cache_gb: float = 4.0  # keep the decoded training images in RAM up to this size: each is decoded once, not every epoch (0 = off)
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
        _check(self.decoded_cache_gb >= 0, "train.decoded_cache_gb", "must be >= 0 (0 = off)")


@dataclass(frozen=True)
class AugmentParams(_Section):
    crop_scale: float = 0.6  # random resized crop keeps at least this share of the image (1 = no crop)
    flip: float = 0.5  # horizontal flip probability
    color_jitter: float = 0.8  # probability of brightness/contrast/saturation/hue jitter
    grayscale: float = 0.2  # probability of dropping colour
    blur: float = 0.1  # probability of a Gaussian blur
    style: float = 0.3  # probability of rendering a photo in one of augment.styles
    styles: list[Style] = field(default_factory=lambda: ["painterly", "colour_shift"])  # renderers training may use (never split.test_styles)
    edges: float = 0.05  # probability of turning a photo into an edge drawing
    posterize: float = 0.1  # probability of posterizing to 3 bits
    exaggerate: float = 0.0  # probability of a caricature warp of a training photo (face regions magnified or shrunk)
    exaggerate_strength: float = 0.3  # the warp's largest magnification per region (0.3: up to 1.3 times)

    def __post_init__(self) -> None:
        _check(0.05 <= self.crop_scale <= 1.0, "augment.crop_scale", "must be in [0.05, 1]")
        _check(0.0 <= self.exaggerate_strength <= 1.0, "augment.exaggerate_strength", "must be in [0, 1]")
        for key in ("flip", "color_jitter", "grayscale", "blur", "style", "edges", "posterize", "exaggerate"):
            _check(0.0 <= getattr(self, key) <= 1.0, f"augment.{key}", "is a probability: must be in [0, 1]")


@dataclass(frozen=True)
class SelfTrainParams(_Section):
    use: Literal["auto", "always", "never"] = "auto"  # auto: only when the same procedure on the validation people gains beyond their noise (score; or mAP, the score not worse beyond its noise)
    epochs: int = 32  # epochs of fine-tuning the top on the pseudo-people, per round (chosen on validation people: reports/self_training.md)
    rounds: int = 1  # cluster then fine-tune, repeated: each round re-clusters with the model the round before left
    lr: float = 1e-4  # learning rate of that fine-tuning (train.optimizer, cosine; cross-domain batches of batch_size, train.m_per_class)
    top_stages: int = 2  # the backbone's last stages that train (facenet 2: block8 and the bottleneck); the rest runs once per view, cached
    views: int = 2  # views of each image through the frozen part: the image, its mirror, and views - 2 augmented ones
    memory: SelfTrainMemory = "domain_centroids"  # what each image is pulled toward: centroids | domain_centroids (one per pseudo-person and domain)
    temperature: float = 0.1  # softmax temperature over the centroids
    momentum: float = 0.2  # how much of a centroid stays at each update (the rest: its members' new mean in the batch)
    eps: float = 0.6  # DBSCAN radius on the k-reciprocal Jaccard distance (a pseudo-person's images lie closer than this)
    min_samples: int = 4  # DBSCAN: images around a core image
    k1: int = 20  # k-reciprocal neighbourhood size
    k2: int = 6  # local query expansion size

    def __post_init__(self) -> None:
        _check(1 <= self.epochs <= 1000, "self_train.epochs", "must be in [1, 1000]")
        _check(1 <= self.rounds <= 100, "self_train.rounds", "must be in [1, 100]")
        _check(0 < self.lr <= 10, "self_train.lr", "must be in (0, 10]")
        _check(1 <= self.top_stages <= 100, "self_train.top_stages", "must be in [1, 100] (more than the backbone has: the whole model trains)")
        _check(2 <= self.views <= 64, "self_train.views", "must be in [2, 64]: the image and its mirror, then augmented views")
        _check(0 < self.temperature <= 10, "self_train.temperature", "must be in (0, 10]")
        _check(0 <= self.momentum < 1, "self_train.momentum", "must be in [0, 1)")
        _check(0 < self.eps < 1, "self_train.eps", "is a Jaccard distance: must be in (0, 1)")
        _check(self.min_samples >= 1 and self.k1 >= 1 and self.k2 >= 1, "self_train.min_samples", "min_samples, k1 and k2 must be >= 1")


@dataclass(frozen=True)
class EmbedParams(_Section):
    batch_size: int = 64  # images per forward pass
    num_workers: int = 0  # DataLoader workers for image decoding
    flip_tta: bool = True  # average each image's embedding with its mirror image's
    adapt: Literal["auto", "none", "center"] = "auto"  # centre queries and gallery on their own means (no labels); auto: what the validation people chose in training
    shard_rows: int = 100_000  # embeddings per .npy shard in data/embeddings/<part>/
    runtime: Runtime = "auto"  # what runs the model: auto (the fastest installed) | torch | onnxruntime | openvino (the last two: models/model.onnx)
    precision: Literal["auto", "fp32", "int8"] = "auto"  # auto: int8 (models/int8/, onnxruntime/openvino) where it agrees with fp32, else fp32; fp32: no int8 is made
    calibration_images: int = 128  # training images that calibrate the int8 model's activation ranges
    engine: Engine = "local"  # ray: Ray Data over a cluster (pip install 'styleid[distributed]')
    ray_address: str = ""  # "" = start a local Ray cluster; "auto" = the running one; "ray://host:10001" = a remote one
    ray_actors: int = 0  # model replicas (Ray actors), each loads the model once; 0 = one per GPU, or the CPUs left after one for decoding
    ray_cpus_per_actor: float = 1.0  # CPUs each replica reserves (also its torch threads)
    ray_gpus_per_actor: float = 1.0  # GPUs each replica reserves, only when the cluster has GPUs

    def __post_init__(self) -> None:
        _check(1 <= self.batch_size <= 1_000_000, "embed.batch_size", "must be in [1, 1000000]")
        _check(self.num_workers >= 0, "embed.num_workers", "must be >= 0")
        _check(self.shard_rows >= 1, "embed.shard_rows", "must be >= 1")
        _check(self.calibration_images >= 1, "embed.calibration_images", "must be >= 1")
        _check(self.ray_actors >= 0, "embed.ray_actors", "must be >= 0 (0 = auto)")
        _check(self.ray_cpus_per_actor > 0 and self.ray_gpus_per_actor >= 0, "embed.ray_cpus_per_actor",
               "ray_cpus_per_actor must be > 0 and ray_gpus_per_actor >= 0")

    @property
    def makes_int8(self) -> bool:
        """Whether exports write the int8 model: not where precision fp32 says embed will never run it (quantising is
        most of an export's time)."""
        return self.precision != "fp32"


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
    rerank: Reranker = "auto"  # re-ranking after the index search: auto (the one the run's validation people gain from beyond their noise, else none) | none | aqe | kreciprocal | kreciprocal_local
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
    self_train: SelfTrainParams = field(default_factory=SelfTrainParams)
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
        shared = sorted(set(self.augment.styles) & set(self.split.test_styles))
        _check(not shared, "augment.styles", f"{', '.join(shared)} is also in split.test_styles; test galleries are drawn in styles "
               "training never sees, so take it out of one of them")
