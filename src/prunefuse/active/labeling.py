"""What the labeling page works through, apart from HTTP: the queue that ``select`` wrote, the labels
file, the samples skipped in this session, and the selection that refills the queue in the background
while labeling goes on."""

from __future__ import annotations

import io
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import torch

from ..data.pool import read_pool, read_queue
from ..errors import UserError
from ..io.rundir import check_output_file
from .label_store import LabelStore, Refused
from .pool import EpochCallback, PoolConfig, Workspace, default_workspace, saved_workspace, select_from_pool


def png(image: torch.Tensor) -> bytes:
    """A pool image (uint8 C x H x W) as PNG bytes."""
    from PIL import Image

    array = image.numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[0] if len(array) == 1 else array.transpose(1, 2, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


class SelectionJob:
    """One selection at a time in a background thread, with the progress the page polls."""

    def __init__(self):
        self.lock = threading.Lock()
        self.status: dict = {"state": "idle"}

    def start(self, n: int, work: Callable[[int, EpochCallback], None]) -> dict:
        with self.lock:
            if self.status["state"] == "running":
                raise Refused("a selection is already running; wait for it to finish", 409)
            self.status = {"state": "running", "n": n, "stage": "reading the pool and the labels", "epoch": 0,
                           "epochs": None}
        threading.Thread(target=self.run, args=(n, work), name="prunefuse-select", daemon=True).start()
        return self.state()

    def run(self, n: int, work: Callable[[int, EpochCallback], None]) -> None:
        start = time.perf_counter()
        try:
            work(n, self.on_epoch)
            outcome = {"state": "done", "stage": "done"}
        except UserError as e:
            outcome = {"state": "failed", "error": str(e).splitlines()[0]}
        except Exception as e:  # a bug: the page shows it, the console gets the traceback
            traceback.print_exc()
            outcome = {"state": "failed", "error": f"{type(e).__name__}: {e}"}
        with self.lock:
            self.status = {**self.status, **outcome, "seconds": round(time.perf_counter() - start, 1)}

    def on_epoch(self, record: dict) -> None:
        with self.lock:
            last = record["epoch"] >= record["epochs"]
            self.status.update(epoch=record["epoch"], epochs=record["epochs"],
                               stage="scoring the pool" if last else "training the selector")

    def state(self) -> dict:
        with self.lock:
            return dict(self.status)


class LabelingSession:
    """The pool, its labels and the queue, checked once at start-up (a one-line error for each problem)."""

    def __init__(self, pool_path: str | Path, labels_path: str | Path, queue_path: str | Path,
                 classes: list[str] | None = None, workspace: str | Path | None = None,
                 selection: str | None = None):
        self.pool_path, self.queue_path = Path(pool_path), Path(queue_path)
        self.workspace = Path(workspace) if workspace else default_workspace(labels_path)
        config, known = saved_workspace(self.workspace) or (PoolConfig(), None)
        self.config = replace(config, selection=selection) if selection else config
        self.pool = read_pool(pool_path, self.config.image_size)
        self.position = self.pool.position
        self.store = LabelStore(labels_path, self.pool, classes or known)
        if known is not None:  # refused now, not when the page first refills the queue
            Workspace(self.workspace, self.config, self.pool, self.store.classes).check(
                hint="pass the --pool, --classes and --workspace that prunefuse select used")
        check_output_file(self.queue_path, "--queue")
        self.lock = threading.Lock()
        self.queue: list[str] = read_queue(self.queue_path, self.pool) if self.queue_path.is_file() else []
        self.queued = set(self.queue)
        self.skipped: set[str] = set()
        self.selection = SelectionJob()

    # --- what the page shows ---------------------------------------------------------------------------
    def progress(self) -> dict:
        labels = self.store.labels
        return {"done": sum(i in labels for i in self.queue), "total": len(self.queue),
                "skipped": sum(i not in labels for i in list(self.skipped)), "labeled": len(labels),
                "unlabeled": len(self.pool.ids) - len(labels)}

    def next(self) -> dict:
        """The first queued sample neither labeled nor skipped (``id`` None when there is none)."""
        with self.lock:
            sample = next((i for i in self.queue if i not in self.store.labels and i not in self.skipped), None)
            return {"id": sample, "image": None if sample is None else "/image/" + quote(sample),
                    "classes": self.store.classes, **self.progress()}

    def image(self, sample: str) -> bytes:
        """The pool's stored image of ``sample``, looked up by id: no path from a request is ever opened."""
        if sample not in self.position:
            raise Refused(f"unknown id '{sample}': no such image in the pool", 404)
        return png(self.pool.images[self.position[sample]])

    # --- what the page does ----------------------------------------------------------------------------
    def check_queued(self, sample: str) -> None:
        if sample not in self.position:
            raise Refused(f"unknown id '{sample}': not in the pool; label the ids GET /api/next gives", 404)
        if sample not in self.queued:
            raise Refused(f"id '{sample}' is not in the queue; label the ids GET /api/next gives", 400)

    def label(self, sample: str, label: str) -> dict:
        """Write one label; the answer comes once it is on disk."""
        self.check_queued(sample)
        if label not in self.store.classes:
            raise Refused(f"unknown class '{label}'; the classes are {', '.join(self.store.classes)}", 400)
        self.store.add(sample, label)
        return {"id": sample, "label": label, **self.progress()}

    def undo(self) -> dict:
        sample, label = self.store.undo()
        return {"id": sample, "label": label, **self.progress()}

    def skip(self, sample: str) -> dict:
        """Leave ``sample`` for later: it is not shown again until the queue is refilled or the server restarts."""
        self.check_queued(sample)
        if sample in self.store.labels:
            raise Refused(f"id '{sample}' is already labeled '{self.store.labels[sample]}'", 409)
        with self.lock:
            self.skipped.add(sample)
        return {"id": sample, **self.progress()}

    # --- refilling the queue ---------------------------------------------------------------------------
    def start_selection(self, n: int) -> dict:
        unlabeled = len(self.pool.ids) - len(self.store.labels)
        if not 1 <= n <= unlabeled:
            raise Refused(f"n {n} is out of range; pick between 1 and {unlabeled} (the unlabeled samples)", 400)
        if len(set(self.store.labels.values())) < 2:
            raise Refused("label samples of at least two classes first: the selector learns from them", 409)
        return self.selection.start(n, self.refill)

    def refill(self, n: int, on_epoch: EpochCallback) -> None:
        """Run ``select`` on the labels as they stand (copied, as labeling goes on meanwhile); the queue
        file is replaced atomically and the page moves on to the new queue."""
        with tempfile.TemporaryDirectory(prefix="prunefuse-label-") as tmp:
            labels = Path(tmp) / "labels.csv"
            self.store.snapshot(labels)
            select_from_pool(self.pool_path, labels, n, self.queue_path, self.config, self.store.classes,
                             self.workspace, quiet=True, on_epoch=on_epoch)
        queue = read_queue(self.queue_path, self.pool)
        with self.lock:
            self.queue, self.queued = queue, set(queue)
            self.skipped.clear()
