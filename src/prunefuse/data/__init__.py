"""Datasets in their standard formats, read into one in-memory form."""

from .batching import Normalizer, TensorBatches
from .dataset import Dataset
from .registry import DATASETS, availability, info, load, locate, names
from .spec import DataSpec

__all__ = ["DATASETS", "DataSpec", "Dataset", "Normalizer", "TensorBatches", "availability", "info", "load", "locate",
           "names"]
