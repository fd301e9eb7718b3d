"""Optional dependencies: one message, naming the exact install command, wherever one is missing.

The core (numpy, numba, scipy, matplotlib, onnx, tqdm) converts and
simulates; a few features need a package from an extra. :func:`require`
imports it or raises :class:`MissingExtraError` whose one-line message says
how to install it, from PyPI and from a clone.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import EvsimError, EvsimValueError

#: Import name -> the evsim extra that installs it.
EXTRAS = {"torch": "torch", "nir": "nir", "h5py": "nir", "optuna": "bo", "dask": "distributed",
          "optuna_integration": "distributed",
          "distributed": "distributed", "plotly": "explore", "pycocotools": "coco"}


class MissingExtraError(EvsimError, ImportError):
    """An optional dependency is not installed; the message names the install commands."""


def missing_extra_message(module: str, feature: str) -> str:
    """One line: ``feature`` needs ``module`` and the commands that install it."""
    extra = EXTRAS.get(module.split(".")[0])
    if extra is None:
        raise EvsimValueError(f"no evsim extra installs {module!r}; extras cover {sorted(EXTRAS)}")
    return (f"{feature} needs {module.split('.')[0]}, an optional extra: "
            f'pip install "evsim[{extra}]" (in a clone of evsim: pip install -e ".[{extra}]")')


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra that installs it.

    ``feature`` says what needs it, e.g. ``"evsim.io.from_torch"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name is not None and err.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is there but broken: show the real failure
        raise MissingExtraError(missing_extra_message(module, feature)) from None


__all__ = ["require", "missing_extra_message", "MissingExtraError", "EXTRAS"]
