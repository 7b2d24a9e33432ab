"""Self-training on the test images (the self_train stage): a short fine-tune of the trained model on pseudo-identities.

The pseudo-people come from search/pseudo_identities.py (k-reciprocal clusters that hold photos and renders);
no test label is read. The fine-tune is the training recipe itself (loss, cross-domain batches,
augmentation) started from the trained weights, with the backbone's BatchNorm statistics held, for self_train.epochs at
self_train.lr, keeping the last epoch: nothing labelled is left to choose another.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from styleid.models.embedder import Embedder
from styleid.params import Params
from styleid.training.loop import TrainResult, TrainSet, train


def self_train(model: Embedder, params: Params, images: list[Path], domains: list[str], pseudo: np.ndarray) -> TrainResult:
    """Fine-tune `model` on the images with a pseudo-person (pseudo >= 0), each with its domain (photo | render)."""
    s = params.self_train
    keep = [i for i, c in enumerate(pseudo) if c >= 0]
    # the backbone's BatchNorm statistics stay the trained model's: a few hundred test images would re-standardise every layer (and FaceNet's
    # offline export folded its BN into the convolutions, which its loaded copy no longer knows)
    tuned = dataclasses.replace(params, epochs=s.epochs, lr=s.lr,
                                train=dataclasses.replace(params.train, patience=0, nproc=1, frozen_bn=True))
    data = TrainSet([(Path(images[i]), f"pseudo-{int(pseudo[i])}") for i in keep], [domains[i] for i in keep])
    return train(tuned, data, init=model)
