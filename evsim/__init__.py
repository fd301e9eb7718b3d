"""evsim: convert trained ANNs into spiking networks and simulate them event by event.

Data flow: ``evsim.io`` (load/save, importers) -> :class:`Network` ->
:func:`convert` -> :class:`SpikingNetwork` -> :func:`simulate` -> :class:`SimResult`.
"""

__version__ = "0.1.0"

from . import data, layers, models, tune
from .comparison import Comparison, compare_methods
from .convert import convert
from .errors import (ConversionError, EvsimError, EvsimFileError, EvsimTypeError,
                     EvsimValueError, InsufficientMemoryError, UnscaledInputWarning)
from .forward import forward
from .io import load, save
from .layers import (QCFS, Add, AvgPool2d, BatchNorm, Clip, Conv2d, Dense, Flatten,
                     GlobalAvgPool, Input, MaxPool2d, ReLU)
from .network import Network, NetworkBuilder, Node
from .options import METHODS, ConversionOptions
from .passes import commute_maxpool_activation, fold_batchnorm
from .simulate import SimResult, compare, results_equal, simulate
from .simulate.merge import merge
from .spiking import NeuronSpec, SpikingNetwork

__all__ = [
    "__version__", "data", "layers", "models", "tune", "convert", "ConversionOptions", "METHODS",
    "simulate", "SimResult", "compare", "results_equal", "merge", "compare_methods",
    "Comparison",
    "EvsimError", "EvsimValueError", "EvsimTypeError", "EvsimFileError", "ConversionError",
    "InsufficientMemoryError", "UnscaledInputWarning",
    "forward", "load", "save", "Network", "NetworkBuilder", "Node",
    "NeuronSpec", "SpikingNetwork", "fold_batchnorm", "commute_maxpool_activation",
    "Input", "Dense", "Conv2d", "AvgPool2d", "MaxPool2d", "GlobalAvgPool", "Flatten", "Add",
    "BatchNorm", "ReLU", "Clip", "QCFS",
]
