"""The run's progress, saved atomically after every completed step, so ``--resume`` can skip what
is done even after kill -9. Each step's result is a pure function of the state before it and a
seed derived from its name, so a resumed run ends exactly where an uninterrupted one does."""

from __future__ import annotations

import fnmatch
import os
import signal
import zlib
from pathlib import Path

from ..errors import UserError
from ..storage import read_json, write_json, write_text

FAULT_ENV = "PRUNEFUSE_FAULT_AFTER"  # testing aid: SIGKILL this process after a matching step


def derive_seed(seed: int, name: str) -> int:
    return zlib.crc32(f"{seed}:{name}".encode()) & 0x7FFFFFFF


class RunState:
    def __init__(self, out: Path):
        self.out = out
        self.path = out / "state.json"
        self.data = {"version": 1, "steps": {}, "labeled": []}
        if self.path.exists():
            try:
                self.data = read_json(self.path)
            except ValueError as e:
                raise UserError(f"{self.path}: damaged ({e}); start the run again in a new directory") from None

    def done(self, step: str) -> dict | None:
        return self.data["steps"].get(step)

    def complete(self, step: str, record: dict) -> None:
        self.data["steps"][step] = record
        self.save()
        pattern = os.environ.get(FAULT_ENV)
        if pattern and fnmatch.fnmatch(step, pattern):
            os.kill(os.getpid(), signal.SIGKILL)

    @property
    def labeled(self) -> list[dict]:
        """Every labeled sample as {index, round, score}, in labeling order."""
        return self.data["labeled"]

    def add_labeled(self, indices: list[int], round_: int, scores: list[float]) -> None:
        self.data["labeled"] += [{"index": i, "round": round_, "score": s} for i, s in zip(indices, scores)]

    def save(self) -> None:
        write_json(self.path, self.data)
        rows = ["index,round,score"] + [f"{r['index']},{r['round']},{r['score']:.6g}" for r in self.labeled]
        write_text(self.out / "labeled.csv", "\n".join(rows) + "\n")
