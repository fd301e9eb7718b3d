"""A small ONNX classifier (Conv 3×3 → ReLU → Flatten → Gemm on 1×28×28 images), for tests
that need a user's own model file."""

from pathlib import Path

import numpy as np
import pytest


def save_tiny_onnx(path: Path) -> None:
    """Write the model to ``path``; skips the test where the onnx package is missing."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.1, (10, 4 * 28 * 28)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("Flatten", ["r"], ["f"]),
         helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1)], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
