"""Tests for evsim.data: IDX reader, Fashion-MNIST search order, CIFAR-10, bundled sample."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from evsim.data import (
    CLASS_NAMES,
    find_fashion_mnist,
    load_bundled_sample,
    load_cifar10,
    load_fashion_mnist,
    read_idx,
)
from evsim.data import fashion_mnist

_IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}
_DEBIAN_HAS_DATA = all(
    (fashion_mnist.DEBIAN_DIR / f"{name}.gz").is_file()
    for pair in fashion_mnist._SPLIT_FILES.values()
    for name in pair
)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as IDX, independently of the reader under test."""
    header = bytes([0, 0, _IDX_CODES[array.dtype], array.ndim])
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_fake_fashion(directory: Path, split: str, n: int, label: int, gz: bool = True) -> None:
    """Write a tiny Fashion-MNIST split whose labels are all ``label``."""
    directory.mkdir(parents=True, exist_ok=True)
    images_name, labels_name = fashion_mnist._SPLIT_FILES[split]
    suffix = ".gz" if gz else ""
    images = np.arange(n * 28 * 28, dtype=np.int64).reshape(n, 28, 28) % 256
    write_idx(directory / f"{images_name}{suffix}", images.astype(np.uint8), gz)
    write_idx(directory / f"{labels_name}{suffix}", np.full(n, label, np.uint8), gz)


# ---------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype", list(_IDX_CODES), ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5)], ids=["1d", "3d"])
def test_idx_round_trip(tmp_path, gz, dtype, shape):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if dtype.kind in "iu" else None
    if info is not None:
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        array = rng.standard_normal(shape).astype(dtype)
    # No ".gz" suffix: gzip must be detected from the content, not the name.
    out = read_idx(write_idx(tmp_path / "array.idx", array, gz))
    assert out.dtype == dtype
    assert out.dtype.isnative
    assert out.shape == shape
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


def test_idx_dims_above_255(tmp_path):
    # Dims are big-endian uint32; a size of 300 spans two bytes.
    array = np.zeros((300, 2), np.uint8)
    array[299, 1] = 7
    out = read_idx(write_idx(tmp_path / "big", array))
    assert out.shape == (300, 2)
    assert out[299, 1] == 7


def _corrupt_cases() -> dict[str, bytes]:
    good = idx_bytes(np.arange(12, dtype=np.int16).reshape(3, 4))
    return {
        "truncated_payload": good[:-3],
        "trailing_bytes": good + b"\x00\x00",
        "bad_magic": b"\x01" + good[1:],
        "bad_dtype_code": good[:2] + b"\x0a" + good[3:],
        "truncated_header": good[:9],
        "too_short": good[:3],
        "zero_dims": b"\x00\x00\x08\x00",
        "empty": b"",
    }


@pytest.mark.parametrize("case", list(_corrupt_cases()))
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_corrupt_raises_valueerror_naming_file(tmp_path, case, gz):
    data = _corrupt_cases()[case]
    path = tmp_path / f"broken-{case}.idx"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=f"broken-{case}"):
        read_idx(path)


def test_idx_truncated_gzip_stream_raises_valueerror(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="cut.idx.gz"):
        read_idx(path)


def test_idx_missing_file_raises_filenotfound(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


# ---------------------------------------------------------------- Fashion-MNIST


@pytest.fixture
def no_default_locations(monkeypatch, tmp_path):
    """Point the Debian location at an empty directory and unset EVSIM_DATA."""
    empty = tmp_path / "debian-empty"
    empty.mkdir()
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", empty)
    monkeypatch.delenv(fashion_mnist.ENV_VAR, raising=False)
    return empty


def test_class_names():
    assert len(CLASS_NAMES) == 10
    assert CLASS_NAMES[0] == "T-shirt/top"
    assert CLASS_NAMES[9] == "Ankle boot"
    assert len(set(CLASS_NAMES)) == 10


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_load_fashion_from_path(tmp_path, no_default_locations, gz):
    write_fake_fashion(tmp_path / "fm", "test", n=5, label=3, gz=gz)
    images, labels = load_fashion_mnist("test", path=tmp_path / "fm")
    assert images.shape == (5, 1, 28, 28)
    assert images.dtype == np.float32
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, 3)
    assert images.min() == 0.0 and images.max() == 1.0
    expected = (np.arange(5 * 784).reshape(5, 28, 28) % 256) / np.float32(255)
    np.testing.assert_allclose(images[:, 0], expected, rtol=0, atol=1e-7)


def test_limit(tmp_path, no_default_locations):
    write_fake_fashion(tmp_path, "test", n=5, label=1)
    images, labels = load_fashion_mnist("test", path=tmp_path, limit=2)
    assert images.shape == (2, 1, 28, 28) and labels.shape == (2,)
    images, _ = load_fashion_mnist("test", path=tmp_path, limit=100)
    assert len(images) == 5
    images, labels = load_fashion_mnist("test", path=tmp_path, limit=0)
    assert images.shape == (0, 1, 28, 28) and labels.shape == (0,)


def test_bad_limit_rejected(tmp_path, no_default_locations):
    write_fake_fashion(tmp_path, "test", n=2, label=1)
    with pytest.raises(ValueError, match="limit"):
        load_fashion_mnist("test", path=tmp_path, limit=-1)
    for bad in (2.5, True, "3"):
        with pytest.raises(TypeError, match="limit"):
            load_fashion_mnist("test", path=tmp_path, limit=bad)


@pytest.mark.parametrize("split", ["val", "TEST", "t10k", ""])
def test_bad_split_rejected(split):
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist(split)


def test_explicit_path_beats_evsim_data(tmp_path, no_default_locations, monkeypatch):
    write_fake_fashion(tmp_path / "explicit", "test", n=2, label=4)
    write_fake_fashion(tmp_path / "env", "test", n=3, label=7)
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "env"))

    _, labels = load_fashion_mnist("test", path=tmp_path / "explicit")
    np.testing.assert_array_equal(labels, [4, 4])
    _, labels = load_fashion_mnist("test")
    np.testing.assert_array_equal(labels, [7, 7, 7])


def test_evsim_data_subdirectory_and_debian_fallback(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    write_fake_fashion(debian, "test", n=1, label=9)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", debian)
    monkeypatch.delenv(fashion_mnist.ENV_VAR, raising=False)
    _, labels = load_fashion_mnist("test")
    np.testing.assert_array_equal(labels, [9])

    write_fake_fashion(tmp_path / "env" / "fashion-mnist", "test", n=2, label=5)
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "env"))
    _, labels = load_fashion_mnist("test")
    np.testing.assert_array_equal(labels, [5, 5])
    assert find_fashion_mnist(split="test") == tmp_path / "env" / "fashion-mnist"


def test_find_requires_all_files_without_split(tmp_path, no_default_locations):
    write_fake_fashion(tmp_path, "test", n=1, label=0)
    assert find_fashion_mnist(tmp_path, split="test") == tmp_path
    assert find_fashion_mnist(tmp_path, split="train") is None
    assert find_fashion_mnist(tmp_path) is None
    write_fake_fashion(tmp_path, "train", n=1, label=0)
    assert find_fashion_mnist(tmp_path) == tmp_path


def test_missing_everywhere_lists_all_places(tmp_path, no_default_locations, monkeypatch):
    env_dir = tmp_path / "envdir"
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(env_dir))
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist("train")
    message = str(info.value)
    for place in (env_dir, env_dir / "fashion-mnist", no_default_locations):
        assert str(place) in message
    assert "train-images-idx3-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "EVSIM_DATA" in message and "path=" in message
    assert find_fashion_mnist() is None


def test_explicit_path_is_the_only_place_looked(tmp_path, monkeypatch):
    write_fake_fashion(tmp_path / "env", "test", n=2, label=4)
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "env"))
    explicit = tmp_path / "typo"
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist("test", path=explicit)
    assert str(explicit) in str(info.value)
    assert str(tmp_path / "env") not in str(info.value)


def test_mismatched_counts_raise(tmp_path, no_default_locations):
    write_fake_fashion(tmp_path, "test", n=3, label=0, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist("test", path=tmp_path)


def test_wrong_image_shape_raises(tmp_path, no_default_locations):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 32, 32), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
        load_fashion_mnist("test", path=tmp_path)


def test_label_out_of_range_raises(tmp_path, no_default_locations):
    write_fake_fashion(tmp_path, "test", n=2, label=10, gz=False)
    with pytest.raises(ValueError, match="out of range"):
        load_fashion_mnist("test", path=tmp_path)


@pytest.mark.skipif(not _DEBIAN_HAS_DATA, reason="Debian dataset-fashion-mnist not installed")
def test_debian_files_load():
    images, labels = load_fashion_mnist("test", limit=100)
    assert images.shape == (100, 1, 28, 28)
    # Known first labels of the official test set: ankle boot, pullover, trouser x2, shirt.
    np.testing.assert_array_equal(labels[:5], [9, 2, 1, 1, 6])


# ---------------------------------------------------------------- CIFAR-10


def write_fake_cifar(directory: Path, names: list[str], n: int, first_label: int = 0) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        data = np.full((n, 3072), 10 * i, np.uint8)
        data[:, 1024:2048] = 255  # green plane
        batch = {
            b"batch_label": name.encode(),
            b"labels": [(first_label + i) % 10] * n,
            b"data": data,
            b"filenames": [f"{name}_{k}.png".encode() for k in range(n)],
        }
        with (directory / name).open("wb") as f:
            pickle.dump(batch, f)


_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def test_cifar_test_split(tmp_path):
    write_fake_cifar(tmp_path, ["test_batch"], n=4, first_label=6)
    images, labels = load_cifar10(tmp_path)
    assert images.shape == (4, 3, 32, 32)
    assert images.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [6, 6, 6, 6])
    # Rows are stored as R plane, G plane, B plane.
    assert np.all(images[:, 0] == 0.0)
    assert np.all(images[:, 1] == 1.0)
    assert np.all(images[:, 2] == 0.0)


def test_cifar_train_split_from_parent_dir_with_limit(tmp_path):
    write_fake_cifar(tmp_path / "cifar-10-batches-py", _TRAIN_BATCHES, n=3)
    images, labels = load_cifar10(tmp_path, split="train")
    assert images.shape == (15, 3, 32, 32)
    np.testing.assert_array_equal(labels, np.repeat([0, 1, 2, 3, 4], 3))
    np.testing.assert_allclose(images[-1, 0], 40 / 255, rtol=1e-6)

    images, labels = load_cifar10(tmp_path, split="train", limit=4)
    assert images.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1])
    images, labels = load_cifar10(tmp_path, split="train", limit=0)
    assert images.shape == (0, 3, 32, 32) and labels.shape == (0,)


def test_cifar_limit_does_not_read_later_batches(tmp_path):
    write_fake_cifar(tmp_path, _TRAIN_BATCHES, n=3)
    (tmp_path / "data_batch_5").write_bytes(b"not a pickle")
    _, labels = load_cifar10(tmp_path, split="train", limit=12)
    assert len(labels) == 12
    with pytest.raises(ValueError, match="data_batch_5"):
        load_cifar10(tmp_path, split="train")


def test_cifar_missing_files(tmp_path):
    write_fake_cifar(tmp_path, _TRAIN_BATCHES[:4], n=1)
    with pytest.raises(FileNotFoundError, match="data_batch_5") as info:
        load_cifar10(tmp_path, split="train")
    assert "cifar-10-batches-py" in str(info.value)
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(tmp_path, split="test")


def test_cifar_missing_key(tmp_path):
    with (tmp_path / "test_batch").open("wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [0]}, f)
    with pytest.raises(ValueError, match=r"test_batch.*labels"):
        load_cifar10(tmp_path)


def test_cifar_wrong_data_shape(tmp_path):
    with (tmp_path / "test_batch").open("wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar10(tmp_path)


def test_cifar_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_cifar10(tmp_path, split="valid")


# ---------------------------------------------------------------- bundled sample


@pytest.mark.parametrize("split", ["test", "train"])
def test_bundled_sample(split):
    images, labels = load_bundled_sample(split)
    assert images.shape == (1000, 1, 28, 28)
    assert images.dtype == np.float32
    assert labels.shape == (1000,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.min() >= 0 and labels.max() <= 9
    # Real Fashion-MNIST is roughly balanced: every class is present in 1000 images.
    assert set(np.unique(labels)) == set(range(10))
    # Pixels are k/255 for integer k, i.e. they came from uint8 data.
    np.testing.assert_array_equal(np.rint(images * 255) / np.float32(255), images)


def test_bundled_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_bundled_sample("validation")


def test_bundled_file_loads_without_pickle():
    path = Path(fashion_mnist.__file__).with_name("fashion_mnist_sample.npz")
    assert path.stat().st_size < 1.5e6
    with np.load(path, allow_pickle=False) as sample:
        assert sample["test_images"].dtype == np.uint8
        assert int(sample["test_start"]) == 0
        assert int(sample["train_start"]) == 59_000


@pytest.mark.skipif(not _DEBIAN_HAS_DATA, reason="Debian dataset-fashion-mnist not installed")
def test_bundled_matches_debian_files():
    debian = fashion_mnist.DEBIAN_DIR
    test_images, test_labels = load_bundled_sample("test")
    ref_images = read_idx(debian / "t10k-images-idx3-ubyte.gz")[:1000]
    ref_labels = read_idx(debian / "t10k-labels-idx1-ubyte.gz")[:1000]
    np.testing.assert_array_equal(np.rint(test_images[:, 0] * 255).astype(np.uint8), ref_images)
    np.testing.assert_array_equal(test_labels, ref_labels)

    train_images, train_labels = load_bundled_sample("train")
    ref_images = read_idx(debian / "train-images-idx3-ubyte.gz")[59_000:]
    ref_labels = read_idx(debian / "train-labels-idx1-ubyte.gz")[59_000:]
    np.testing.assert_array_equal(np.rint(train_images[:, 0] * 255).astype(np.uint8), ref_images)
    np.testing.assert_array_equal(train_labels, ref_labels)
