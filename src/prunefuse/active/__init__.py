"""PruneFuse and its baselines as resumable active-learning runs."""

from .compare import compare, parse_method
from .config import METHODS, ActiveConfig
from .loop import ActiveRun, resume, run_active
from .pool import FitConfig, PoolConfig, fit_from_pool, predict_images, select_from_pool
from .stats import paired_differences

__all__ = ["METHODS", "ActiveConfig", "ActiveRun", "FitConfig", "PoolConfig", "compare", "fit_from_pool",
           "paired_differences", "parse_method", "predict_images", "resume", "run_active", "select_from_pool"]
