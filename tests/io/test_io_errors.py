"""Every importer reports an unrepresentable model as evsim.io.UnsupportedModelError."""

import numpy as np
import pytest

from evsim.io import UnsupportedModelError


def test_onnx_unsupported_operator():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from evsim.io import load_onnx
    graph = helper.make_graph(
        [helper.make_node("Tanh", ["x"], ["y"], name="squash")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    with pytest.raises(UnsupportedModelError, match=r"'squash' \(Tanh\)"):
        load_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def test_torch_unsupported_module():
    torch = pytest.importorskip("torch")
    from evsim.io import from_torch
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh())
    with pytest.raises(UnsupportedModelError, match="Tanh"):
        from_torch(module, (4,))


def test_nir_leaky_neuron():
    nir = pytest.importorskip("nir")
    from evsim.io import from_nir
    ones = np.ones(2)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])),
                                "lif": nir.LIF(tau=ones, r=ones, v_leak=0 * ones,
                                               v_threshold=ones),
                                "output": nir.Output(output_type=np.array([2]))},
                         edges=[("input", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(UnsupportedModelError, match=r"'lif' \(LIF\)"):
        from_nir(graph)
