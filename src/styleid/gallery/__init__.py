"""Your own gallery: a folder of images indexed with a trained model, kept in sync, searched from anywhere."""
