"""The fast training engine: in-memory batches, SGD schedules, mixed precision, KD."""

from .config import TrainConfig
from .distill import kd_loss
from .engine import TrainResult, evaluate, fit, predict
from .runtime import configure_threads, resolve_device

__all__ = ["TrainConfig", "TrainResult", "configure_threads", "evaluate", "fit", "kd_loss", "predict",
           "resolve_device"]
