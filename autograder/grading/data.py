"""The data a training check trains on and is measured on: seeded subsets, the same for every submission."""

from __future__ import annotations

import numpy as np

from ..errors import KitError


def quality_subset(dataset: str, split: str, *, n: int, seed: int, data: dict,
                   image_size: int = 64) -> dict[str, np.ndarray]:
    """A seeded subset of a data set's train or test split: {"x": images, "y": labels or attributes}."""
    if dataset == "mnist":
        from ..data import load_mnist

        (x_train, y_train), (x_test, y_test) = load_mnist(source=data.get("mnist_source", "auto"),
                                                          cache=data.get("cache_dir"))
        x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    elif dataset == "faces":
        from ..data import load_faces

        # The face generator has its own fixed train/test split; the first n of each are the subset.
        (x_train, a_train), (x_test, a_test), _ = load_faces(
            source=data.get("faces_source", "generated"), celeba_dir=data.get("celeba_dir"),
            cache_dir=data.get("cache_dir"), image_size=image_size, n_train=n if split == "train" else 1,
            n_test=n if split != "train" else 1, seed=seed)
        x, y = (x_train, a_train) if split == "train" else (x_test, a_test)
        return {"x": x[:n], "y": y[:n]}
    else:
        raise KitError(f"unknown data set {dataset!r} in a training check")
    order = np.random.default_rng([seed, 0 if split == "train" else 1]).permutation(len(x))[:n]
    return {"x": x[order], "y": y[order]}


def training_data(spec, profile, split: str, *, seed: int, data: dict) -> dict[str, np.ndarray]:
    """The subsets that the spec's training checks need: "train" for the student's worker, "test" (held out) for
    the clean worker that measures."""
    from ..checks import get, is_training

    options: dict[str, dict] = {}  # data set -> what its training checks ask of the subset (e.g. image_size)
    for call in spec.calls:
        if is_training(call.check):
            check = get(call.check)
            options.setdefault(check.dataset, {}).update(check.dataset_options(profile.recipe()))
    arrays: dict[str, np.ndarray] = {}
    n = profile.train_images if split == "train" else profile.test_images
    for name in sorted(options):
        arrays.update(quality_subset(name, split, n=n, seed=seed, data=data, **options[name]))
    return arrays
