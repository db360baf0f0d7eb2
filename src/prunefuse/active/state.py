"""The run's progress, saved atomically after every completed step, so ``--resume`` can skip what
is done even after kill -9. Each step's result is a pure function of the state before it and a
seed derived from its name, so a resumed run ends exactly where an uninterrupted one does."""

from __future__ import annotations

import fnmatch
import os
import signal
from pathlib import Path

from ..errors import UserError
from ..io.storage import read_json, write_json, write_text

FAULT_ENV = "PRUNEFUSE_FAULT_AFTER"  # testing aid: SIGKILL this process after a matching step


class RunState:
    def __init__(self, out: Path, pool_size: int | None = None):
        self.out = out
        self.path = out / "state.json"
        self.data = {"version": 1, "steps": {}, "labeled": []}
        if self.path.exists():
            try:
                self.data = read_json(self.path)
            except (ValueError, OSError) as e:
                raise UserError(f"{self.path}: damaged ({e}); start the run again in a new directory") from None
            check_state(self.data, pool_size, self.path)

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


def check_state(data, pool_size: int | None, path: Path) -> None:
    """A state read back must have the shape this module writes and a labeled set that can be real:
    indices inside the pool, each labeled once."""
    hint = "the file was edited or damaged; start the run again in a new directory"
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict) or not isinstance(
            data.get("labeled"), list):
        raise UserError(f"{path}: not a run state (an object with 'steps' and 'labeled'); {hint}")
    if not all(isinstance(r, dict) for r in data["steps"].values()):
        raise UserError(f"{path}: a step record is not an object; {hint}")
    seen: set[int] = set()
    for row in data["labeled"]:
        if not (isinstance(row, dict) and isinstance(row.get("index"), int) and isinstance(row.get("round"), int)
                and isinstance(row.get("score"), (int, float))):
            raise UserError(f"{path}: a labeled entry is not {{index, round, score}}: {str(row)[:60]}; {hint}")
        index = row["index"]
        if index < 0 or (pool_size is not None and index >= pool_size) or row["round"] < 0:
            raise UserError(f"{path}: labeled index {index} (round {row['round']}) lies outside the pool of "
                            f"{pool_size}; {hint}")
        if index in seen:
            raise UserError(f"{path}: sample {index} is labeled twice; {hint}")
        seen.add(index)
