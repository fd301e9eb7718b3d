"""Every check evsim makes of what it was given raises an EvsimError, so `except EvsimError`
catches them all and the CLI reports them as user errors (exit 2), not internal ones."""

import ast
from pathlib import Path

import numpy as np
import pytest

import evsim
from evsim.errors import EvsimError

PACKAGE = Path(evsim.__file__).parent
# Lookups by key follow the Mapping protocol (KeyError); the atomic-rename fallbacks are
# internal signals caught where they are raised; a module's __getattr__ (PEP 562) must raise
# AttributeError for a name it does not have.
BUILTIN = {"ValueError", "TypeError", "IndexError", "AttributeError", "RuntimeError"}


def _builtin_raises(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(), str(path))
    protocol = {id(node) for f in tree.body if isinstance(f, ast.FunctionDef)
                and f.name == "__getattr__" for node in ast.walk(f)}
    for node in ast.walk(tree):
        if id(node) in protocol:
            continue
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            if isinstance(func, ast.Name) and func.id in BUILTIN:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {func.id}")
    return found


def test_no_module_raises_a_bare_builtin_error_for_bad_input():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if path.name != "atomic.py"
             for hit in _builtin_raises(path)]
    assert not found, "raise EvsimValueError / EvsimTypeError instead:\n" + "\n".join(found)


@pytest.mark.parametrize("call", [
    lambda snn, x: evsim.simulate(snn, x, T=4, engine="warp"),
    lambda snn, x: evsim.simulate(snn, x, T=4, encoding="morse"),
    lambda snn, x: evsim.simulate(snn, x, T=4, dtype=np.int8),
    lambda snn, x: evsim.simulate(snn, x, T=4, record=["no_such_layer"]),
], ids=["engine", "encoding", "dtype", "record"])
def test_bad_simulation_arguments_are_evsim_errors(call):
    net = evsim.NetworkBuilder((4,))
    net.add_layer(evsim.Dense(np.eye(3, 4, dtype=np.float32)), name="fc")
    net.add_layer(evsim.ReLU(), name="relu")
    net.add_layer(evsim.Dense(np.eye(2, 3, dtype=np.float32)), name="out")
    snn = evsim.convert(net.build(), np.full((2, 4), 0.5, np.float32), method="max")
    with pytest.raises(EvsimError):
        call(snn, np.full((1, 4), 0.5, np.float32))
