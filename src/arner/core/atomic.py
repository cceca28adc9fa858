"""Write files and folders so that a failure never leaves them half-written, and never deletes what is not ours.

- A file is written to a temp file beside it, then renamed over it (`write_text`); a folder is
  built whole in a temp folder beside it, then swapped in (`directory`, or `directories` for
  several folders that must change together, such as an annotation folder's `spans/` and
  `articles/`). On any error the temp is removed and the old file or folder is left as it was.
- Temp names are `.<NAME>.arner-tmp-<PID>-<RANDOM>` beside the target NAME, so an orphan (a
  process killed mid-write) is obviously ours. Stale-temp rule: each write to NAME first removes
  the temps of that same NAME whose process (PID) is no longer running on this machine and that
  are older than an hour; a live writer's temp is never touched, and the hour keeps a writer on
  another machine sharing the folder safe while it is busy.
- Outputs get the modes the umask gives ordinary files and folders (0o666 / 0o777 & ~umask),
  not the 0o600 / 0o700 of `tempfile`.
- A folder is never swapped in over the current folder, one of its parents or the filesystem
  root, and `directory(..., owned=...)` refuses to replace a folder holding entries that are not
  ours rather than deleting them.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".arner-tmp-"
STALE_AFTER_S = 3600.0


def _umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it races with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _prefix(target: Path) -> str:
    return f".{target.name}{TMP_MARK}{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's live process, or we cannot tell: keep its temp
    return True


def sweep_stale(target: Path) -> None:
    """Remove temps of `target` left by dead processes more than an hour ago (the module's rule).

    A swap's `-old` copy left by a dead process whose target is missing (it crashed between the
    two renames) is the old target itself: it is renamed back, at once, not removed.
    """
    pattern = re.compile(re.escape(f".{target.name}{TMP_MARK}") + r"(\d+)-")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        try:
            if entry.name.endswith("-old") and not (target.exists() or target.is_symlink()):
                # a crash between the two renames of a swap: this is the only copy of the old target; put it back
                os.replace(entry, target)
                continue
            if time.time() - entry.lstat().st_mtime < STALE_AFTER_S:
                continue
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        except OSError:
            pass  # another process swept it first, or it is not ours to remove after all


def write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8, newlines as given) to a temp file beside `path`, then rename it over `path`."""
    if not isinstance(text, str):
        raise TypeError(f"write_text needs a str, got {type(text).__name__}")
    data = text.encode("utf-8")  # before anything is created: a lone surrogate fails with nothing touched
    path = Path(os.path.abspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_target(path: str | Path) -> Path:
    """`path` made absolute (links kept); ValueError when it is the cwd, one of its parents or the root."""
    real = Path(path).resolve()
    root = Path(real.anchor)
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the cwd was removed: only the root is left to refuse
        cwd = root
    why = {root: "the filesystem root", cwd: "the current folder"}.get(real) or (
        "a parent of the current folder" if real in cwd.parents else None
    )
    if why:
        raise ValueError(f"refusing to replace {path} as a whole: it is {why}; give a folder of its own, e.g. {Path(path) / 'out'}")
    return Path(os.path.abspath(path))


def foreign_entries(folder: Path, owned: Sequence[str]) -> list[str]:
    """Entries of `folder` matching none of the `owned` patterns (`*.txt`: a file; `train/`: a folder)."""
    out = []
    for entry in sorted(folder.iterdir()):
        is_dir = entry.is_dir() and not entry.is_symlink()
        patterns = [p.rstrip("/") for p in owned if p.endswith("/") == is_dir]
        if not any(fnmatch.fnmatchcase(entry.name, p) for p in patterns):
            out.append(entry.name + ("/" if is_dir else ""))
    return out


def check_owned(target: Path, owned: Sequence[str] | None, what: str) -> None:
    """Refuse to replace a folder with anything in it that is not ours (`owned` patterns)."""
    if owned is None or not (target.exists() or target.is_symlink()):
        return
    if not target.is_dir():
        raise ValueError(f"refusing to replace {target}: it is a file, not a folder of {what}")
    foreign = foreign_entries(target, owned)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ValueError(
            f"refusing to replace {target}: it holds {shown}, which are not {what} ({', '.join(owned)}); "
            "the folder is replaced whole, so give a new or empty folder, or one holding only an earlier output"
        )


def _make_temp(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=_prefix(target)))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _swap(targets: Sequence[Path], temps: Sequence[Path]) -> None:
    """Rename every temp over its target; on any failure put every old target back."""
    moved: list[tuple[Path, Path | None, Path, bool]] = []  # (target, where the old one went, temp, temp renamed in)
    try:
        for target, tmp in zip(targets, temps):
            old = None
            if target.exists() or target.is_symlink():
                old = tmp.with_name(tmp.name + "-old")
                os.replace(target, old)
            moved.append((target, old, tmp, False))
            os.replace(tmp, target)
            moved[-1] = (target, old, tmp, True)
    except BaseException:
        for target, old, tmp, swapped in reversed(moved):
            if swapped:
                os.replace(target, tmp)
            if old is not None:
                os.replace(old, target)
        raise
    for _, old, _, _ in moved:
        if old is not None:
            _remove(old)


@contextmanager
def directories(paths: Sequence[str | Path], owned: Sequence[str] | None = None, what: str = "ours") -> Iterator[list[Path]]:
    """Yield one temp folder per path; on success all replace their paths together, on error all are removed.

    The folders are written in full before the first rename, so a write error (a full disk)
    changes nothing; a failing rename puts back the folders already swapped.
    """
    targets = [check_target(p) for p in paths]
    for target in targets:
        check_owned(target, owned, what)
    temps: list[Path] = []
    try:
        for target in targets:
            temps.append(_make_temp(target))
        yield temps
        _swap(targets, temps)
    finally:
        for tmp in temps:  # after a successful swap they are gone; after an error they go now
            if tmp.exists() or tmp.is_symlink():
                _remove(tmp)


@contextmanager
def directory(path: str | Path, owned: Sequence[str] | None = None, what: str = "ours") -> Iterator[Path]:
    """Yield a temp folder beside `path`; on success it replaces `path` whole, on error it is removed.

    With `owned` (patterns such as `*.txt`, `train/`), an existing `path` holding anything
    else is refused (ValueError naming it and the rule) instead of deleted.
    """
    with directories([path], owned, what) as (tmp,):
        yield tmp
