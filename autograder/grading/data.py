"""The data a training check trains on and is measured on: seeded subsets, the same for every submission."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import KitError
from ..files import cache_dir

if TYPE_CHECKING:
    from ..config import Profile
    from ..notebook import Spec


def quality_subset(
    dataset: str, split: str, *, n: int, seed: int, data: dict[str, Any], image_size: int = 64
) -> dict[str, np.ndarray]:
    """A seeded subset of a data set's train or test split: {"x": images, "y": labels or attributes}. The arrays
    are read-only and kept for the next call with the same arguments: a batch grades every submission on them."""
    settings = tuple(sorted(data.items()))  # course.yaml's data settings: strings or None
    # The cache folder as resolved now: $AUTOENCODER_KIT_CACHE may point elsewhere than at the last call.
    return _subset(dataset, split, int(n), int(seed), settings, str(cache_dir(data.get("cache_dir"))), int(image_size))


@functools.lru_cache(maxsize=4)
def _subset(
    dataset: str, split: str, n: int, seed: int, settings: tuple[tuple[str, Any], ...], cache: str, image_size: int
) -> dict[str, np.ndarray]:
    data = dict(settings, cache_dir=cache)
    if dataset == "mnist":
        from ..data.mnist import load_mnist, scale_digits

        # The raw digits, and only the subset scaled: scaling all 70,000 first cost most of the time.
        (x_train, y_train), (x_test, y_test) = load_mnist(
            source=data.get("mnist_source", "auto"), cache=data.get("cache_dir"), normalize=False
        )
        x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
        order = np.random.default_rng([seed, 0 if split == "train" else 1]).permutation(len(x))[:n]
        subset = {"x": scale_digits(x[order]), "y": y[order].astype("int64")}
    elif dataset == "faces":
        from ..data import load_faces

        # The face generator has its own fixed train/test split; the first n of each are the subset.
        (x_train, a_train), (x_test, a_test), _ = load_faces(
            source=data.get("faces_source", "generated"),
            celeba_dir=data.get("celeba_dir"),
            cache_dir=data.get("cache_dir"),
            image_size=image_size,
            n_train=n if split == "train" else 1,
            n_test=n if split != "train" else 1,
            seed=seed,
        )
        x, y = (x_train, a_train) if split == "train" else (x_test, a_test)
        subset = {"x": x[:n], "y": y[:n]}
    else:
        raise KitError(f"unknown data set {dataset!r} in a training check")
    for array in subset.values():
        array.setflags(write=False)
    return subset


def training_data(
    spec: Spec, profile: Profile, split: str, *, seed: int, data: dict[str, Any], n: int | None = None
) -> dict[str, np.ndarray]:
    """The subsets that the spec's training checks need: "train" for the student's worker, "test" (held out) for
    the clean worker that measures. `n`: that many images instead of the profile's (a builder's shapes)."""
    from ..checks import training_check

    options: dict[str, dict[str, Any]] = {}  # data set -> what its training checks ask of the subset (e.g. image_size)
    for call in spec.training_calls:
        check = training_check(call.check)
        options.setdefault(check.dataset, {}).update(check.dataset_options(profile.recipe()))
    arrays: dict[str, np.ndarray] = {}
    if n is None:
        n = profile.train_images if split == "train" else profile.test_images
    for name in sorted(options):
        arrays.update(quality_subset(name, split, n=n, seed=seed, data=data, **options[name]))
    return arrays
