"""A real, mostly unlabeled pool and the labels a user has given so far: an image folder or an
``.npz``, and a ``id,label`` CSV. The same readers serve ``select``, ``label``, ``fit`` and ``predict``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from ..errors import UserError
from .arrays import open_npz, to_nchw_uint8
from .images import list_images, read_images


@dataclass
class UnlabeledPool:
    images: torch.Tensor  # uint8 N x C x H x W
    ids: list[str]
    classes: list[str] | None = None
    root: Path | None = None  # the image folder, where the pool is one

    @cached_property
    def position(self) -> dict[str, int]:
        """Each id's row, built once: label files are checked against it line by line."""
        return {i: n for n, i in enumerate(self.ids)}


def read_pool(path: str | Path, image_size: int | None = None) -> UnlabeledPool:
    """An image folder (ids are paths relative to it) or an ``.npz`` with ``x`` (ids: ``ids`` or row
    numbers, optional ``classes``). Ids must be unique."""
    path = Path(path)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise UserError(f"{path}: no images found; give a folder of images or an .npz file")
        pool = UnlabeledPool(read_images(files, image_size), [f.relative_to(path).as_posix() for f in files],
                             root=path)
    elif path.suffix == ".npz" and path.is_file():
        arrays = open_npz(path)
        images = to_nchw_uint8(arrays["x"], str(path))
        ids = [str(i) for i in arrays["ids"]] if "ids" in arrays else [str(i) for i in range(len(images))]
        if len(ids) != len(images):
            raise UserError(f"{path}: {len(ids)} ids for {len(images)} images; save one id per image")
        classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
        pool = UnlabeledPool(images, ids, classes)
    else:
        raise UserError(f"{path}: not a folder or an .npz file; give one of those")
    seen: set[str] = set()
    for i in pool.ids:
        if i in seen:
            raise UserError(f"{path}: id '{i}' appears twice in the pool; give every image its own id")
        seen.add(i)
    return pool


def read_csv_rows(path: str | Path, columns: tuple[str, ...], what: str) -> list[tuple[str, ...]]:
    """The ``columns`` of every row of a CSV (``what`` names the file in errors); a UTF-8 BOM and CRLF
    line ends (spreadsheets) are fine."""
    path = Path(path)
    header = ",".join(columns)
    if not path.is_file():
        raise UserError(f"{path}: no such {what} file; write a CSV with the header {header}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [n.strip() for n in reader.fieldnames or []]
            if not set(columns) <= set(fields):
                raise UserError(f"{path}: the header must name the columns {' and '.join(columns)}, found {fields[:4]}")
            reader.fieldnames = fields
            rows = []
            for line, r in enumerate(reader, start=2):
                if any(r.get(c) is None for c in columns):
                    raise UserError(f"{path}:{line}: the row has fewer columns than the header; write {header}")
                rows.append(tuple(r[c].strip() for c in columns))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e}); save the {what} as a UTF-8 CSV") from None
    except csv.Error as e:
        raise UserError(f"{path}: not a readable CSV ({e})") from None
    return rows


def read_label_rows(path: str | Path) -> list[tuple[str, str]]:
    """``(id, label)`` rows of a labels CSV."""
    return read_csv_rows(path, ("id", "label"), "labels")  # type: ignore[return-value]


def read_queue(path: str | Path, pool: UnlabeledPool) -> list[str]:
    """The ids of a queue that ``select`` wrote (CSV ``id,score``), checked against the pool."""
    ids = [i for (i,) in read_csv_rows(path, ("id",), "queue")]
    position = pool.position
    unknown = [i for i in ids if i not in position]
    if unknown:
        raise UserError(f"{path}: id '{unknown[0]}' is not in the pool ({len(unknown)} such ids); write the queue "
                        "with prunefuse select on this pool")
    return list(dict.fromkeys(ids))


def read_labels(path: str | Path, pool: UnlabeledPool, classes: list[str] | None) -> tuple[list[int], list[str],
                                                                                            list[str]]:
    """Rows ``id,label`` checked against the pool; returns pool positions, their class names, and the
    class list (``classes``, else the pool's, else the sorted labels seen)."""
    rows = read_label_rows(path)
    position = pool.position
    seen: set[str] = set()
    for line, (sample, label) in enumerate(rows, start=2):
        if sample not in position:
            raise UserError(f"{path}:{line}: id '{sample}' is not in the pool; use the pool's ids, "
                            f"e.g. '{pool.ids[0]}'")
        if sample in seen:
            raise UserError(f"{path}:{line}: id '{sample}' is labeled twice; keep one row per sample")
        if not label:
            raise UserError(f"{path}:{line}: id '{sample}' has an empty label; give a class name")
        seen.add(sample)
    classes = classes or pool.classes or sorted({label for _, label in rows})
    unknown = sorted({label for _, label in rows} - set(classes))
    if unknown:
        raise UserError(f"{path}: unknown classes {unknown[:5]}; the classes are {classes[:10]}")
    return [position[s] for s, _ in rows], [label for _, label in rows], classes
