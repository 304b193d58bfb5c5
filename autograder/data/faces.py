"""Synthetic faces with known binary attributes, and the one loader the course uses (`load_faces`).

    face_shapes.py   soft masks and the canvas
    face_drawing.py  what a face looks like: ATTRIBUTES, the random choices of a block, the renderer
    faces.py         generate_faces (blocks on threads), derived seeds, load_faces and its .npz cache

Speed: faces are drawn in blocks of 256 on two threads, each block in chunks that fit the CPU caches. Measured on
the 2-core development machine (numpy 2.4; other jobs were running): 20,000 faces at 64x64 in 3.7 to 5.2 s (3,900
to 5,300 images/s), 20,000 at 32x32 in about 1.5 s (12,600 to 13,500 images/s).

Determinism: faces are drawn in blocks of ``BLOCK``; block ``k`` takes all its random numbers from
``numpy.random.default_rng([seed, k])`` (parameters) and ``default_rng([seed, k, 1])`` (noise). So the same seed
gives the same bytes, ``generate_faces(m, seed=s)`` is a prefix of ``generate_faces(n, seed=s)`` for ``m < n``, and
the 32x32 and 64x64 versions of a seed show the same faces. Any change to the drawing (face_drawing.py,
face_shapes.py) or to the blocks here must bump ``GENERATOR_VERSION``: it is part of the cache key, and a test pins
the bytes of each version.

The cache: one .npz per set of arguments in the kit's data cache folder (`autograder.files.cache_dir`), written with
`autograder.files.atomic_path`, so two processes filling it at once both succeed and a reader never sees half a
file.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from autograder.errors import KitError
from autograder.files import atomic_path
from autograder.files import cache_dir as data_cache_dir

from .face_drawing import ATTRIBUTES, BLOCK, render, sample_block, take, to_float, to_uint8

__all__ = ["ATTRIBUTES", "GENERATOR_VERSION", "derived_seeds", "generate_faces", "load_faces", "to_float", "to_uint8"]

# Bump when the drawing changes: it is part of every cache key.
GENERATOR_VERSION = 1

_WORKERS = 2  # threads drawing blocks (does not change the data)
_MIN_SIZE, _MAX_SIZE = 16, 256
_F32 = np.float32


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise KitError(f"{name} must be an integer, got {value!r}; pass a whole number such as {lo}.")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise KitError(f"{name}={value} is out of range; pass a value {bound}.")
    return int(value)


def generate_faces(n: int, *, seed: int, image_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` synthetic faces.

    Returns ``(images, attributes)``: images float32 in [0, 1] with shape
    ``(n, image_size, image_size, 3)``; attributes float32 0/1 with shape
    ``(n, len(ATTRIBUTES))``, columns in the order of ``ATTRIBUTES``.
    The same ``seed`` gives the same bytes.
    """
    n = _check_int("n", n, 0)
    seed = _check_int("seed", seed, 0)
    S = _check_int("image_size", image_size, _MIN_SIZE, _MAX_SIZE)
    images = np.empty((n, S, S, 3), np.uint8)
    attrs = np.empty((n, len(ATTRIBUTES)), _F32)
    n_blocks = -(-n // BLOCK)

    def work(k: int) -> None:
        lo = k * BLOCK
        m = min(BLOCK, n - lo)
        params = sample_block(seed, k)
        attrs[lo : lo + m] = params["attrs"][:m]
        # uniform noise from raw bytes (fast); always a whole block, so prefixes agree
        raw = np.random.default_rng([seed, k, 1]).bytes(BLOCK * S * S * 3)
        noise = np.frombuffer(raw, np.int8, m * S * S * 3).reshape(m, S, S, 3)
        chunk = max(8, min(BLOCK, 131072 // (S * S)))
        for c0 in range(0, m, chunk):
            c1 = min(m, c0 + chunk)
            images[lo + c0 : lo + c1] = render(take(params, c0, c1), S, noise[c0:c1])

    workers = min(_WORKERS, os.cpu_count() or 1, max(n_blocks, 1))
    if workers <= 1:
        for k in range(n_blocks):
            work(k)
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for f in [pool.submit(work, k) for k in range(n_blocks)]:
                f.result()
    return to_float(images), attrs


def derived_seeds(seed: int) -> tuple[int, int]:
    """The (train, test) generator seeds that ``load_faces`` derives from ``seed``."""
    seed = _check_int("seed", seed, 0)
    train, test = (int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in (1, 2))
    return train, test


_KEYS = ("x_train", "a_train", "x_test", "a_test")


def _read_cache(path: Path, n_train: int | None, n_test: int | None, S: int) -> dict[str, np.ndarray] | None:
    """The arrays in a cache file, or None when it is missing, unreadable or inconsistent."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in _KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    for split, n in (("train", n_train), ("test", n_test)):
        x, a = raw["x_" + split], raw["a_" + split]
        if x.dtype != np.uint8 or a.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (S, S, 3):
            return None
        if a.shape != (len(x), len(ATTRIBUTES)) or (n is not None and len(x) != n) or a.max(initial=0) > 1:
            return None
    return {k: to_float(v) if k[0] == "x" else v.astype(_F32) for k, v in raw.items()}


def _cache_file(cache_dir: str | os.PathLike | None, key: str) -> Path | None:
    """Where the arrays of `key` are cached: in `cache_dir`, else the kit's data cache folder. None, with a warning,
    when that folder cannot be made (the data is then made and not kept)."""
    try:
        folder = data_cache_dir(Path(cache_dir).expanduser() if cache_dir is not None else None)
    except OSError as exc:
        warnings.warn(f"could not write the face cache ({exc}); the data will be made again next time", stacklevel=3)
        return None
    return folder / f"{key}.npz"


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays as 8-bit levels, atomically; a failure only warns."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                **{
                    k: to_uint8(v) if k[0] == "x" else v.astype(np.uint8)  # type: ignore[arg-type]
                    for k, v in arrays.items()
                },
            )  # (numpy's stub types **kwds as its own keywords)
    except OSError as exc:
        warnings.warn(
            f"could not write the face cache {path} ({exc}); the data will be made again next time", stacklevel=3
        )


def load_faces(
    *,
    source: str = "generated",
    image_size: int = 64,
    n_train: int | None = 20_000,
    n_test: int | None = 2_000,
    seed: int = 0,
    celeba_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
):
    """The face data of the CVAE assignment and its grader.

    Returns ``((x_train, a_train), (x_test, a_test), ATTRIBUTES)``: images float32 in
    [0, 1] of shape (n, image_size, image_size, 3), attributes float32 0/1 of shape
    (n, 8), columns in the order of the returned names.

    ``source="generated"`` draws synthetic faces: train with
    ``derived_seeds(seed)[0]``, test with ``derived_seeds(seed)[1]``.
    ``source="celeba"`` reads a local CelebA copy in ``celeba_dir`` (default: the
    ``CELEBA_DIR`` environment variable) with
    ``autograder.data.celeba.load_celeba``: its official split, or a fixed one without
    the partition file; ``seed`` does not matter there, and ``None`` counts mean all.

    Arrays are cached as .npz under ``cache_dir`` (default
    ``$AUTOENCODER_KIT_CACHE`` or ``~/.cache/autoencoder-kit``), keyed by every
    parameter (and, for CelebA, the copy's path and annotation file stamps); a
    corrupt or inconsistent cache file is made again.
    """
    S = _check_int("image_size", image_size, _MIN_SIZE, _MAX_SIZE)
    seed = _check_int("seed", seed, 0)
    if source == "generated":
        if n_train is None or n_test is None:
            raise KitError(
                "source='generated' needs whole numbers n_train and n_test (such as 20000 and 2000), not None."
            )
        n_train = _check_int("n_train", n_train, 0)
        n_test = _check_int("n_test", n_test, 0)
        train_count, test_count = n_train, n_test  # checked whole numbers, for `make` below
        key = f"faces-generated-v{GENERATOR_VERSION}-b{BLOCK}-size{S}-train{n_train}-test{n_test}-seed{seed}"

        def make() -> dict[str, np.ndarray]:
            s_train, s_test = derived_seeds(seed)
            x_tr, a_tr = generate_faces(train_count, seed=s_train, image_size=S)
            x_te, a_te = generate_faces(test_count, seed=s_test, image_size=S)
            return dict(zip(_KEYS, (x_tr, a_tr, x_te, a_te)))

    elif source == "celeba":
        from autograder.data import celeba

        root = celeba_dir if celeba_dir is not None else os.environ.get("CELEBA_DIR")
        if not root:
            raise KitError(
                "source='celeba' needs the folder of a local CelebA copy: pass celeba_dir=... "
                "or set the CELEBA_DIR environment variable."
            )
        n_train = None if n_train is None else _check_int("n_train", n_train, 0)
        n_test = None if n_test is None else _check_int("n_test", n_test, 0)
        stamp = repr((celeba.LOADER_VERSION, celeba.fingerprint(root), S, n_train, n_test, ATTRIBUTES))
        key = "faces-celeba-" + hashlib.sha256(stamp.encode()).hexdigest()[:24]

        def make() -> dict[str, np.ndarray]:
            (x_tr, a_tr), (x_te, a_te), _ = celeba.load_celeba(
                root, image_size=S, attributes=ATTRIBUTES, n_train=n_train, n_test=n_test
            )
            return dict(zip(_KEYS, (x_tr, a_tr, x_te, a_te)))

    else:
        raise KitError(f"unknown face source {source!r}; use source='generated' or source='celeba'.")

    path = _cache_file(cache_dir, key)
    d = _read_cache(path, n_train, n_test, S) if path is not None else None
    if d is None:
        d = make()
        if path is not None:
            _write_cache(path, d)
    return (d["x_train"], d["a_train"]), (d["x_test"], d["a_test"]), ATTRIBUTES
