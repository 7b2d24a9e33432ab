"""Inference: images -> L2-normalised embeddings, the same way everywhere (the embed stage, training's
validation, `styleid search`). Never imports training/; training imports it."""
