"""Writing files and folders so that a reader only ever sees the old or the complete new one.

A file is written to a hidden temporary file beside it (``.NAME.XXXX.tmp``),
flushed to disk and renamed over the target: a rename within one folder is
atomic, so an interrupted write (Ctrl-C, ``kill -9``, a full disk) leaves the
old file as it was. A folder is built in a hidden temporary folder beside it
and swapped with the target in one step (Linux ``renameat2`` with
``RENAME_EXCHANGE``), so two runs writing the same folder at once leave the
complete folder of one of them, never a mix. Elsewhere the swap falls back to
two renames, with a moment in which the folder is missing.

An interrupted ``kill -9`` can leave a hidden ``.NAME.XXXX.tmp`` file or folder
beside the target; it is safe to delete. The ``check_output_*`` functions
reject a path that cannot be written before any work is done.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import functools
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, TypeVar

from ..errors import EvsimFileError

_Result = TypeVar("_Result")

_AT_FDCWD = -100
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # the portable way reads it by setting it
    os.umask(mask)
    return mask


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def _check_parent(target: Path, what: str) -> None:
    """Raise unless the folder of ``target`` exists or can be created, and is writable."""
    ancestor = _nearest_existing(target.parent)
    if not ancestor.is_dir():
        raise EvsimFileError(target, f"cannot create the {what}: {ancestor} is a file, not a "
                             "folder")
    try:
        fd, probe = tempfile.mkstemp(dir=ancestor, prefix=".evsim-write-test.")
    except OSError as err:
        raise EvsimFileError(target, f"cannot write in {ancestor} ({err.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path if a file can be written there (its folder created if missing).

    Raises :class:`~evsim.errors.EvsimFileError` for a folder at ``path``, a
    file where a parent folder should be, or a folder without write permission.
    """
    target = Path(path)
    if target.is_dir():
        raise EvsimFileError(target, "is a folder; give a file name")
    _check_parent(target, "file")
    return target


def check_output_folder(path: str | os.PathLike, expected: Iterable[str] = ("*",)) -> Path:
    """``path`` as a Path if a folder can be written there, replacing what is there.

    The folder is replaced as a whole, so an existing one may hold only
    files whose names match the glob patterns ``expected`` (the files a
    previous run wrote); anything else is refused rather than deleted.
    """
    target = Path(path)
    if os.path.lexists(target) and not target.is_dir():
        raise EvsimFileError(target, "is a file, not a folder; give a folder name")
    if target.is_dir():
        patterns = tuple(expected)
        foreign = sorted(entry.name for entry in os.scandir(target)
                         if not entry.is_file(follow_symlinks=False)
                         or not any(fnmatch.fnmatch(entry.name, p) for p in patterns))
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise EvsimFileError(target, f"the folder holds files evsim did not write ({shown});"
                                 " it would be replaced as a whole, so give a new or empty folder")
    _check_parent(target, "folder")
    return target


def _through_links(path: str | os.PathLike) -> Path:
    """``path``, or where it leads if it is a symbolic link: a write replaces what the link
    points to and keeps the link (as writing to it with ``open`` would)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def names_the_folder(write: Callable[..., _Result]) -> Callable[..., _Result]:
    """Decorate a function that writes a folder (its first argument): an OSError while it
    writes (a full disk, a lost mount) becomes an :class:`~evsim.errors.EvsimFileError`
    naming the folder, which the OSError of a write does not."""
    @functools.wraps(write)
    def writing(directory, *args, **kwargs) -> _Result:
        try:
            return write(directory, *args, **kwargs)
        except OSError as err:
            raise EvsimFileError(directory, f"cannot be written ({err.strerror or err})"
                                 ) from err
    return writing


def _fsync_folder(folder: Path) -> None:
    with suppress(OSError):  # not every platform or file system can sync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Write ``path`` through a binary file object; it appears complete, or not at all.

    Missing parent folders are created. On an exception inside the block the
    temporary file is removed and ``path`` keeps its old content; an OSError
    (no permission, a full disk) becomes an :class:`~evsim.errors.EvsimFileError`.
    """
    shown, target = Path(path), _through_links(path)
    if target.is_dir():
        raise EvsimFileError(shown, "is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
    except OSError as err:
        raise EvsimFileError(shown, f"cannot be written ({err.strerror or err}: "
                             f"{err.filename})") from err
    try:
        with suppress(OSError):  # some file systems (vfat, CIFS) refuse chmod
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from others
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException as err:
        with suppress(OSError):
            os.unlink(temporary)
        if isinstance(err, OSError):  # a full disk, a vanished folder, ...
            raise EvsimFileError(shown, f"cannot be written ({err.strerror or err})") from err
        raise
    _fsync_folder(target.parent)


def _renameat2(source: Path, target: Path, flags: int) -> None:
    """Linux ``renameat2``; raises OSError, or NotImplementedError where it is missing."""
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        raise NotImplementedError("renameat2") from None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) != 0:
        code = ctypes.get_errno()
        if code in (errno.ENOSYS, errno.EINVAL):  # kernel or file system without it
            raise NotImplementedError("renameat2")
        raise OSError(code, os.strerror(code), os.fspath(source), None, os.fspath(target))


def _swap_in(staged: Path, target: Path) -> bool:
    """Put folder ``staged`` at ``target``; True if the old target now sits at ``staged``."""
    while True:
        try:
            _renameat2(staged, target, _RENAME_EXCHANGE)
            return True
        except FileNotFoundError:
            try:
                _renameat2(staged, target, _RENAME_NOREPLACE)
                return False
            except FileExistsError:
                continue  # another run put its folder there first: swap with it
        except NotImplementedError:
            break
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    try:
        os.replace(target, aside)
    except FileNotFoundError:
        aside.rmdir()
        os.replace(staged, target)
        return False
    os.replace(staged, target)
    os.replace(aside, staged)
    return True


class StagedFolder:
    """A folder written in a hidden temporary folder beside ``target``, then swapped in.

    Write into :attr:`path`, then call :meth:`commit`. Until then ``target``
    is untouched; a StagedFolder that is never committed (an exception, or
    :meth:`discard`) removes its temporary folder. As a context manager it
    commits when the block succeeds. Missing parent folders are created. A ``target``
    that is a symbolic link is written through: the folder it points to is replaced, the
    link kept.
    """

    def __init__(self, target: str | os.PathLike):
        self.target = _through_links(target)
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(dir=self.target.parent,
                                              prefix=f".{self.target.name}.", suffix=".tmp"))
        except OSError as err:
            raise EvsimFileError(self.target, f"cannot be written ({err.strerror or err}: "
                                 f"{err.filename})") from err
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)
        with suppress(OSError):  # some file systems (vfat, CIFS) refuse chmod
            os.chmod(self.path, 0o777 & ~_umask())

    def commit(self) -> Path:
        """Swap the staged folder into place (atomically on Linux); return ``target``."""
        if not self._cleanup.alive:
            raise RuntimeError("this staged folder was already committed or discarded")
        for entry in os.scandir(self.path):
            if entry.is_file(follow_symlinks=False):
                with open(entry.path, "rb") as stream:
                    os.fsync(stream.fileno())
        _fsync_folder(self.path)
        if os.path.lexists(self.target) and not self.target.is_dir():
            raise EvsimFileError(self.target, "is a file, not a folder; give a folder name")
        if _swap_in(self.path, self.target):
            self._cleanup()  # the old folder, now at self.path
        else:
            self._cleanup.detach()
        _fsync_folder(self.target.parent)
        return self.target

    def discard(self) -> None:
        """Remove the staged folder; ``target`` stays as it was."""
        self._cleanup()

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


__all__ = ["atomic_file", "StagedFolder", "check_output_file", "check_output_folder",
           "names_the_folder"]
