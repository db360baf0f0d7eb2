"""PruneFuse and its baselines as resumable active-learning runs."""

from .compare import compare, parse_method
from .config import METHODS, ActiveConfig
from .loop import ActiveRun, resume, run_active

__all__ = ["METHODS", "ActiveConfig", "ActiveRun", "compare", "parse_method", "resume", "run_active"]
