"""Structured pruning with an exact map from pruned to dense channels."""

from .channel_map import ChannelMap, LayerMap
from .fusion import FILLS, SCOPES, fuse
from .materialize import materialize
from .structured import IMPORTANCES, check_prunable, check_ratio, prune, pruned_costs, save_pruned

__all__ = ["FILLS", "IMPORTANCES", "SCOPES", "ChannelMap", "LayerMap", "check_prunable", "check_ratio", "fuse",
           "materialize", "prune", "pruned_costs", "save_pruned"]
