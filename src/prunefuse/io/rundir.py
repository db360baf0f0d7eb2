"""What every run directory holds so it can be repeated: the full config with versions and seed."""

from __future__ import annotations

import platform
import random
import sys
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from .storage import write_json


def environment() -> dict:
    import sklearn
    import torch_pruning

    return {"prunefuse": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "torch_pruning": getattr(torch_pruning, "__version__", "unknown"), "numpy": np.__version__,
            "scikit_learn": sklearn.__version__, "platform": platform.platform(),
            "threads": torch.get_num_threads(), "command": " ".join(sys.argv)}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def write_config(out: str | Path, config: dict) -> None:
    write_json(Path(out) / "config.json", {**config, "environment": environment()})
