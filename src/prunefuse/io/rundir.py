"""Run directories that know what they hold. ``config.json`` records the command and the config that
produced the directory; a later command is checked against it before any step is reused or any file
written, and a lock file with the owner's pid keeps a second process out while one writes."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import shutil
import socket
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .storage import append_jsonl, json_text, read_json, write_file

FORMAT_VERSION = 2
LOCK = ".lock"
KINDS = {"pool": "a selector workspace of 'prunefuse select'"}  # commands a user never types


def environment() -> dict:
    import sklearn
    import torch_pruning

    from ..train.runtime import configure_threads

    return {"prunefuse": package_version(), "python": sys.version.split()[0], "torch": torch.__version__,
            "torch_pruning": getattr(torch_pruning, "__version__", "unknown"), "numpy": np.__version__,
            "scikit_learn": sklearn.__version__, "platform": platform.platform(),
            "threads": configure_threads(), "command": " ".join(sys.argv)}


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prunefuse")
    except PackageNotFoundError:
        return "unknown"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def derive_seed(seed: int, name: str) -> int:
    """A seed for one named step of a run, so a resumed run draws exactly what an uninterrupted one does."""
    return zlib.crc32(f"{seed}:{name}".encode()) & 0x7FFFFFFF


def fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def with_defaults(saved: dict, sections: dict[str, dict]) -> dict:
    """A saved config whose sections (e.g. ``"train"``) lack settings added since it was written, given
    their defaults, which keep the behaviour of the version that wrote it: such a run still resumes.
    Anything that is not a mapping is returned as it is, for the comparison to refuse."""
    if not isinstance(saved, dict):
        return saved
    return {**saved, **{key: {**defaults, **saved[key]} for key, defaults in sections.items()
                        if isinstance(saved.get(key), dict)}}


def differing_keys(a, b, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [prefix or "(config)"] if a != b else []
    keys = []
    for k in sorted(set(a) | set(b), key=str):
        keys += differing_keys(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
    return keys


def describe(keys: list[str], saved: dict, requested: dict) -> str:
    def value(d, key):
        for part in key.split("."):
            d = d.get(part) if isinstance(d, dict) else None
        return d

    shown = [f"{k}: {value(saved, k)!r} there, {value(requested, k)!r} now" for k in keys[:4]]
    return "; ".join(shown) + (f"; and {len(keys) - 4} more" if len(keys) > 4 else "")


def check_writable_dir(path: Path, flag: str = "--out") -> None:
    """``path`` can be (or already is) a directory this process may write, checked before any work."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a directory; choose a directory path")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {path} lies under {parent}, which is a file; choose a directory path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: {parent} is not writable; choose a directory you can write")


def check_output_file(path: Path, flag: str = "--out") -> None:
    """``path`` names a file that can be written (its folder exists or can be made), not a directory."""
    if path.is_dir():
        raise UserError(f"{flag} {path} is a directory; name a file to write inside it")
    check_writable_dir(path.parent, flag)


def stored_config(saved: dict) -> dict | None:
    """The config section of a ``config.json`` (earlier versions kept a run's under ``active``)."""
    if "config" in saved:
        return saved["config"]
    if saved.get("command") == "run" and "active" in saved:
        return saved["active"]
    return None


class RunDirectory:
    """The directory one command's run owns. ``claim`` checks and locks it; ``release`` unlocks it."""

    def __init__(self, path: str | os.PathLike, command: str, config: dict, upgrade: Callable | None = None,
                 flag: str = "--out", hint: str | None = None):
        self.path, self.command, self.config, self.upgrade = Path(path), command, config, upgrade
        self.flag, self.hint = flag, f"choose another {flag}, or pass --overwrite to start afresh there"
        self.mismatch_hint = hint or self.hint
        self.kind = KINDS.get(command, f"a 'prunefuse {command}' run")
        self.locked = False

    @classmethod
    def claim(cls, path: str | os.PathLike, command: str, config: dict, *, overwrite: bool = False,
              extra: dict | None = None, lock: bool = True, upgrade: Callable | None = None, flag: str = "--out",
              hint: str | None = None) -> RunDirectory:
        """Make ``path`` this run's directory: empty or new, or one the same command made with the same
        config (its finished steps are then reused). Another config or command, a folder prunefuse did
        not make, or a live lock is refused with a one-line error before anything is written.
        ``upgrade`` reads a saved config into today's schema (fields added since take their defaults,
        which keep the behaviour of the version that wrote it) before the two are compared. ``flag`` is the
        option that named ``path``, and ``hint`` what to do when ``path`` holds another config (by default:
        choose another ``flag`` or pass ``--overwrite``)."""
        from ..distributed import barrier, is_main

        run = cls(path, command, config, upgrade, flag, hint)
        if is_main():
            run.check(overwrite)
            try:
                if lock:
                    run.lock()
            except OSError as e:
                raise run.unwritable(e) from None
            try:
                if overwrite:
                    run.clear()
                run.path.mkdir(parents=True, exist_ok=True)
                if not (run.path / "config.json").is_file():  # rank 0 alone: no barrier inside
                    text = json_text({"format_version": FORMAT_VERSION, "command": command, "config": config,
                                      "fingerprint": fingerprint(config), **(extra or {}),
                                      "environment": environment()})
                    write_file(run.path / "config.json", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
                append_jsonl(run.path / "attempts.jsonl", {"started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                          "environment": environment()})
            except OSError as e:
                run.release()
                raise run.unwritable(e) from None
            except BaseException:
                run.release()
                raise
        barrier()
        return run

    def unwritable(self, e: OSError) -> UserError:
        return UserError(f"{self.flag} {self.path}: cannot write there ({e.strerror or e}); choose a directory you "
                         "can write")

    def saved(self) -> dict | None:
        path = self.path / "config.json"
        if not path.is_file():
            return None
        try:
            saved = read_json(path)
        except (ValueError, OSError) as e:
            raise UserError(f"{path}: damaged ({e}); {self.hint}") from None
        if not isinstance(saved, dict) or not isinstance(saved.get("command"), str):
            raise UserError(f"{path}: not a prunefuse config (no command); {self.hint}")
        return saved

    def check(self, overwrite: bool) -> None:
        check_writable_dir(self.path, self.flag)
        if not self.path.is_dir() or not any(self.path.iterdir()):
            return
        saved = self.saved()
        if saved is None:
            raise UserError(f"{self.path} is not empty and holds no prunefuse run (no config.json); choose an "
                            f"empty or new {self.flag}")
        if overwrite:
            return
        if saved["command"] != self.command:
            theirs = KINDS.get(saved["command"], f"the output of 'prunefuse {saved['command']}'")
            raise UserError(f"{self.path} holds {theirs}, not {self.kind}; {self.hint}")
        theirs = stored_config(saved)
        if self.upgrade is not None and theirs is not None:
            try:
                theirs = self.upgrade(theirs)
            except UserError as e:
                raise UserError(f"{self.path} holds {self.kind} whose config cannot be read "
                                f"({e}); {self.hint}") from None
        keys = differing_keys(theirs, self.config)
        if keys:
            raise UserError(f"{self.path} holds {self.kind} with another config "
                            f"({describe(keys, theirs or {}, self.config)}); {self.mismatch_hint}")

    def clear(self) -> None:
        """Remove what an earlier run left here (only a prunefuse run directory gets here)."""
        for child in self.path.iterdir() if self.path.is_dir() else []:
            if child.name == LOCK:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    # --- the lock ---------------------------------------------------------------------------------------
    def lock(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.path / LOCK
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(3):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = read_lock(lock)
                if owner is not None and owner_alive(owner):
                    raise UserError(f"{self.path} is in use by process {owner['pid']} on {owner['host']}; wait for "
                                    f"it to finish or choose another {self.flag} (if that process is gone, delete "
                                    f"{lock})") from None
                lock.unlink(missing_ok=True)  # a stale lock: its owner died (kill -9)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.locked = True
            return
        raise UserError(f"{self.path}: cannot take the lock {lock}; another process keeps taking it")

    def release(self) -> None:
        if self.locked:
            lock = self.path / LOCK
            owner = read_lock(lock)
            if owner is not None and owner.get("pid") == os.getpid():
                lock.unlink(missing_ok=True)
            self.locked = False

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_lock(path: Path) -> dict | None:
    try:
        owner = json.loads(path.read_text())
        return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def owner_alive(owner: dict) -> bool:
    if owner.get("host") != socket.gethostname():
        return True  # another machine on a shared file system: it cannot be checked from here
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
