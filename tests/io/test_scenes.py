"""Fashion-MNIST scenes: the generator's rules, its determinism, the file and the bundled sample."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from evsim.data import (Scenes, bundled_scenes, fashion_mnist_scenes, find_fashion_mnist,
                        load_bundled_sample, load_scenes, make_scenes, save_scenes)
from evsim.data.scenes import ITEM_CUTOFF
from evsim.errors import EvsimFileError, EvsimValueError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def items():
    return load_bundled_sample("test")


@pytest.fixture(scope="module")
def scenes(items):
    return make_scenes(*items, 60, size=48, items=(1, 5), seed=3)


def _block(value, rows, columns):
    item = np.zeros((1, 28, 28), np.float32)
    item[0, rows, columns] = value
    return item


def test_a_single_item_by_hand():
    # On a 28 x 28 canvas the only position is (0, 0): the scene is the item's bright pixels.
    item = _block(0.5, slice(3, 9), slice(10, 20))
    item[0, 0, 0] = ITEM_CUTOFF  # not above the cutoff: transparent, not in the mask
    scenes = make_scenes(item[None], np.array([3]), 1, size=28, items=(1, 1))
    assert scenes.boxes[0].tolist() == [[10.0, 3.0, 20.0, 9.0]]
    assert scenes.box_labels[0].tolist() == [3] and scenes.item_sources[0].tolist() == [0]
    expected = np.zeros((28, 28), np.uint8)
    expected[3:9, 10:20] = 4
    np.testing.assert_array_equal(scenes.masks[0], expected)
    assert scenes.images[0, 0, 0, 0] == 0 and scenes.images[0, 0, 3, 10] == 0.5


def test_a_later_item_covering_too_much_is_dropped_and_a_partial_cover_is_kept():
    # On a 28 x 28 canvas every item sits at (0, 0), so the overlaps are known.
    big = _block(0.5, slice(0, 10), slice(0, 10))      # 100 pixels
    half = _block(0.9, slice(0, 10), slice(0, 5))      # covers 50 of them: 50 % stay visible
    most = _block(0.9, slice(0, 10), slice(0, 6))      # covers 60: it must be dropped
    kept = make_scenes(np.stack([big, half]), np.array([1, 2]), 30, size=28, items=(2, 2),
                       seed=0, min_visible=0.5, tries=1)
    big_then_half = [i for i in range(30) if kept.item_sources[i].tolist() == [0, 1]]
    assert big_then_half
    for i in big_then_half:
        assert kept.boxes[i].tolist() == [[5, 0, 10, 10], [0, 0, 5, 10]]
        assert (kept.masks[i, :10, :5] == 3).all() and (kept.masks[i, :10, 5:10] == 2).all()
    dropped = make_scenes(np.stack([big, most]), np.array([1, 2]), 30, size=28, items=(2, 2),
                          seed=0, min_visible=0.5, tries=1)
    # whichever comes first, the second hides >= 60 % of it, so only one item stays
    assert all(len(b) == 1 for b in dropped.boxes)
    firsts = {int(s[0]) for s in dropped.item_sources}
    assert firsts == {0, 1}
    for i in range(30):
        if dropped.item_sources[i][0] == 0:
            assert dropped.boxes[i].tolist() == [[0, 0, 10, 10]]


def test_the_same_seed_gives_the_same_scenes_and_another_seed_others(items, scenes):
    again = make_scenes(*items, 60, size=48, items=(1, 5), seed=3)
    other = make_scenes(*items, 60, size=48, items=(1, 5), seed=4)
    np.testing.assert_array_equal(again.images, scenes.images)
    np.testing.assert_array_equal(again.masks, scenes.masks)
    for a, b in zip(again.boxes, scenes.boxes):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(other.masks, scenes.masks)


def test_masks_agree_with_images_and_boxes(items, scenes):
    images, labels = items
    assert np.array_equal(scenes.masks > 0, scenes.images[:, 0] > 0)
    counts = [len(b) for b in scenes.boxes]
    assert min(counts) >= 1 and max(counts) <= 5 and len(set(counts)) > 1
    for i in range(len(scenes)):
        covered = np.zeros(scenes.size, bool)
        for box, label, source in zip(scenes.boxes[i], scenes.box_labels[i],
                                      scenes.item_sources[i]):
            assert label == labels[source]
            x0, y0, x1, y1 = box.astype(int)
            inside = scenes.masks[i, y0:y1, x0:x1] == label + 1
            # tight: each edge row and column of the box holds a pixel of its class
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() \
                and inside[:, -1].any()
            # at least half of the item's shape is visible inside its box
            shape_pixels = int((images[source, 0] > ITEM_CUTOFF).sum())
            assert inside.sum() >= 0.5 * shape_pixels
            covered[y0:y1, x0:x1] |= inside
        # every item pixel of the mask lies in a box of its class
        assert np.array_equal(covered, scenes.masks[i] > 0)


def test_save_and_load_give_the_scenes_back_exactly(tmp_path, scenes):
    path = save_scenes(tmp_path / "sub" / "scenes.npz", scenes)
    back = load_scenes(path)
    np.testing.assert_array_equal(back.images, scenes.images)
    np.testing.assert_array_equal(back.masks, scenes.masks)
    assert back.seed == 3 and back.source == scenes.source
    for name in ("boxes", "box_labels", "item_sources"):
        for a, b in zip(getattr(back, name), getattr(scenes, name)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert os.listdir(tmp_path / "sub") == ["scenes.npz"]  # no temporary file left behind
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(EvsimFileError, match="bad.npz"):
        load_scenes(tmp_path / "bad.npz")


def test_take_selects_scenes(scenes):
    picked = scenes.take([4, 1])
    assert len(picked) == 2 and np.array_equal(picked.masks[1], scenes.masks[1])
    assert picked.boxes[0] is scenes.boxes[4]


def test_invalid_scenes_are_refused(scenes):
    fields = dict(images=scenes.images[:2], masks=scenes.masks[:2], boxes=scenes.boxes[:2],
                  box_labels=scenes.box_labels[:2])
    Scenes(**fields)
    with pytest.raises(EvsimValueError, match="masks must be a uint8"):
        Scenes(**{**fields, "masks": fields["masks"].astype(np.int64)})
    with pytest.raises(EvsimValueError, match="boxes has 1 entries for 2 scenes"):
        Scenes(**{**fields, "boxes": fields["boxes"][:1]})
    wide = (np.array([[0, 0, 49, 5]], np.float32),) + fields["boxes"][1:]
    with pytest.raises(EvsimValueError, match=r"boxes\[0\] must satisfy"):
        Scenes(**{**fields, "boxes": wide, "box_labels": (np.array([1]),) +
                  fields["box_labels"][1:]})
    with pytest.raises(EvsimValueError, match="items must be"):
        make_scenes(*load_bundled_sample(), 1, items=(0, 2))


def test_the_bundled_sample_is_small_and_loads_without_the_data_set():
    path = ROOT / "evsim" / "data" / "scenes_sample.npz"
    assert path.stat().st_size < 1_000_000
    # a fresh interpreter where neither $EVSIM_DATA nor the Debian folder can be found
    code = ("import evsim.data.fashion_mnist as f, pathlib; f.DEBIAN_DIR = pathlib.Path('/no');"
            "from evsim.data import bundled_scenes; s = bundled_scenes();"
            "print(len(s), s.size, sum(len(b) for b in s.boxes))")
    env = {k: v for k, v in os.environ.items() if k != "EVSIM_DATA"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    assert out[:3] == ["300", "(64,", "64)"] and int(out[3]) >= 300


def test_the_missing_data_set_names_apt_get(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist_scenes("test", 5, path=tmp_path)


@pytest.mark.skipif(find_fashion_mnist(split="test") is None,
                    reason="needs the Fashion-MNIST test files (dataset-fashion-mnist)")
def test_the_bundled_sample_is_what_its_recipe_makes():
    sample = bundled_scenes()
    made = fashion_mnist_scenes("test", 300, size=64, items=(1, 4), seed=0)
    np.testing.assert_array_equal(sample.images, made.images)
    np.testing.assert_array_equal(sample.masks, made.masks)
    assert sample.source == "Fashion-MNIST test" and sample.seed == 0
    for a, b in zip(sample.item_sources, made.item_sources):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 31), size=st.integers(28, 48), hi=st.integers(1, 6),
       min_visible=st.floats(0, 1))
@example(seed=0, size=28, hi=4, min_visible=0.0)  # once hid an item completely
def test_the_rules_hold_for_random_items(seed, size, hi, min_visible):
    rng = np.random.default_rng(seed)
    # blobs of random extent and brightness, some pixels below the cutoff
    items = rng.uniform(0, 1, (8, 1, 28, 28)).astype(np.float32)
    for item in items:
        y0, x0 = rng.integers(0, 20, 2)
        item[0, :y0] = item[0, :, :x0] = 0
    items[:, 0, 0, 0] = 1.0  # every item has a pixel above the cutoff
    labels = rng.integers(0, 10, 8)
    scenes = make_scenes(items, labels, 4, size=size, items=(1, hi), seed=seed,
                         min_visible=min_visible)
    assert np.array_equal(scenes.masks > 0, scenes.images[:, 0] > 0)
    for i in range(4):
        assert 1 <= len(scenes.boxes[i]) <= hi
        covered = np.zeros((size, size), bool)
        for box, label, source in zip(scenes.boxes[i], scenes.box_labels[i],
                                      scenes.item_sources[i]):
            assert label == labels[source]
            x0, y0, x1, y1 = box.astype(int)
            inside = scenes.masks[i, y0:y1, x0:x1] == label + 1
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() \
                and inside[:, -1].any()
            assert inside.sum() >= min_visible * (items[source, 0] > ITEM_CUTOFF).sum()
            covered[y0:y1, x0:x1] |= inside
        assert np.array_equal(covered, scenes.masks[i] > 0)
