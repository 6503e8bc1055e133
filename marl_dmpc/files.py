"""The data-safety rule, in one place.

*A command never deletes or overwrites a file that it did not create in this run, unless
the user says so (``--overwrite``).* Every file is written atomically: a temporary file
in the same folder, then a rename (or, for a new file, a hard link that fails if the
name was taken meanwhile), so a reader never sees half a file and an interrupted write
leaves the old one. New files get the permissions of the user's umask (0644 by default).

:class:`Outputs` is the set of files one command writes: :meth:`Outputs.claim` checks a
path before the work starts, :meth:`Outputs.write` writes (replacing only what this
command created, or anything with ``overwrite``) and :meth:`Outputs.remove` deletes only
what this command created. :func:`fresh_path` gives a default output path that is new.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class OutputError(ValueError):
    """A file cannot be written or would clobber one that is not the command's; the
    message is one line."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike[str], data: bytes, *, replace: bool) -> Path:
    """Write ``data`` to ``path`` atomically with the umask's permissions.

    ``replace=False`` refuses an existing ``path`` (:class:`OutputError`), also one that
    appears while writing; ``replace=True`` replaces it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path exists: never clobbers
            except FileExistsError:
                raise OutputError(f"{path} exists; it was not replaced") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def fresh_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if no file has that name, else the first free ``<stem>_2<suffix>``,
    ``<stem>_3<suffix>``, ..."""
    path = Path(path)
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
    return candidate


def check_writable(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Make sure a file can be written at ``path`` (its folder is created if needed).

    Raises
    ------
    OutputError
        With a one-line reason, if it cannot.
    """
    if not str(path).strip():
        raise OutputError(f"{flag} needs a file name")
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a directory; give a file name")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the folder of {flag} {path}: {err.strerror}") from None
    try:  # the only reliable test (root passes os.access on read-only mounts)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as err:
        raise OutputError(f"cannot write {flag} {path}: {err.strerror}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write {flag} {path}: permission denied")
    return path


class Outputs:
    """The files one command writes.

    Parameters
    ----------
    overwrite : bool
        The user allows replacing existing files (``--overwrite``).
    """

    def __init__(self, overwrite: bool = False) -> None:
        self.overwrite = overwrite
        self.created: set[Path] = set()
        self._adopted: set[Path] = set()

    def _key(self, path: str | os.PathLike[str]) -> Path:
        return Path(path).resolve()

    def claim(
        self,
        path: str | os.PathLike[str],
        flag: str = "--out",
        *,
        may_replace: Callable[[Path], bool] | None = None,
    ) -> Path:
        """Check that ``path`` can be written by this command: writable, and new unless
        ``overwrite`` or ``may_replace(path)`` says the existing file is this run's own
        (e.g. the partial result of the run being resumed).

        Raises
        ------
        OutputError
            With a one-line reason naming ``flag``.
        """
        path = check_writable(path, flag)
        if path.exists() and not self.may_write(path):
            if may_replace is not None and may_replace(path):
                self._adopted.add(self._key(path))
            elif not self.overwrite:
                raise OutputError(
                    f"{flag} {path} exists; choose another path or pass --overwrite to replace it"
                )
        return path

    def may_write(self, path: str | os.PathLike[str]) -> bool:
        """Whether :meth:`write` may replace ``path`` if it exists."""
        key = self._key(path)
        return self.overwrite or key in self.created or key in self._adopted

    def write(self, path: str | os.PathLike[str], data: bytes) -> Path:
        """Write ``data`` atomically; an existing file is replaced only if this command
        created or adopted it, or with ``overwrite``."""
        written = write_atomic(path, data, replace=self.may_write(path))
        self.created.add(self._key(written))
        return written

    def remove(self, path: str | os.PathLike[str]) -> bool:
        """Delete ``path`` if this command created or adopted it; returns whether it did."""
        key = self._key(path)
        if key not in self.created and key not in self._adopted:
            return False
        Path(path).unlink(missing_ok=True)
        self.created.discard(key)
        self._adopted.discard(key)
        return True
