"""params.yaml's data-side sections: where the images come from (data, data.synthetic), how people are split
(split), and how unmarked training images get their domain (domains)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from styleid.params.schema import _check, _Section
from styleid.registry import Registered

Style = Annotated[str, Registered("styleid.data.stylize:RENDERERS")]


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
    download_min_rate: float = 1024  # bytes/s over each minute, at least: a download slower than this stops (stalled)
    download_deadline: float = 43_200  # seconds for one whole download, at most
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
        _check(self.download_min_rate >= 0 and self.download_deadline > 0, "data.download_min_rate",
               "download_min_rate must be >= 0 and download_deadline > 0 (seconds)")
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
    test_styles: list[Style] = field(default_factory=lambda: ["cartoon", "sketch", "posterize"])  # render test galleries

    def __post_init__(self) -> None:
        for key in ("train_people", "val_people", "closed_train", "closed_val", "query_fraction"):
            _check(0.0 < getattr(self, key) < 1.0, f"split.{key}", "must be in (0, 1)")
        _check(0.0 <= self.holdout_fraction < 1.0, "split.holdout_fraction", "must be in [0, 1)")
        _check(self.train_people + self.val_people < 1.0, "split.val_people", "train_people + val_people must be < 1")
        _check(self.closed_train + self.closed_val < 1.0, "split.closed_val", "closed_train + closed_val must be < 1")
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
