"""PAM, pruning-aware merging: single-task networks become one multitask network whose every task
subset runs cheaply after pruning; with the no-merging, all-shared and MTZ baselines."""

from .assemble import assemble
from .group_pruning import PruneConfig, prune_network, prune_to_tolerance
from .grouped import GroupedNet, from_classifier
from .mtz import mtz_merge
from .mutual_info import mutual_information
from .pam import pam_groups
from .pipeline import METHODS, MergeConfig, run_merge
from .subsets import subset_table
from .tasks import MultiTaskObjective, TaskSet

__all__ = ["METHODS", "GroupedNet", "MergeConfig", "MultiTaskObjective", "PruneConfig", "TaskSet", "assemble",
           "from_classifier", "mtz_merge", "mutual_information", "pam_groups", "prune_network", "prune_to_tolerance",
           "run_merge", "subset_table"]
