"""The synthetic attribute faces: determinism, shapes, balance, visible attributes, the cache."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from autograder.data import face_shapes, faces
from autograder.data.faces import ATTRIBUTES, derived_seeds, generate_faces, load_faces
from autograder.errors import KitError


def sha(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.shape, a.dtype)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def sample():
    """2,000 faces at 32x32: the size of the balance and visibility checks."""
    return generate_faces(2000, seed=2024, image_size=32)


def test_attribute_names_are_celebas():
    from autograder.data.celeba import CELEBA_ATTRIBUTES

    assert ATTRIBUTES == ("Smiling", "Eyeglasses", "Male", "Bald", "Wearing_Hat", "Blond_Hair", "Mustache", "Young")
    assert set(ATTRIBUTES) <= set(CELEBA_ATTRIBUTES)


def test_same_seed_same_bytes_different_seed_different():
    first = sha(*generate_faces(300, seed=5, image_size=32))
    assert sha(*generate_faces(300, seed=5, image_size=32)) == first
    assert sha(*generate_faces(300, seed=6, image_size=32)) != first


# sha256 of generate_faces(300, seed=0, image_size=32) (images, then attributes) per GENERATOR_VERSION.
GOLDEN = {1: "b53dff4d53483af3797e55de3af8a476a8ca7f9fdbec90e20012b14e7746b7d6"}


def test_the_bytes_of_this_generator_version_are_pinned(monkeypatch):
    monkeypatch.setattr(faces, "_WORKERS", 1)  # threads do not change the data
    x, a = generate_faces(300, seed=0, image_size=32)
    h = hashlib.sha256(np.ascontiguousarray(x).tobytes() + a.tobytes()).hexdigest()
    assert h == GOLDEN.get(faces.GENERATOR_VERSION), (
        "the drawing changed: bump GENERATOR_VERSION in autograder/data/faces.py (stale caches) "
        f"and add {faces.GENERATOR_VERSION + 1}: {h!r} to GOLDEN"
    )


def test_a_shorter_run_is_a_prefix_and_sizes_show_the_same_faces():
    x, a = generate_faces(300, seed=11, image_size=32)  # more than one block of 256
    x_short, a_short = generate_faces(40, seed=11, image_size=32)
    np.testing.assert_array_equal(x[:40], x_short)
    np.testing.assert_array_equal(a[:40], a_short)
    _, a64 = generate_faces(300, seed=11, image_size=64)
    np.testing.assert_array_equal(a, a64)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_drawing_only_where_shapes_can_reach_clips_nothing(monkeypatch, size):
    """Each layer paints a region of interest; painting the whole canvas must give the same image."""
    fast = generate_faces(256, seed=9, image_size=size)[0]
    full_region = face_shapes.Canvas.region
    monkeypatch.setattr(face_shapes.Canvas, "region", lambda self, *_: full_region(self, 0, 1, 0, 1))
    np.testing.assert_array_equal(generate_faces(256, seed=9, image_size=size)[0], fast)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_shapes_dtypes_and_ranges(size):
    x, a = generate_faces(10, seed=1, image_size=size)
    assert x.shape == (10, size, size, 3) and x.dtype == np.float32
    assert a.shape == (10, len(ATTRIBUTES)) and a.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.1
    assert set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_array_equal(faces.to_float(faces.to_uint8(x)), x)  # 8-bit levels, like photos
    x0, a0 = generate_faces(0, seed=1, image_size=size)
    assert x0.shape == (0, size, size, 3) and a0.shape == (0, 8)


def test_each_attribute_is_roughly_balanced_and_independent(sample):
    _, a = sample
    on = a.mean(0)
    assert ((on > 0.35) & (on < 0.65)).all(), dict(zip(ATTRIBUTES, on.round(3)))
    corr = np.corrcoef(a.T) - np.eye(len(ATTRIBUTES))
    assert np.abs(corr).max() < 0.1


def test_every_attribute_is_learnable_from_pixels(sample):
    """A ridge classifier on raw 32x32 pixels separates each attribute far above chance."""
    x, a = sample
    X = x.reshape(len(x), -1).astype(np.float64)
    X -= X[:1500].mean(0)
    train, test = slice(0, 1500), slice(1500, None)
    K = X[train] @ X[train].T
    alpha = np.linalg.solve(K + 10.0 * np.eye(1500), 2 * a[train] - 1)
    predicted = (X[test] @ (X[train].T @ alpha)) > 0
    accuracy = (predicted == (a[test] > 0.5)).mean(0)
    assert (accuracy > 0.9).all(), dict(zip(ATTRIBUTES, accuracy.round(3)))


# Where each local attribute is drawn (rows as fractions of the image height).
REGIONS = {
    "Wearing_Hat": (0.0, 0.4),
    "Bald": (0.18, 0.5),
    "Eyeglasses": (0.4, 0.7),
    "Mustache": (0.6, 0.75),
    "Smiling": (0.68, 0.86),
}


@pytest.mark.parametrize("name", list(REGIONS))
def test_mean_images_differ_where_the_attribute_is_drawn(sample, name):
    x, a = sample
    j = ATTRIBUTES.index(name)
    diff = np.abs(x[a[:, j] > 0].mean(0) - x[a[:, j] == 0].mean(0)).mean(axis=(1, 2))  # per row
    rows = np.arange(len(diff)) / len(diff)
    lo, hi = REGIONS[name]
    inside = (rows >= lo) & (rows < hi)
    assert lo <= rows[diff.argmax()] < hi
    assert diff[inside].mean() > 0.01 and diff[inside].mean() > 3 * diff[~inside].mean()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=-1, seed=0), "n=-1"),
        (dict(n=2.5, seed=0), "n must be an integer"),
        (dict(n=2, seed=-3), "seed=-3"),
        (dict(n=2, seed=0, image_size=8), "image_size=8 .* between 16 and 256"),
        (dict(n=2, seed=0, image_size=True), "image_size must be an integer"),
    ],
)
def test_bad_arguments_are_kit_errors(kwargs, match):
    n = kwargs.pop("n")
    with pytest.raises(KitError, match=match):
        generate_faces(n, **kwargs)


# ----------------------------------------------------------------------------- load_faces


def test_load_faces_is_a_fixed_split_from_derived_seeds(tmp_path):
    (x, a), (xt, at), names = load_faces(image_size=32, n_train=300, n_test=100, seed=3, cache_dir=tmp_path)
    assert names == ATTRIBUTES
    assert x.shape == (300, 32, 32, 3) and xt.shape == (100, 32, 32, 3) and a.shape == (300, 8)
    s_train, s_test = derived_seeds(3)
    assert s_train != s_test and derived_seeds(3) == (s_train, s_test) and derived_seeds(4) != (s_train, s_test)
    np.testing.assert_array_equal(x, generate_faces(300, seed=s_train, image_size=32)[0])
    np.testing.assert_array_equal(at, generate_faces(100, seed=s_test, image_size=32)[1])
    assert not np.array_equal(x[:100], xt), "train and test are different faces"


def test_a_cache_hit_returns_identical_arrays(tmp_path, monkeypatch):
    first = load_faces(image_size=16, n_train=50, n_test=20, seed=1, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and "size16" in files[0].name and "seed1" in files[0].name

    def boom(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(faces, "generate_faces", boom)
    again = load_faces(image_size=16, n_train=50, n_test=20, seed=1, cache_dir=tmp_path)
    for u, v in zip(first[0] + first[1], again[0] + again[1]):
        assert sha(u) == sha(v)
    with pytest.raises(AssertionError, match="cache should have answered"):
        load_faces(image_size=16, n_train=50, n_test=21, seed=1, cache_dir=tmp_path)  # another key


@pytest.mark.parametrize("damage", [b"", b"not a zip file", "truncate", "wrong shape"])
def test_a_corrupt_cache_file_is_regenerated(tmp_path, damage):
    good = load_faces(image_size=16, n_train=30, n_test=10, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "wrong shape":
        np.savez(path, x_train=np.zeros((2, 3), np.uint8), a_train=0, x_test=0, a_test=0)
    else:
        path.write_bytes(damage)
    again = load_faces(image_size=16, n_train=30, n_test=10, cache_dir=tmp_path)
    for u, v in zip(good[0] + good[1], again[0] + again[1]):
        np.testing.assert_array_equal(u, v)
    with np.load(path) as z:
        assert z["x_train"].shape == (30, 16, 16, 3), "the cache file was rewritten"


def test_default_cache_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODER_KIT_CACHE", str(tmp_path / "kit"))
    load_faces(image_size=16, n_train=5, n_test=5)
    assert len(list((tmp_path / "kit").glob("faces-generated-*.npz"))) == 1


def test_an_unwritable_cache_only_warns(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not write the face cache"):
        (x, _), _, _ = load_faces(image_size=16, n_train=5, n_test=5, cache_dir=blocker / "cache")
    assert x.shape == (5, 16, 16, 3)


def test_load_faces_argument_errors(tmp_path):
    with pytest.raises(KitError, match="unknown face source 'mnist'"):
        load_faces(source="mnist", cache_dir=tmp_path)
    with pytest.raises(KitError, match="n_train and n_test"):
        load_faces(n_train=None, cache_dir=tmp_path)
    with pytest.raises(KitError, match="n_test=-1"):
        load_faces(n_test=-1, cache_dir=tmp_path)
