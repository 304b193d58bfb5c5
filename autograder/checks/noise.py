"""Checks of a function that adds noise to images: `fn(images, noise_std, seed)`, where `images` is a float32 NumPy
array (n, H, W, C) of values in [0, 1], returns the noisy images, of the same shape.

- `noise_statistics`: on mid-grey images (where clipping does not act at the noise levels these checks use), the
  added noise has mean 0 and standard deviation `noise_std`, within the sampling error of its draws;
- `noise_range`: on black-and-white images under strong noise, every value lies in [0, 1], and it got there by
  clipping: a black pixel pushed below 0 is exactly 0 (about half of them), a white one pushed above 1 exactly 1;
- `noise_randomness`: new noise for each image and for each pixel; the same seed gives the same images and another
  seed other ones; the images given are left as they were.

Every probe returns the student's raw outputs (the noisy images) and the arguments it was given; the summary of
the behaviour (offsets in units of `noise_std`, shares, yes/no answers) is worked out in the grader (`summary`,
`properties`), where patching numpy in the student's process changes nothing, so that a judge compares behaviours
and a student's result can be matched with a catalogued mistake's. Hidden checks say what is wrong, never a number
that depends on their inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import PropertiesCheck, SummaryCheck, Verdict, register
from .messages import fmt_shape
from .student import call_student, numeric_array

GREY = 0.5  # the pixel value of the statistics images: 4 noise_std from either end at noise_std 0.125
CHANGED = 1e-6  # two values further apart than this differ (float32 noise of a few hundredths is far above it)


def _noisy(fn: Callable, images: np.ndarray, noise_std: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The student's noisy images for a copy of `images`, and that copy as the function left it."""
    given = images.copy()
    noisy = call_student(fn, given, float(noise_std), int(seed), returns=numeric_array, what="add_noise")
    if noisy.shape != images.shape:
        raise ValueError(
            f"add_noise returned shape {fmt_shape(noisy.shape)} for images of shape "
            f"{fmt_shape(images.shape)}; return one noisy image for each image, of the same shape"
        )
    return noisy, given


def _black_and_white(n_images, image_shape, seed) -> np.ndarray:
    rng = np.random.default_rng([int(seed), int(n_images), 5])
    return (rng.random((int(n_images), *[int(s) for s in image_shape])) < 0.5).astype("float32")


def _grey(n_images: int, image_shape) -> np.ndarray:
    return np.full((int(n_images), *[int(s) for s in image_shape]), GREY, dtype="float32")


@register
class NoiseStatistics(SummaryCheck):
    name = "noise_statistics"
    label = "mean and standard deviation of the added noise"

    SUMMARY_KEYS = ("draws", "mean_offset", "std_ratio")

    def probe(self, fn, *, n_images, image_shape, noise_std, seed=0):
        noisy = _noisy(fn, _grey(n_images, image_shape), noise_std, seed)[0]
        return {"noisy": noisy, "noise_std": float(noise_std)}

    def summary(self, raw):
        """In the grader: the images given were all GREY, so the noise is `noisy - GREY`."""
        noise = np.asarray(raw["noisy"], dtype="float64") - GREY
        noise_std = float(raw["noise_std"])
        return {
            "draws": int(noise.size),
            "mean_offset": float(noise.mean() / noise_std),
            "std_ratio": float(noise.std() / noise_std),
        }

    @staticmethod
    def tolerances(draws: int) -> tuple[float, float]:
        """Five standard errors of the difference of two independent estimates from `draws` normal draws: for the
        mean (in units of noise_std) sqrt(2 / n), for the standard deviation's ratio sqrt(2 / (2 n))."""
        return 5.0 * np.sqrt(2.0 / draws), 5.0 * np.sqrt(1.0 / draws)

    def judge_summary(self, got, expected, *, hidden):
        tol_mean, tol_std = self.tolerances(int(expected["draws"]))
        mean, want_mean = float(got["mean_offset"]), float(expected["mean_offset"])
        ratio, want_ratio = float(got["std_ratio"]), float(expected["std_ratio"])
        bad_mean = not abs(mean - want_mean) <= tol_mean  # NaN counts as bad
        bad_std = not abs(ratio - want_ratio) <= tol_std
        if not (bad_mean or bad_std):
            return Verdict(
                True,
                "the noise has mean 0 and standard deviation noise_std, within the sampling error"
                + (" on a hidden input" if hidden else f" of {int(got['draws']):,} draws"),
            )
        if hidden:
            what = " and ".join(w for w, bad in (("mean", bad_mean), ("standard deviation", bad_std)) if bad)
            return Verdict(
                False,
                f"on a hidden input, the {what} of the added noise "
                f"{'is' if ' and ' not in what else 'are'} not what Gaussian noise of standard "
                "deviation noise_std gives.",
            )
        parts = []
        if bad_std:
            parts.append(
                f"its standard deviation is {ratio:.3f} x noise_std (expected {want_ratio:.3f}, +-{tol_std:.3f})"
            )
        if bad_mean:
            parts.append(f"its mean is {mean:+.3f} x noise_std (expected {want_mean:+.3f}, +-{tol_mean:.3f})")
        return Verdict(False, "on mid-grey images, the noise added (noisy - images): " + "; ".join(parts) + ".")


@register
class NoiseRange(SummaryCheck):
    name = "noise_range"
    label = "noisy images clipped to [0, 1]"

    SUMMARY_KEYS = ("in_range", "black_at_zero", "white_at_one", "pixels")

    def probe(self, fn, *, n_images, image_shape, noise_std, seed=0):
        noisy = _noisy(fn, _black_and_white(n_images, image_shape, seed), noise_std, seed)[0]
        return {
            "noisy": noisy,
            "args": {"n_images": int(n_images), "image_shape": [int(s) for s in image_shape], "seed": int(seed)},
        }

    def summary(self, raw):
        """In the grader: the images are made again from the probe's arguments, the noisy ones are the student's."""
        args = raw["args"]
        images = _black_and_white(args["n_images"], args["image_shape"], args["seed"])
        noisy = np.asarray(raw["noisy"], dtype="float64")
        if noisy.shape != images.shape:
            raise ValueError(
                f"add_noise returned shape {fmt_shape(noisy.shape)} for images of shape {fmt_shape(images.shape)}"
            )
        black, white = images == 0.0, images == 1.0
        finite = bool(np.all(np.isfinite(noisy)))
        return {
            "in_range": finite and bool(noisy.min() >= 0.0 and noisy.max() <= 1.0),
            "low": float(np.nanmin(noisy)),
            "high": float(np.nanmax(noisy)),
            "black_at_zero": float(np.mean(noisy[black] == 0.0)),
            "white_at_one": float(np.mean(noisy[white] == 1.0)),
            "pixels": int(min(black.sum(), white.sum())),
        }

    @staticmethod
    def _not_held_at_the_edges(got: dict, expected: dict, tol: float, hidden: bool) -> str:
        """The values lie in [0, 1], but the shares of pixels held at exactly 0 and 1 are not clipping's. Only when
        no pixel sits at either edge do the draws show that nothing was clipped; otherwise the answer clips, and
        the noise (its mean, its size, where it is added) makes the shares differ, which the shares cannot tell."""
        at_edges = got["black_at_zero"] > tol or got["white_at_one"] > tol
        if not at_edges:
            return (
                "the values are in [0, 1], but not by clipping: hardly any pixel sits at exactly 0 or 1, where a "
                "pixel that the noise pushes below 0 or above 1 must end (np.clip), not be rescaled"
            )
        if hidden:
            return (
                "the values are in [0, 1], but the shares of black pixels at exactly 0 and of white ones at "
                "exactly 1 are not what clipping zero-mean noise of standard deviation noise_std gives"
            )
        return (
            f"the values are in [0, 1], but {got['black_at_zero']:.0%} of the black pixels are exactly 0 and "
            f"{got['white_at_one']:.0%} of the white ones exactly 1, expected about {expected['black_at_zero']:.0%} "
            f"and {expected['white_at_one']:.0%} (zero-mean noise pushes about half of each past the edge, and "
            "clipping holds them there)"
        )

    @staticmethod
    def tolerance(pixels: int) -> float:
        """Five standard errors of the difference of two shares near 1/2, each over `pixels` pixels."""
        return 5.0 * np.sqrt(2 * 0.25 / max(int(pixels), 1))

    def judge_summary(self, got, expected, *, hidden):
        tol = self.tolerance(int(expected["pixels"]))
        problems = []
        if bool(got["in_range"]) != bool(expected["in_range"]):
            if hidden:
                problems.append("some noisy values lie outside [0, 1]: clip the noisy images to [0, 1]")
            else:
                problems.append(
                    f"the noisy values run from {got['low']:.3f} to {got['high']:.3f}: clip the noisy images to [0, 1]"
                )
        elif not (
            abs(got["black_at_zero"] - expected["black_at_zero"]) <= tol
            and abs(got["white_at_one"] - expected["white_at_one"]) <= tol
        ):
            problems.append(self._not_held_at_the_edges(got, expected, tol, hidden))
        if problems:
            return Verdict(
                False,
                ("on a hidden input, " if hidden else "on black-and-white images under strong noise, ")
                + "; ".join(problems)
                + ".",
            )
        return Verdict(
            True, "every noisy value is in [0, 1], clipped at both ends" + (" on a hidden input" if hidden else "")
        )


@register
class NoiseRandomness(PropertiesCheck):
    name = "noise_randomness"
    label = "fresh, seeded noise for each image and pixel"

    def probe(self, fn, *, n_images, image_shape, noise_std, seed=0):
        images = _grey(n_images, image_shape)
        first, given = _noisy(fn, images, noise_std, seed)
        again, _ = _noisy(fn, images, noise_std, seed)
        other, _ = _noisy(fn, images, noise_std, int(seed) + 1)
        args = {"n_images": int(n_images), "image_shape": [int(s) for s in image_shape], "seed": int(seed)}
        return {"first": first, "again": again, "other": other, "given": given, "args": args}

    def properties(self, raw):
        """In the grader: the images given were all GREY, so the noise is `first - GREY`. The shapes are judged here
        too, against the call's arguments (the worker's own shape check only words the message)."""
        first, again, other, given = (np.asarray(raw[k], dtype="float64") for k in ("first", "again", "other", "given"))
        want = (int(raw["args"]["n_images"]), *(int(s) for s in raw["args"]["image_shape"]))
        if any(a.shape != want for a in (first, again, other, given)):
            raise ValueError(f"add_noise returned an array of another shape than the images' {fmt_shape(want)}")
        rows = (first - GREY).reshape(len(first), -1)
        return {
            "new_noise_each_image": bool(np.mean(np.any(np.abs(rows[1:] - rows[:1]) > CHANGED, axis=1)) > 0.5),
            "new_noise_each_pixel": bool(np.mean(np.abs(rows[:, 1:] - rows[:, :1]) > CHANGED) > 0.5),
            "same_seed_same_noise": first.shape == again.shape and bool(np.all(np.abs(first - again) <= CHANGED)),
            "new_seed_new_noise": first.shape == other.shape and bool(np.mean(np.abs(first - other) > CHANGED) > 0.5),
            "images_unchanged": given.shape == first.shape and bool(np.all(given == GREY)),
        }

    SAYS = {
        # Each sentence says what the noise shows and what it should show; only the last one's cause is shown (the
        # array given was changed), the others' are not (a generator made again per image, noise of one image's
        # shape, the global random state, ...): the catalogue's mistakes name those.
        "new_noise_each_image": (
            "each image gets its own noise",
            "every image gets the same noise; each image must get noise of its own",
        ),
        "new_noise_each_pixel": (
            "each pixel gets its own noise",
            "the pixels of an image share one noise value, which only shifts its brightness; each pixel must "
            "get noise of its own",
        ),
        "same_seed_same_noise": (
            "the same seed gives the same noise",
            "two calls with the same seed give different noise; the same seed must give the same noise",
        ),
        "new_seed_new_noise": (
            "another seed gives other noise",
            "another seed gives the same noise: the seed argument must choose the noise",
        ),
        "images_unchanged": (
            "the images given are left unchanged",
            "add_noise changed the images it was given "
            "(in place), so the clean images are lost: compute the noisy images as a new "
            "array",
        ),
    }
