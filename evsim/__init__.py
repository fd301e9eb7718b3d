"""evsim: convert trained ANNs into spiking networks and simulate them event by event.

Data flow: ``evsim.io`` (load/save, importers) -> :class:`Network` ->
:func:`convert` -> :class:`SpikingNetwork` -> :func:`simulate` -> :class:`SimResult`.

``import evsim`` loads no simulation engine (no Numba): :func:`simulate`,
:func:`compare_methods`, :class:`Comparison` and :mod:`evsim.tune` are loaded when first
used (PEP 562), so reading a saved network or result stays light.
"""

import importlib
import sys
import types

from . import data, layers, models
from ._version import __version__
from .convert import convert
from .errors import (ConversionError, EvsimError, EvsimFileError, EvsimTypeError,
                     EvsimValueError, InsufficientMemoryError, UnscaledInputWarning)
from .forward import forward
from .io import load, save
from .layers import (QCFS, Add, AvgPool2d, BatchNorm, Clip, Concat, Conv2d, ConvTranspose2d,
                     Dense, Flatten, GlobalAvgPool, Identity, Input, LeakyReLU, MaxPool2d, Pad,
                     ReLU, Sigmoid, Softmax, Upsample)
from .network import Network, NetworkBuilder, Node
from .options import METHODS, ConversionOptions
from .passes import commute_maxpool_activation, fold_batchnorm
from .result import ResultDifference, SimResult, compare, difference, results_equal
from .result_merge import merge
from .simulation_options import SimulationOptions
from .spiking import NeuronSpec, SpikingNetwork

#: Public names whose modules load the engines: name -> (module, attribute or None for the
#: module itself).
_LAZY = {"simulate": ("evsim.simulate", "simulate"),
         "compare_methods": ("evsim.comparison", "compare_methods"),
         "Comparison": ("evsim.comparison", "Comparison"),
         "tune": ("evsim.tune", None)}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'evsim' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """evsim's module type. Loading the submodule ``evsim.simulate`` makes Python bind it as
    the package's attribute ``simulate``, which is the function of that name: bind the
    function instead (the eager import this replaces did the same)."""

    def __setattr__(self, name: str, value) -> None:
        if (isinstance(value, types.ModuleType) and name in _LAZY
                and value.__name__ == f"{__name__}.{name}" and _LAZY[name][1] == name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "__version__", "data", "layers", "models", "tune", "convert", "ConversionOptions", "METHODS",
    "simulate", "SimulationOptions", "SimResult", "difference", "ResultDifference",
    "results_equal", "merge",
    "compare_methods", "Comparison", "compare",
    "EvsimError", "EvsimValueError", "EvsimTypeError", "EvsimFileError", "ConversionError",
    "InsufficientMemoryError", "UnscaledInputWarning",
    "forward", "load", "save", "Network", "NetworkBuilder", "Node",
    "NeuronSpec", "SpikingNetwork", "fold_batchnorm", "commute_maxpool_activation",
    "Input", "Dense", "Conv2d", "AvgPool2d", "MaxPool2d", "GlobalAvgPool", "Flatten", "Add",
    "BatchNorm", "ReLU", "Clip", "QCFS",
    "Concat", "Pad", "Upsample", "ConvTranspose2d", "LeakyReLU", "Identity", "Sigmoid", "Softmax",
]
