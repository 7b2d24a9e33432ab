"""Which backbone layers train: the freeze policy, and train mode with BatchNorm statistics kept where they must not move."""

from __future__ import annotations

from torch import nn

from styleid.models.embedder import Embedder


def apply_freeze(model: Embedder, policy: str, last_n: int) -> None:
    """all: the backbone never trains (BN statistics frozen too); last_n: only its last n stages; none: all train."""
    backbone = model.backbone
    backbone.requires_grad_(policy == "none")
    if policy == "last_n":
        stages = _stages(backbone)
        for stage in stages[-last_n:]:
            stage.requires_grad_(True)


def _stages(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's top-level stages in order (timm's feature_info when present)."""
    if hasattr(backbone, "stage_modules"):
        return backbone.stage_modules()
    blocks = getattr(backbone, "blocks", None) or getattr(backbone, "stages", None) or getattr(backbone, "layers", None)
    tail = [m for name, m in backbone.named_children() if name in ("conv_head", "bn2", "norm", "head_norm", "fc_norm", "global_pool")]
    if blocks is not None:
        return list(blocks) + ([nn.ModuleList(tail)] if tail else [])  # the head layers count as one stage
    return list(backbone.children())


def backbone_frozen(model: Embedder) -> bool:
    return not any(p.requires_grad for p in model.backbone.parameters())


def set_train_mode(model: Embedder, frozen_bn: bool = False) -> None:
    """Train mode, except BatchNorm statistics where they must not move.

    Frozen layers keep their statistics (freeze: all or last_n); so does a backbone whose BN was
    folded into the convolutions (facenet offline: see models/facenet.py), or any backbone when
    train.frozen_bn asks for it.
    """
    model.train()
    if backbone_frozen(model):
        model.backbone.eval()  # dropout off too: a frozen backbone is a fixed feature extractor
        return
    keep_all = frozen_bn or getattr(model.backbone, "frozen_bn", False)
    for module in model.backbone.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if keep_all or not any(p.requires_grad for p in module.parameters()):
                module.eval()
