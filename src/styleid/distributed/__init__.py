"""Beyond one process: Ray Data embedding, torchrun + DDP training (pip install 'styleid[distributed]')."""
