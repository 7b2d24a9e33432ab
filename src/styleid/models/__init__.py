"""Models: backbones (timm + offline weight sources) and the embedding model."""
