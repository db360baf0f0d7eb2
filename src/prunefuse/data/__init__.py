"""Datasets in their standard formats, read into one in-memory form."""

from .batching import Normalizer, TensorBatches
from .dataset import Dataset
from .registry import DATASETS, info, load, locate, names

__all__ = ["DATASETS", "Dataset", "Normalizer", "TensorBatches", "info", "load", "locate", "names"]
