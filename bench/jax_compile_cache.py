"""First-shape compile cost under JAX, with and without JAX's persistent compilation cache (docs/gpu.md).

Each round runs three fresh processes: no cache, an empty (cold) cache, then the cache the cold run filled (warm).
Each process builds a conv autoencoder like the course's, fits one epoch on 256 images (the first call traces and
compiles), predicts, and fits again (compiled already). Run: `python bench/jax_compile_cache.py --rounds 3`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import os, sys, time
t0 = time.perf_counter()
import numpy as np, keras
from keras import layers
t_import = time.perf_counter() - t0
keras.utils.set_random_seed(0)
def enc_block(x, f):
    return layers.MaxPooling2D()(layers.Conv2D(f, 3, padding="same", activation="relu")(x))
def dec_block(x, f):
    return layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
inp = keras.Input((28, 28, 1))
x = layers.Flatten()(enc_block(enc_block(inp, 16), 32))
y = layers.Reshape((7, 7, 32))(layers.Dense(7 * 7 * 32)(layers.Dense(16, name="z")(x)))
out = layers.Conv2D(1, 3, padding="same", activation="sigmoid")(dec_block(dec_block(y, 32), 16))
model = keras.Model(inp, out)
model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
data = np.random.default_rng(0).random((256, 28, 28, 1), dtype=np.float32)
t = time.perf_counter(); model.fit(data, data, batch_size=32, epochs=1, verbose=0); first_fit = time.perf_counter() - t
t = time.perf_counter(); model.predict(data, batch_size=128, verbose=0); first_predict = time.perf_counter() - t
t = time.perf_counter(); model.fit(data, data, batch_size=32, epochs=1, verbose=0); second_fit = time.perf_counter() - t
print(f"{t_import:.2f} {first_fit:.2f} {first_predict:.2f} {second_fit:.2f}")
"""


def run(cache: str | None) -> list[float]:
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    if cache is not None:
        env.update(
            JAX_COMPILATION_CACHE_DIR=cache,
            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        )
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()[-4:]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    times: dict[str, list[list[float]]] = {"no cache": [], "cold cache": [], "warm cache": []}
    for _ in range(rounds):
        cache = tempfile.mkdtemp(prefix="jax-cache-")
        try:
            times["no cache"].append(run(None))
            times["cold cache"].append(run(cache))
            times["warm cache"].append(run(cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    print("median of", rounds, "rounds, seconds: import, first fit, first predict, second fit")
    for mode, rows in times.items():
        print(f"{mode:11s}", " ".join(f"{statistics.median(col):6.2f}" for col in zip(*rows)))


if __name__ == "__main__":
    main()
