"""A folder of finished comparison cells, so that an interrupted comparison resumes.

A cell is one simulation of one method (at one T, or at the largest T read at
checkpoints). :func:`evsim.compare_methods` with ``cells=FOLDER`` saves each
finished cell there as a small JSON file (written atomically) and, on a rerun,
reuses the cells whose key (method, options, T, checkpoints) matches. The
folder's ``inputs.json`` records what every cell was computed from (the model's
content hash, digests of the calibration images, images and labels, and the
simulation settings); a rerun with other inputs is refused, naming what
changed, rather than mixing cells of two comparisons.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .errors import EvsimFileError, EvsimValueError
from .io.atomic import atomic_file

#: The file recording what a folder's cells were computed from.
INPUTS_FILE = "inputs.json"
#: Glob pattern of the cell files.
CELL_FILES = "cell-*.json"


def _plain(value):
    """``value`` as JSON gives it back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(value, allow_nan=False))


class ForeignCellsError(EvsimFileError, EvsimValueError):
    """A folder holds cells this comparison cannot reuse. The message ends with how to
    discard them in Python (``restart=True``); :meth:`advice` phrases it another way (the
    command's ``--restart``)."""

    def __init__(self, path: str | os.PathLike, problem: str, discard: str = "restart=True"):
        self.cause = problem
        super().__init__(path, f"{problem}; use a new folder, or discard the saved cells "
                               f"({discard})")

    def advice(self, discard: str) -> str:
        """The message with ``discard`` as the way to discard the cells."""
        return str(ForeignCellsError(self.path, self.cause, discard))

    def __reduce__(self):
        return type(self), (self.path, self.cause)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


def _write_json(path: Path, value) -> None:
    with atomic_file(path) as stream:
        stream.write((json.dumps(value, indent=1, allow_nan=False) + "\n").encode("utf-8"))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EvsimFileError(path, f"cannot be read as a comparison cell ({err}); delete it to "
                             "recompute it") from None


class CellStore:
    """Cells of one comparison in ``folder``, computed from ``inputs``.

    ``inputs`` maps each input's name (``"model"``, ``"images"``, ...) to a
    digest or a JSON value. A folder holding cells of other inputs raises
    :class:`ForeignCellsError` (an :class:`~evsim.errors.EvsimValueError`) naming the
    inputs that differ;
    ``restart=True`` deletes those cells instead.
    """

    def __init__(self, folder: str | os.PathLike, inputs: dict, restart: bool = False):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise EvsimFileError(self.folder, "is a file, not a folder; give a folder for the "
                                 "comparison's cells")
        manifest, inputs = self.folder / INPUTS_FILE, _plain(inputs)
        if restart:
            self.clear()
        elif manifest.is_file():
            saved = _read_json(manifest)
            if not isinstance(saved, dict):
                raise ForeignCellsError(manifest, "is not a record of a comparison's inputs "
                                        "(a JSON object)")
            changed = sorted(k for k in set(saved) | set(inputs) if saved.get(k) != inputs.get(k))
            if changed:
                raise ForeignCellsError(
                    self.folder, f"holds cells of another comparison: its "
                    f"{', '.join(changed)} differ from this run's")
        elif any(self.folder.glob(CELL_FILES)):
            raise ForeignCellsError(self.folder, f"holds cells but no {INPUTS_FILE} saying what "
                                    "they were computed from")
        _write_json(manifest, inputs)
        self.inputs = inputs

    def _path(self, key: dict) -> Path:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", str(key.get("label", ""))).strip("-")[:40]
        return self.folder / f"cell-{slug}-T{key.get('T', '')}-{_digest(key)[:12]}.json"

    def get(self, key: dict) -> dict | None:
        """The saved cell of ``key`` (a JSON-ready dict), or None."""
        key = _plain(key)
        path = self._path(key)
        if not path.is_file():
            return None
        saved = _read_json(path)
        if not isinstance(saved, dict) or saved.get("key") != key or "cell" not in saved:
            return None
        return saved["cell"]

    def put(self, key: dict, cell: dict) -> None:
        """Save ``cell`` (JSON-ready) under ``key``, atomically."""
        key = _plain(key)
        _write_json(self._path(key), {"key": key, "cell": cell})

    def clear(self) -> None:
        """Delete the saved cells and the inputs record (nothing else in the folder)."""
        for path in list(self.folder.glob(CELL_FILES)) + [self.folder / INPUTS_FILE]:
            if path.is_file():
                path.unlink()


__all__ = ["CellStore", "INPUTS_FILE", "CELL_FILES"]
