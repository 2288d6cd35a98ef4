"""Every file the harness writes goes through here: atomically, and never through a symbolic link.

A run folder someone sent you, or one a user "tidied" with links, may hold a symbolic link where the
harness writes (`records/ -> /elsewhere`, `leaderboard.csv -> ~/.bashrc`, `.bench-run.lock -> a file to
truncate`). Writing through it would put records outside the run or overwrite the link's target. So a
write into a folder that owns its files (a run folder, a report folder: `root`) is refused when the
target path leaves that folder, or when any existing part of it below the folder (the file included)
is a symbolic link; a file written in place (lock, log) is also refused when it has other hard links.
The folder itself may be a link (a run folder on another disk). Refusals are UnsafePathError (a
BenchError: `bench` exits 2 with the message).

Atomic writes (temp file in the same folder, fsync, rename) never leave a half file that could be read
as whole, and a rename replaces a link at the target instead of writing through it. The fsync (~10 ms
on a loaded disk) only matters for a power cut or an OS crash; a killed process never tears a renamed
file. Files whose readers detect damage and redo the work skip it (`sync=False`: predictions files).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from bench.errors import BenchError


class UnsafePathError(BenchError):
    """A write that would leave its folder (a symbolic link on the way, or a path outside)."""


def _refusal(path: Path, root: Path, why: str) -> UnsafePathError:
    return UnsafePathError(f"refusing to write {path}: {why}. The harness writes only real files inside "
                           f"{root}; remove the link (copy what it points to instead, if it is needed there) "
                           f"and run again")


def _link_text(link: Path) -> str:
    try:
        return f"{link} is a symbolic link (to {os.readlink(link)})"
    except OSError:
        return f"{link} is a symbolic link"


def confined(path: str | Path, root: str | Path) -> Path:
    """`path` once checked: inside `root` by name, and no existing part of it below `root` (the file
    included) a symbolic link. UnsafePathError otherwise, naming the link and where it points."""
    path, root = Path(path), Path(root)
    absolute_root = Path(os.path.abspath(root))
    relative = Path(os.path.relpath(os.path.abspath(path), absolute_root))
    if relative.parts[:1] == ("..",) or relative.is_absolute():
        raise _refusal(path, root, "it is outside that folder")
    current = absolute_root
    for part in relative.parts:
        if part == ".":
            continue
        current = current / part
        if os.path.islink(current):
            raise _refusal(path, root, _link_text(current))
    return path


def links_under(root: str | Path) -> Iterator[Path]:
    """Every symbolic link inside the folder `root` (not followed), in a stable order."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            if os.path.islink(os.path.join(folder, name)):
                yield Path(folder) / name


def refuse_links_under(root: str | Path, what: str) -> None:
    """UnsafePathError naming the symbolic links inside `root` (what: how to call the folder)."""
    links = list(links_under(root))
    if links:
        shown = "; ".join(_link_text(link) for link in links[:5]) + (f"; and {len(links) - 5} more"
                                                                   if len(links) > 5 else "")
        raise UnsafePathError(f"{what} {root} holds symbolic links, through which the harness would write "
                              f"outside it: {shown}. Remove them (copy what they point to instead, if it is "
                              f"needed there) and run again")


def open_in_place(path: str | Path, root: str | Path, flags: int, mode: int = 0o644) -> int:
    """os.open for a file written in place (a lock, an appended log) inside `root`: confined, never
    through a link (O_NOFOLLOW), and refused when the file has other hard links (writing would
    change them too). Creates missing parent folders."""
    path = confined(path, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError:
        if os.path.islink(path):  # made between the check and the open
            raise _refusal(path, Path(root), _link_text(path)) from None
        raise
    if os.fstat(fd).st_nlink > 1:
        os.close(fd)
        raise _refusal(path, Path(root), f"{path} has other hard links, which writing it would change too")
    return fd


Filler = Callable[[BinaryIO], object]


def write_atomic(path: str | Path, content: bytes | Filler, root: str | Path | None = None,
                 sync: bool = True) -> Path:
    """Write `content` (bytes, or a function that writes into a binary file) to `path` atomically.
    With `root`, the path is confined to that folder first (see the module docstring). sync=False
    leaves out the fsync: still atomic for every reader and against a killed process (the rename is),
    but a power cut or an OS crash may leave the file empty or torn; only for files whose readers
    check them and treat a damaged one as missing (each caller says which check)."""
    path = Path(path) if root is None else confined(path, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: concurrent writers never collide
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
            else:
                content(f)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str, root: str | Path | None = None) -> Path:
    return write_atomic(path, text.encode("utf-8"), root)
