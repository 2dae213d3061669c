"""Example user packages, importable from the repository root (``examples.shopnotes``)."""
