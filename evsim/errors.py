"""The exceptions and warnings evsim raises, under one base: :class:`EvsimError`.

Catch :class:`EvsimError` to handle every problem evsim detects in what it was
given (a file, a model, images, an argument). Each class also subclasses the
built-in exception callers caught before it existed (``ValueError``,
``TypeError`` or ``MemoryError``), so ``except ValueError`` keeps working.
Anything else escaping evsim is a bug in evsim.

=============================  =====================================================
class                          raised for
=============================  =====================================================
:class:`EvsimFileError`        a file that cannot be read or written; names the file
:class:`EvsimValueError`       a bad value: NaN images, labels out of range, T < 1
:class:`EvsimTypeError`        a value of the wrong type: ``T=2.5``, an SNN to ``forward``
:class:`ConversionError`       a network that cannot be converted or simulated as wired
:class:`InsufficientMemoryError`  a run that would need more memory than the machine has
``UnsupportedModelError``      (:mod:`evsim.io`) a model an importer cannot represent
``GraphError``, ``ShapeError``  a malformed graph or incompatible layer shapes
``OptionError``                (:mod:`evsim.options`) a conversion option out of range
``MissingExtraError``          (:mod:`evsim.extras`) an optional package not installed
=============================  =====================================================
"""

from __future__ import annotations

import os


class EvsimError(Exception):
    """Base of every error evsim raises for bad input; the message says what to do."""


class EvsimValueError(EvsimError, ValueError):
    """An argument or data value evsim cannot use (the message names it)."""


class EvsimTypeError(EvsimError, TypeError):
    """An argument of the wrong type (the message names it and the type expected)."""


class ConversionError(EvsimError, ValueError):
    """The spiking network cannot be simulated as wired; the message names the layer."""


class EvsimFileError(EvsimError, ValueError):
    """A file evsim cannot read or write; ``path`` is the file, and the message starts with it."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        return type(self), (self.path, self.problem)


class InsufficientMemoryError(EvsimError, MemoryError):
    """A computation would need more memory than is available; the message gives the estimate.

    ``needed`` and ``available`` are in bytes.
    """

    def __init__(self, message: str, needed: int, available: int):
        self.needed, self.available = needed, available
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.args[0], self.needed, self.available)


class ClipBoundWarning(UserWarning):
    """A conversion lets values pass a Clip/QCFS activation's trained bound (the message names
    the layer and what to change)."""


class UnscaledInputWarning(UserWarning):
    """Images look unscaled (raw 8-bit pixels, or values above 1 with analog input).

    Silence it, for a network trained on such inputs, with
    ``warnings.filterwarnings("ignore", category=evsim.UnscaledInputWarning)`` (the ``evsim``
    command: ``--unscaled-ok``). ``problem`` is the message without that advice.
    """

    #: How the message says to silence it (the command says its flag instead).
    SILENCE = "warnings.filterwarnings('ignore', category=evsim.UnscaledInputWarning)"

    def __init__(self, problem: str, silence: str = SILENCE):
        super().__init__(f"{problem}; if it was trained on such values, silence this warning "
                         f"with {silence}")
        self.problem, self.silence = problem, silence

    def __reduce__(self):  # pickled (a Dask worker's warning) as made, not re-advised
        return type(self), (self.problem, self.silence)


__all__ = ["EvsimError", "EvsimValueError", "EvsimTypeError", "ConversionError",
           "EvsimFileError", "InsufficientMemoryError", "UnscaledInputWarning",
           "ClipBoundWarning"]
