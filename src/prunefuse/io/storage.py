"""Atomic, pickle-free persistence: every file is written to a temporary name and renamed,
so a crash (even kill -9) never leaves a half-written file where a good one stood."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UserError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``. Under torchrun only rank 0
    writes, and every rank waits until the file is in place, so any rank may read it next."""
    from ..distributed import barrier, is_main

    if is_main():
        write_file(Path(path), write)
    barrier()


def write_file(path: Path, write: Callable[[str], None]) -> None:
    """A file that cannot be written is the user's to fix (a full disk, a read-only folder): one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise unwritable(path, e) from None
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # the mode a plain open() gives, not the 0600 of mkstemp (or of safetensors): results stay readable
        # to the user's group on a shared machine
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise unwritable(path, e) from None
        raise
    fsync_dir(path.parent)


def unwritable(path: Path, e: OSError) -> UserError:
    return UserError(f"{path}: cannot write it ({e.strerror or e}); choose a place you can write")


def umask() -> int:
    """The process's umask, read without setting it where Linux tells it (setting it races other threads)."""
    try:
        with open("/proc/self/status") as f:
            return int(next(line.split()[1] for line in f if line.startswith("Umask:")), 8)
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` survive a power cut, not just a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def csv_text(header: list[str], rows: list[list]) -> str:
    """CSV with quoting where a field needs it (ids that hold commas), ``\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json_text(obj))


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one line: a log, so a crash costs at most its last line. Rank 0's alone under torchrun."""
    from ..distributed import is_main

    if not is_main():
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=_json_default) + "\n")
        f.flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")
