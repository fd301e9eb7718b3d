"""The error every importer raises for a model evsim cannot represent.

Each frontend raises its own subclass (``UnsupportedOperatorError`` for
ONNX, ``UnsupportedModuleError`` for PyTorch, ``NIRImportError`` for NIR),
whose message names the operator, module or node; catching
:class:`UnsupportedModelError` handles all of them.
"""

from ..errors import EvsimError


class UnsupportedModelError(EvsimError, ValueError):
    """The model holds something evsim cannot represent; the message names it and says
    what to do."""


__all__ = ["UnsupportedModelError"]
