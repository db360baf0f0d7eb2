"""CIFAR batches are pickles; this unpickler admits only plain containers and numpy arrays,
so a crafted file cannot run code."""

from __future__ import annotations

import pickle
from pathlib import Path

from ..errors import UserError

ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_data_pickle(path: Path, hint: str) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise UserError(f"{path}: not a plain data batch ({e}); {hint}") from None
    except (EOFError, OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read ({e or 'truncated'}); the file is damaged, {hint}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a dict batch, found {type(obj).__name__}; {hint}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
