"""Active-learning selection strategies."""

from .kcenter import kcenter_greedy
from .strategies import STRATEGIES, Selection, badge, select, top_k, uncertainty

__all__ = ["STRATEGIES", "Selection", "badge", "kcenter_greedy", "select", "top_k", "uncertainty"]
