"""The labels file as the labeling page writes it. Each label is one line appended and fsync'ed before
the page hears back, so a kill -9 loses no label that was acknowledged; a thread lock and a file lock
let two tabs, two requests or two servers write in turn; an id is never written twice; and undo
rewrites the file atomically."""

from __future__ import annotations

import csv
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..data.pool import UnlabeledPool, read_label_rows, read_labels
from ..errors import UserError
from ..io.rundir import check_output_file
from ..io.storage import csv_text, write_text

HEADER = ["id", "label"]


class Refused(UserError):
    """A request the labeling server answers with ``status`` and the message, and then goes on serving."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def csv_line(*fields: str) -> str:
    return csv_text(list(fields), [])  # one row, quoted where a field needs it


class LabelStore:
    """``labels.csv`` (header ``id,label``, class names as labels), mirrored in memory."""

    def __init__(self, path: str | Path, pool: UnlabeledPool, classes: list[str] | None):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.written: list[str] = []  # the ids this store appended, newest last: what undo takes back
        check_output_file(self.path, "--labels")
        try:
            if not self.path.is_file() or self.path.stat().st_size == 0:
                write_text(self.path, csv_line(*HEADER))
            with self.locked() as fd:
                self.repaired = self.repair(fd, pool)
                positions, names, self.classes = read_labels(self.path, pool, classes)
                self.labels = {pool.ids[p]: n for p, n in zip(positions, names, strict=True)}
                self.version = version(self.path)
        except OSError as e:
            raise UserError(f"--labels {self.path}: cannot write it ({e.strerror or e}); choose a file you can "
                            "write") from None
        if not self.classes:
            raise UserError(f"{self.path}: no labels yet and no class names known; pass --classes a,b,c")

    @contextmanager
    def locked(self) -> Iterator[int]:
        """The labels file open for appending and locked against every other writer, thread or process.
        Opened again where an undo elsewhere replaced the file while this one waited for the lock."""
        with self.lock:
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                        break
                except BaseException:
                    os.close(fd)
                    raise
                os.close(fd)
            try:
                yield fd
            finally:
                os.close(fd)  # and with it the file lock

    def repair(self, fd: int, pool: UnlabeledPool) -> str | None:
        """Finish a last line that lacks its line end: kept where it is a whole row (a file written by
        hand), cut off where it is a fragment of an append that never finished. Returns what was done."""
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        if data.endswith(b"\n"):
            return None
        start = data.rfind(b"\n") + 1
        last = data[start:].decode("utf-8", errors="replace")
        try:
            row = next(csv.reader([last]), [])
        except csv.Error:
            row = []
        if start == 0 or (len(row) == 2 and row[0].strip() in pool.position and row[1].strip()):
            os.write(fd, b"\n")
            os.fsync(fd)
            return None
        os.ftruncate(fd, start)
        os.fsync(fd)
        return f"{self.path}: removed an unfinished last line {last!r} (an append that was cut off)"

    def sync(self) -> None:
        """Read the file again where another process changed it since this store last looked."""
        if version(self.path) != self.version:
            self.labels = dict(read_label_rows(self.path))
            self.written = [i for i in self.written if i in self.labels]
            self.version = version(self.path)

    def add(self, sample: str, label: str) -> None:
        """Append ``sample,label`` and return once it is on disk; an id already labeled is refused (409)."""
        with self.locked() as fd:
            self.sync()
            if sample in self.labels:
                raise Refused(f"id '{sample}' is already labeled '{self.labels[sample]}'; undo that label to "
                              "change it", 409)
            data = csv_line(sample, label).encode()
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
            self.labels[sample] = label
            self.written.append(sample)
            self.version = version(self.path)

    def undo(self) -> tuple[str, str]:
        """Take back the newest label this store wrote; the file is rewritten atomically."""
        with self.locked():
            self.sync()
            if not self.written:
                raise Refused("nothing to undo: this server has written no label since it started (or undid "
                              "them all)", 409)
            sample = self.written.pop()
            label = self.labels.pop(sample)
            write_text(self.path, csv_text(HEADER, [list(r) for r in self.labels.items()]))
            self.version = version(self.path)
            return sample, label

    def snapshot(self, path: Path) -> None:
        """The labels as they stand, written to ``path`` for a selection that runs while labeling goes on."""
        with self.locked():
            self.sync()
            write_text(path, csv_text(HEADER, [list(r) for r in self.labels.items()]))


def version(path: Path) -> tuple[int, int, int]:
    """What tells one state of the file from another without reading it."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns
