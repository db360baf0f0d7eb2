"""prunefuse: cheaper deep learning through structured pruning."""

__version__ = "0.1.0"
