"""evsim: convert trained ANNs into spiking networks and simulate them event by event.

Data flow: ``evsim.io`` (load/save, importers) -> :class:`Network` ->
:func:`convert` -> :class:`SpikingNetwork` -> :func:`simulate` -> :class:`SimResult`.

``import evsim`` loads nothing but the version: every public name is loaded when first
used (PEP 562), and the simulation engines (Numba) only when a simulation runs, so reading
a saved network or result stays light.
"""

import importlib
import importlib.util
import sys
import types

from ._version import __version__

_SOURCES = {
    "evsim.errors": ("ConversionError", "EvsimError", "EvsimFileError", "EvsimTypeError",
                     "EvsimValueError", "InsufficientMemoryError", "UnscaledInputWarning"),
    "evsim.layers": ("QCFS", "Add", "AvgPool2d", "BatchNorm", "Clip", "Concat", "Conv2d",
                     "ConvTranspose2d", "Dense", "Flatten", "GlobalAvgPool", "Identity", "Input",
                     "LeakyReLU", "MaxPool2d", "Pad", "ReLU", "Sigmoid", "Softmax", "Upsample"),
    "evsim.convert": ("convert",),
    "evsim.forward": ("forward",),
    "evsim.io": ("load", "save"),
    "evsim.network": ("Network", "NetworkBuilder", "Node"),
    "evsim.options": ("METHODS", "ConversionOptions"),
    "evsim.passes": ("commute_maxpool_activation", "fold_batchnorm"),
    "evsim.result": ("ResultDifference", "SimResult", "compare", "difference", "results_equal"),
    "evsim.result_merge": ("merge",),
    "evsim.simulation_options": ("SimulationOptions",),
    "evsim.spiking": ("NeuronSpec", "SpikingNetwork"),
    "evsim.simulate": ("simulate",),
    "evsim.comparison": ("compare_methods", "Comparison"),
}

#: Every public name -> (module, attribute or None for the module itself). Nothing is
#: imported until a name is first used (PEP 562), so ``import evsim`` costs milliseconds
#: and the ``evsim`` command can catch Ctrl-C while NumPy and Numba load.
_LAZY = {name: (module, name) for module, names in _SOURCES.items() for name in names}
_LAZY.update({name: (f"evsim.{name}", None) for name in ("data", "layers", "models", "tune")})


def __getattr__(name: str):
    if name not in _LAZY:
        if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'evsim' has no attribute {name!r}")
        return importlib.import_module(f"{__name__}.{name}")  # evsim.io, evsim.plot, ...
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """evsim's module type. Loading a submodule such as ``evsim.simulate`` makes Python bind
    it as the package's attribute ``simulate``, which is the public function of that name:
    bind the function instead."""

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
