"""The errors of reading models and files.

Each frontend raises its own subclass of :class:`UnsupportedModelError`
(``UnsupportedOperatorError`` for ONNX, ``UnsupportedModuleError`` for
PyTorch, ``NIRImportError`` for NIR), whose message names the operator,
module or node; catching :class:`UnsupportedModelError` handles all of them.

Every reader runs inside :func:`reading`, so a damaged file raises an
:class:`~evsim.errors.EvsimFileError` naming it, whatever the parser below
raised (``zlib.error``, a ``SyntaxError`` from a damaged ``.npy`` header, a
``KeyError`` from a damaged evsim header, ...).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import EvsimError, EvsimFileError


class UnsupportedModelError(EvsimError, ValueError):
    """The model holds something evsim cannot represent; the message names it and says
    what to do."""


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return os.path.abspath(os.fspath(a)) == os.path.abspath(os.fspath(b))


@contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Report any failure inside the block as an error naming ``path``, a ``what``.

    :class:`UnsupportedModelError` keeps its class (its message gains the
    file name); everything else becomes an :class:`EvsimFileError` chained to
    the original exception. ``KeyboardInterrupt`` passes through.
    """
    name = os.fspath(path)
    try:
        yield
    except EvsimFileError:
        raise
    except UnsupportedModelError as err:
        if not str(err).startswith(name):
            err.args = (f"{name}: {err}",) + err.args[1:]
        raise
    except OSError as err:
        if err.filename is not None and not _same_file(err.filename, name):
            problem = f"cannot read {os.fspath(err.filename)}, which it needs ({err.strerror})"
        elif isinstance(err, FileNotFoundError):
            problem = "no such file"
        elif isinstance(err, IsADirectoryError):
            problem = f"is a folder, not a {what}"
        elif isinstance(err, PermissionError):
            problem = "cannot be read: permission denied"
        else:
            problem = f"not a readable {what} ({err.strerror or err})"
        raise EvsimFileError(name, problem) from err
    except EvsimError as err:  # a check of evsim's that the file's content failed
        raise EvsimFileError(name, _detail(err, name)) from err
    except MemoryError as err:
        raise EvsimFileError(name, f"not a readable {what}: it declares more data than fits in "
                             "memory (a damaged file?)") from err
    except Exception as err:
        raise EvsimFileError(name, f"not a readable {what} ({type(err).__name__}: "
                             f"{_detail(err, name)[:300]})") from err


def _detail(err: BaseException, name: str) -> str:
    """The message of ``err`` on one line, without a leading ``name: ``."""
    detail = " ".join(str(err).split())
    return detail[len(name) + 2:] if detail.startswith(name + ": ") else detail


__all__ = ["UnsupportedModelError", "reading"]
