"""prunefuse: cheaper deep learning through structured pruning.

The public API, re-exported here; each subpackage lists the rest of its own in ``__all__``:
``data`` (datasets and their readers), ``models`` (the zoo), ``pruning`` (channel pruning with an
exact map, fusion), ``train`` (the training engine, KD), ``selection`` (active-learning strategies),
``active`` (PruneFuse and its baselines), ``merge`` (PAM and its baselines) and ``io`` (checkpoints,
run directories)."""

__version__ = "0.2.0"

from .active import ActiveConfig, compare, resume, run_active
from .active.pool import PoolConfig, select_from_pool
from .data import Dataset, DataSpec
from .errors import UserError
from .flops import count
from .io import load_model
from .merge import MergeConfig, run_merge
from .models import create as create_model
from .pruning import ChannelMap, fuse, materialize, prune
from .train import TrainConfig, evaluate, fit, kd_loss, predict

__all__ = ["ActiveConfig", "ChannelMap", "DataSpec", "Dataset", "MergeConfig", "PoolConfig", "TrainConfig",
           "UserError", "__version__", "compare", "count", "create_model", "evaluate", "fit", "fuse", "kd_loss",
           "load_model", "materialize", "predict", "prune", "resume", "run_active", "run_merge", "select_from_pool"]
