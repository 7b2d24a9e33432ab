"""Training: transforms, datasets, losses and the loop."""
