"""Damaged files for the file-error and fuzz tests, built byte by byte (no binary fixtures).

``NPZ_DAMAGE`` and ``ONNX_DAMAGE`` map a name to a function returning the
bytes of one damaged file; each is a case that made a parser raise something
other than an evsim error before evsim's readers were wrapped (the
exception is in the name). ``mutate`` and ``mutate_evsim_npz`` are the fuzzer's
byte-level and structure-aware mutations.
"""

from __future__ import annotations

import io
import json
import random
import struct
import zipfile

import numpy as np

GOOD_NPY_HEADER = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"


def npy_bytes(header: str, data: bytes = b"\0" * 12) -> bytes:
    """A version 1.0 ``.npy`` file with the given header text."""
    text = header.encode("latin1")
    text += b" " * (64 - (10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _patch_first_member(data: bytes, flags: int | None = None,
                        method: int | None = None) -> bytes:
    """Set the general-purpose flags or compression method of the first zip member."""
    data = bytearray(data)
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    if flags is not None:
        struct.pack_into("<H", data, local + 6, flags)
        struct.pack_into("<H", data, central + 8, flags)
    if method is not None:
        struct.pack_into("<H", data, local + 8, method)
        struct.pack_into("<H", data, central + 10, method)
    return bytes(data)


def _broken_deflate() -> bytes:
    data = bytearray(zip_bytes({"a.npy": npy_bytes(GOOD_NPY_HEADER, bytes(range(256)) * 8)},
                               zipfile.ZIP_DEFLATED))
    name_length, extra_length = struct.unpack_from("<HH", data, 26)
    body = 30 + name_length + extra_length
    data[body:body + 8] = b"\xff" * 8
    return bytes(data)


NPZ_DAMAGE = {
    "zlib.error": _broken_deflate,
    "TokenError": lambda: zip_bytes({"a.npy": npy_bytes(GOOD_NPY_HEADER[:-6] + "}")}),
    "SyntaxError": lambda: zip_bytes({"a.npy": npy_bytes(GOOD_NPY_HEADER + "\n  1\n 2")}),
    "NotImplementedError": lambda: _patch_first_member(
        zip_bytes({"a.npy": npy_bytes(GOOD_NPY_HEADER)}), method=99),
    "RuntimeError-encrypted": lambda: _patch_first_member(
        zip_bytes({"a.npy": npy_bytes(GOOD_NPY_HEADER)}), flags=1),
}


def evsim_npz_with(path, edit) -> bytes:
    """The evsim file at ``path`` with its JSON header passed through ``edit(header)``."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    header = json.loads(arrays["__evsim__"].tobytes())
    edit(header)
    arrays["__evsim__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def onnx_model(nodes=None, initializers=None):
    """A small valid ONNX CNN (Conv, Relu, Flatten, Gemm on 1x4x4 inputs), or given nodes."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if initializers is None:
        initializers = [
            numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "W"),
            numpy_helper.from_array(rng.standard_normal((3, 64)).astype(np.float32), "G")]
    nodes = nodes or [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                      helper.make_node("Relu", ["c"], ["r"], name="relu"),
                      helper.make_node("Flatten", ["r"], ["f"], axis=1, name="flat"),
                      helper.make_node("Gemm", ["f", "G"], ["y"], transB=1, name="fc")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _external_data_missing():
    from onnx import TensorProto

    model = onnx_model()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "missing.bin"
    return model


def _unknown_tensor_type():
    model = onnx_model()
    model.graph.initializer[0].data_type = 120
    return model


def _reshape_without_shape():
    from onnx import helper

    return onnx_model(nodes=[
        helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "G"], ["y"], transB=1, name="fc")])


def _attribute_of_wrong_type():
    from onnx import AttributeProto

    model = onnx_model()
    model.graph.node[2].attribute[0].type = AttributeProto.STRING
    return model


ONNX_DAMAGE = {
    "ValidationError-external-data": _external_data_missing,
    "KeyError": _unknown_tensor_type,
    "IndexError": _reshape_without_shape,
    "TypeError": _attribute_of_wrong_type,
}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One byte-level mutation: flip bytes, truncate, delete or insert a run."""
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:
        del data[rng.randrange(len(data)):]
    elif kind == 2:
        start = rng.randrange(len(data))
        del data[start:start + rng.randint(1, 64)]
    else:
        start = rng.randrange(len(data))
        data[start:start] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(data)


_ODD_VALUES = [None, 0, 1, -1, 10 ** 12, 2.5, float("inf"), "x", "", [], {}, [1, 2], True]
_ODD_DTYPES = ["int8", "uint64", "complex64", "bool", "U3", "float16", "datetime64[s]"]


def _mutate_json(obj, rng: random.Random) -> None:
    """Delete, replace or descend into one random entry of a JSON tree."""
    while isinstance(obj, (dict, list)) and obj:
        key = rng.choice(list(obj)) if isinstance(obj, dict) else rng.randrange(len(obj))
        roll = rng.random()
        if roll < 0.2:
            del obj[key]
            return
        if roll < 0.5:
            obj[key] = rng.choice(_ODD_VALUES)
            return
        obj = obj[key]


def mutate_evsim_npz(arrays: dict[str, np.ndarray], rng: random.Random) -> bytes:
    """A well-formed .npz whose evsim content is damaged: the JSON header or one array."""
    arrays = dict(arrays)
    header = json.loads(arrays["__evsim__"].tobytes())
    keys = [k for k in arrays if k != "__evsim__"]
    roll = rng.random()
    if roll < 0.6 or not keys:
        _mutate_json(header, rng)
    else:
        key = rng.choice(keys)
        value = arrays[key]
        if roll < 0.7:
            del arrays[key]
        elif roll < 0.85:
            with np.errstate(over="ignore", invalid="ignore"):
                arrays[key] = value.astype(rng.choice(_ODD_DTYPES))
        else:
            arrays[key] = value.reshape(-1)[:rng.randrange(value.size + 1)]
    arrays["__evsim__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def mutate_onnx(model, rng: random.Random) -> bytes:
    """An ONNX model with one node's attribute, type or input, or one initializer, damaged."""
    from onnx import TensorProto

    model = type(model).FromString(model.SerializeToString())
    node = model.graph.node[rng.randrange(len(model.graph.node))]
    roll = rng.random()
    if roll < 0.2 and node.attribute:
        del node.attribute[rng.randrange(len(node.attribute))]
    elif roll < 0.4 and node.attribute:
        node.attribute[rng.randrange(len(node.attribute))].type = rng.randrange(1, 15)
    elif roll < 0.55:
        node.op_type = rng.choice(["Relu", "Conv", "Gemm", "Add", "Reshape", "Clip", "Foo"])
    elif roll < 0.7 and node.input:
        node.input[rng.randrange(len(node.input))] = rng.choice(["x", "W", "G", "c", "?", ""])
    elif roll < 0.8:
        del node.input[rng.randrange(len(node.input) + 1):]
    else:
        tensor = model.graph.initializer[rng.randrange(len(model.graph.initializer))]
        if rng.random() < 0.5:
            tensor.data_type = rng.randrange(0, 200)
        else:
            tensor.data_location = TensorProto.EXTERNAL
            entry = tensor.external_data.add()
            entry.key, entry.value = "location", rng.choice(["missing.bin", "../x", ".", ""])
    return model.SerializeToString()
