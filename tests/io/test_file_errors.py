"""Every failure while reading a file is an evsim error that names the file."""

import re

import numpy as np
import pytest
from corrupt import NPZ_DAMAGE, ONNX_DAMAGE, evsim_npz_with, npy_bytes, zip_bytes

import evsim
from evsim import EvsimError, EvsimFileError
from evsim.io import UnsupportedModelError
from evsim.models import load_model


def _expect_file_error(path, match: str = ""):
    with pytest.raises(EvsimFileError, match=re.escape(str(path)) + ".*" + match) as info:
        evsim.load(path)
    assert info.value.path == str(path)
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working
    return info.value


def test_the_hierarchy_keeps_the_builtin_bases():
    assert issubclass(evsim.ConversionError, EvsimError)
    assert issubclass(evsim.ConversionError, ValueError)
    assert evsim.signals.ConversionError is evsim.ConversionError
    assert issubclass(UnsupportedModelError, EvsimError)
    assert issubclass(evsim.EvsimTypeError, TypeError)
    assert issubclass(evsim.InsufficientMemoryError, MemoryError)
    assert issubclass(evsim.network.GraphError, EvsimError)
    assert issubclass(evsim.layers.ShapeError, EvsimError)


@pytest.mark.parametrize("damage", sorted(NPZ_DAMAGE))
def test_damaged_npz_container(tmp_path, damage):
    path = tmp_path / "damaged.npz"
    path.write_bytes(NPZ_DAMAGE[damage]())
    error = _expect_file_error(path, "not a readable evsim .npz file")
    assert error.__cause__ is not None  # the parser's own exception is kept for debugging


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    ann = load_model()
    evsim.save(ann, root / "ann.npz")
    evsim.save(evsim.convert(ann, np.random.default_rng(0).random((8, 1, 28, 28))),
               root / "snn.npz")
    return root


def _drop_bn_beta(header):
    node = next(n for n in header["graph"]["nodes"] if n["kind"] == "batchnorm")
    node["arrays"].remove("beta")


HEADER_DAMAGE = {
    "AttributeError": ("snn.npz", lambda h: h.update(neurons="relu1")),
    "TypeError": ("ann.npz", _drop_bn_beta),
    "TypeError-version": ("ann.npz", lambda h: h.update(version=None)),
    "KeyError": ("snn.npz", lambda h: h.pop("max_pool")),
    "IndexError": ("ann.npz", lambda h: h["graph"].update(nodes=[])),
}


@pytest.mark.parametrize("damage", sorted(HEADER_DAMAGE))
def test_damaged_evsim_header(tmp_path, saved, damage):
    source, edit = HEADER_DAMAGE[damage]
    path = tmp_path / source
    path.write_bytes(evsim_npz_with(saved / source, edit))
    _expect_file_error(path)


def test_missing_foreign_and_folder_paths(tmp_path):
    _expect_file_error(tmp_path / "absent.npz", "no such file")
    (tmp_path / "folder.npz").mkdir()
    _expect_file_error(tmp_path / "folder.npz", "is a folder")
    (tmp_path / "other.npz").write_bytes(zip_bytes({"x.npy": b""}))
    _expect_file_error(tmp_path / "other.npz")
    (tmp_path / "model.h5").write_bytes(b"")
    _expect_file_error(tmp_path / "model.h5", r"unknown file type '\.h5'")


@pytest.mark.parametrize("damage", sorted(ONNX_DAMAGE))
def test_damaged_onnx(tmp_path, damage):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "model.onnx"
    onnx.save(ONNX_DAMAGE[damage](), str(path))
    with pytest.raises(EvsimError, match=re.escape(str(path))):
        evsim.load(path)


def test_missing_external_data_says_so(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "model.onnx"
    onnx.save(ONNX_DAMAGE["ValidationError-external-data"](), str(path))
    _expect_file_error(path, "external tensor data cannot be read")


def test_unsupported_operator_in_a_file_names_the_file_and_keeps_its_class(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import helper
    path = tmp_path / "tanh.onnx"
    onnx.save(helper.make_model(helper.make_graph(
        [helper.make_node("Tanh", ["x"], ["y"], name="squash")], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])]),
        opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(evsim.io.UnsupportedOperatorError,
                       match=re.escape(str(path)) + r": ONNX node 0 'squash' \(Tanh\)"):
        evsim.load(path)


@pytest.mark.parametrize("name", ["model.pt", "model.PTH", "weights.ckpt"])
def test_a_pytorch_file_points_to_the_pytorch_importer(tmp_path, name):
    (tmp_path / name).write_bytes(b"not read")
    error = _expect_file_error(tmp_path / name, "PyTorch")
    assert "evsim.io.from_torch" in str(error) and "torch.load" in str(error)


def test_a_nir_file_points_to_load_nir(tmp_path):
    (tmp_path / "model.nir").write_bytes(b"not read")
    assert "evsim.io.load_nir" in str(_expect_file_error(tmp_path / "model.nir"))


@pytest.mark.parametrize("name", ["", "sub/", ".npz"])
def test_saving_without_a_file_name_is_refused(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EvsimFileError, match="has no file name"):
        evsim.save(load_model(), name)
    assert list(tmp_path.iterdir()) == []


def _deflated_zeros_npy(shape, dtype="<f4") -> bytes:
    """The .npy header of an array of zeros declaring ``shape`` (its data follows)."""
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    return npy_bytes(header, b"")


def _zip_bomb(path, members: dict[str, tuple], extra: dict[str, bytes] = ()) -> None:
    """Write an .npz whose members are zeros of the given shapes, deflated chunk by chunk
    (a zip bomb: hundreds of kB that decompress to hundreds of MB), and ``extra`` members."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, shape in members.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as stream:
                stream.write(_deflated_zeros_npy(shape))
                left = int(np.prod(shape)) * 4
                chunk = bytes(1 << 24)
                while left:
                    stream.write(chunk[:min(left, len(chunk))])
                    left -= min(left, len(chunk))
        for name, data in dict(extra).items():
            archive.writestr(name + ".npy", data)


def _peak_mb(function) -> float:
    import tracemalloc

    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 1e6


def test_a_zip_bomb_of_data_is_refused_before_it_is_decompressed(tmp_path, capsys):
    from evsim.cli import main

    evsim.save(load_model(), tmp_path / "ann.npz")
    bomb = tmp_path / "bomb.npz"
    _zip_bomb(bomb, {"images": (20_000, 3, 28, 28)})        # 188 MB declared, wrong shape
    assert bomb.stat().st_size < 2e6
    code = []
    peak = _peak_mb(lambda: code.append(main(["convert", str(tmp_path / "ann.npz"), str(bomb),
                                               "-o", str(tmp_path / "snn")])))
    assert code == [2] and peak < 50, peak
    assert "images have shape (20000, 3, 28, 28)" in capsys.readouterr().err
    _zip_bomb(bomb, {"images": (50_000, 1, 28, 28), "junk": (50_000, 1, 28, 28)})
    peak = _peak_mb(lambda: code.append(main(["convert", str(tmp_path / "ann.npz"), str(bomb),
                                               "-o", str(tmp_path / "snn"),
                                               "--calibration-images", "4"])))
    assert code[-1] == 0 and peak < 100, peak          # 4 images read; junk never decompressed


def test_a_result_whose_tables_declare_more_than_its_header_allows_is_refused(tmp_path):
    import zipfile

    result = evsim.simulate(evsim.convert(load_model(), np.zeros((2, 1, 28, 28), np.float32)),
                            np.zeros((2, 1, 28, 28), np.float32), T=2)
    evsim.save(result, tmp_path / "r.npz")
    name = next(iter(result.spike_counts))
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(tmp_path / "r.npz") as good:
        kept = {info.filename[:-4]: good.read(info) for info in good.infolist()
                if info.filename != f"spike_counts/{name}.npy"}
    _zip_bomb(bomb, {f"spike_counts/{name}": (20_000_000,)}, extra=kept)
    error = []
    peak = _peak_mb(lambda: error.append(pytest.raises(EvsimFileError, evsim.load, bomb)))
    assert peak < 50, peak
    assert f"array 'spike_counts/{name}' declares shape (20000000,)" in str(error[0].value)
