"""Latent arithmetic (`attribute_vector_values`): the attribute vector is the mean code of the faces that have an
attribute minus the mean code of those without it, checked on fixed arrays and on seeded hidden ones."""

from __future__ import annotations

import numpy as np

from .base import Check, Verdict, register
from .messages import fmt_shape, fmt_values, got_expected
from .student import call_student, numeric_array


def _arrays(*, z=None, attributes=None, seed=None, n=None, latent_dim=None, n_attributes=8):
    if z is not None:
        return np.asarray(z, dtype="float32"), np.asarray(attributes, dtype="float32")
    rng = np.random.default_rng(seed)
    attrs = rng.integers(0, 2, size=(n, n_attributes)).astype("float32")
    attrs[0], attrs[1] = 1.0, 0.0  # every attribute has faces with and without it
    codes = rng.normal(size=(n, latent_dim)).astype("float32") + attrs[:, :1] * np.linspace(
        1, -1, latent_dim, dtype="float32"
    )
    return codes, attrs


@register
class AttributeVectorValues(Check):
    name = "attribute_vector_values"
    label = "the attribute vector of latent arithmetic"
    RTOL, ATOL = 1e-4, 1e-5

    def probe(self, fn, *, attribute, z=None, attributes=None, seed=None, n=None, latent_dim=None):
        # `attribute`, not `name`: run_check's own first parameter is called name
        codes, attrs = _arrays(z=z, attributes=attributes, seed=seed, n=n, latent_dim=latent_dim)
        vector = call_student(fn, codes.copy(), attrs.copy(), attribute, returns=numeric_array, what="attribute_vector")
        return {"vector": vector, "name": attribute, "latent_dim": int(codes.shape[1])}

    def judge(self, got, expected, *, hidden):
        mine, ref = np.asarray(got["vector"]), np.asarray(expected["vector"])
        name = "on hidden arrays" if hidden else f"for '{got['name']}'"  # which attribute is part of the input
        if mine.shape != ref.shape:
            if hidden:
                return Verdict(False, "on hidden arrays the vector does not have one value per latent dimension.")
            return Verdict(
                False,
                f"{name} the vector has shape {fmt_shape(mine.shape)}; it must have one value per "
                f"latent dimension ({fmt_shape(ref.shape)}).",
            )
        # NaN where the other has NaN counts as equal, so that a catalogued mistake that makes NaN is recognised
        if np.allclose(mine, ref, rtol=self.RTOL, atol=self.ATOL, equal_nan=True):
            return Verdict(
                True,
                "the vector is right on hidden arrays" if hidden else f"the '{got['name']}' vector {fmt_values(mine)}",
            )
        if not np.all(np.isfinite(mine)):
            return Verdict(False, f"{name} the vector holds NaN or infinite values.")
        if hidden:
            return Verdict(
                False,
                "on hidden arrays the vector is not the mean code of the faces with the attribute "
                "minus the mean code of the faces without it.",
            )
        return Verdict(False, f"{name}: {got_expected('', fmt_values(mine), fmt_values(ref))}.")
