"""Reading ``.npz`` archives with memory bounded by what they declare, before decompressing.

An ``.npz`` is a zip of ``.npy`` members; a few megabytes of deflated zeros can
declare gigabytes (a zip bomb), and ``np.load`` decompresses a member whole
before anything can check it. :class:`NpzArchive` reads each member's ``.npy``
header first (a few hundred bytes of the stream) and gives its declared shape
and dtype, so a reader can refuse an array of the wrong shape, or one larger
than its other contents allow, before decompressing it; it decompresses only
the members asked for (and, with ``rows``, only their first rows), and never
more than the header declares. Its own checks, before any data is decompressed:

- the member's size in the zip directory must equal its ``.npy`` header and data;
- object arrays are refused (no pickle);
- the arrays read from one archive must fit in the memory available
  (:func:`evsim.validate.available_memory`), the documented cap for what no other
  content bounds.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import EvsimFileError
from ..validate import available_memory

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


@dataclass(frozen=True)
class Declared:
    """What an ``.npy`` member declares: ``shape``, ``dtype``, ``fortran`` order, and
    ``offset``, the bytes of its header (the data follows)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int

    @property
    def nbytes(self) -> int:
        """Bytes of the declared data."""
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e9:.3g} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.3g} MB"


class NpzArchive(Mapping):
    """The arrays of an ``.npz`` file by key (without ``.npy``), read when first asked for.

    A read-only mapping (``archive[key]``, ``key in archive``, ``archive.get``);
    :meth:`declared` gives a member's shape and dtype without decompressing it, and
    :meth:`read` its first rows only. Use as a context manager, or :meth:`close` it.
    Errors are :class:`~evsim.errors.EvsimFileError` naming the file and the member.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._zip = zipfile.ZipFile(self.path)
        self._members = {info.filename[:-4] if info.filename.endswith(".npy")
                         else info.filename: info for info in self._zip.infolist()}
        self._declared: dict[str, Declared] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._budget = available_memory()
        try:
            for key in self._members:  # every header, and so every damaged member, up front
                self.declared(key)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (arrays already read stay usable)."""
        self._zip.close()

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, key) -> bool:  # Mapping's would read the array
        return key in self._members

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._members:
            raise KeyError(key)
        if key not in self._arrays:
            self._arrays[key] = self.read(key)
        return self._arrays[key]

    def declared(self, key: str) -> Declared:
        """The shape, dtype and order member ``key`` declares (its header only is read)."""
        if key not in self._declared:
            info = self._members[key]
            with self._zip.open(info) as stream:
                declared = self._read_header(key, stream)
            if info.file_size != declared.offset + declared.nbytes:
                raise EvsimFileError(self.path, f"array '{key}' declares {declared.shape} "
                                     f"{declared.dtype} ({_size(declared.nbytes)}), but the "
                                     f"archive holds {_size(info.file_size)} for it: a "
                                     "damaged or forged file")
            self._declared[key] = declared
        return self._declared[key]

    def _read_header(self, key: str, stream) -> Declared:
        version = np.lib.format.read_magic(stream)
        reader = _HEADER_READERS.get(version)
        if reader is None:
            raise EvsimFileError(self.path, f"array '{key}' has .npy format version "
                                 f"{version}, which evsim does not read")
        shape, fortran, dtype = reader(stream)
        if dtype.hasobject:
            raise EvsimFileError(self.path, f"array '{key}' holds Python objects, which "
                                 "evsim does not read (no pickle)")
        return Declared(tuple(int(n) for n in shape), dtype, bool(fortran), stream.tell())

    def read(self, key: str, rows: int | None = None) -> np.ndarray:
        """Member ``key`` as an array; with ``rows``, only its first ``rows`` along axis 0
        are decompressed. Refuses, before decompressing, data past the memory available."""
        declared = self.declared(key)
        shape = declared.shape
        if rows is not None and shape and not declared.fortran:
            shape = (min(rows, shape[0]),) + shape[1:]
        nbytes = int(np.prod(shape, dtype=object)) * declared.dtype.itemsize
        if self._budget is not None and nbytes > self._budget:
            raise EvsimFileError(self.path, f"array '{key}' declares {declared.shape} "
                                 f"{declared.dtype}: {_size(nbytes)}, more than the "
                                 f"{_size(self._budget)} of memory available")
        data = bytearray(nbytes)
        with self._zip.open(self._members[key]) as stream:
            self._read_header(key, stream)
            view, done = memoryview(data), 0
            while done < nbytes:
                got = stream.readinto(view[done:])
                if not got:
                    raise EvsimFileError(self.path, f"array '{key}' ends early: "
                                         f"{done} of {nbytes} bytes")
                done += got
            if shape == declared.shape:
                stream.read(1)  # at the end: the zip's CRC of the member is checked
        if self._budget is not None:
            self._budget -= nbytes
        array = np.frombuffer(data, dtype=declared.dtype)
        if declared.fortran:
            return array.reshape(shape[::-1]).T
        return array.reshape(shape)


__all__ = ["NpzArchive", "Declared"]
