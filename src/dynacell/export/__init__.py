"""Export of dynacell models to other ecosystems (bioimage.io)."""
