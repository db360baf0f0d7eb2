"""PruneFuse and its baselines as resumable active-learning runs."""

from .compare import compare, parse_method
from .config import METHODS, ActiveConfig
from .loop import ActiveRun, resume, run_active
from .stats import paired_differences

__all__ = ["METHODS", "ActiveConfig", "ActiveRun", "compare", "paired_differences", "parse_method", "resume",
           "run_active"]
