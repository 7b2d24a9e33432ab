"""Data: sources, layouts, the manifest, synthetic people, stylize renderers and splits."""
