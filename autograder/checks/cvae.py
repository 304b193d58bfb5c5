"""Checks of the conditional VAE assignment (`cvae`).

- `conditioned_shape`, `conditioning_layers`: what a conditioning function `fn(x, attributes) -> tensor` builds,
  for the encoder side (an image and its attributes) and the decoder side (a latent code and the attributes).
- `uses_condition`: the notebook's CVAE, freshly built (seeded, untrained), really reads its condition: each
  attribute changes the decoded image (or the encoder's code), the code changes it too, and the same input gives the
  same output.
- `attribute_vector_values`: latent arithmetic on fixed arrays.
- `cvae_quality`: after the kit's training recipe, reconstruction of held-out faces, and attribute control: decode
  each held-out face's code with one attribute switched on and then off, read the attribute back with the reference
  classifier (trained by `autograder calibrate cvae`), and score the share read as asked. A decoder that ignores its
  condition draws the same face both times, so it is read right exactly once per pair: 0.5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from . import Check, Verdict, register
from .quality import QualityCheck, _dataset, _load

CLASSIFIER = "attribute_classifier.keras"
CLASSIFIER_REPORT = "attribute_classifier.json"
# The share of blurred held-out faces that the reference classifier must read right, per controlled attribute,
# before calibration accepts it as a judge (decoded faces are blurry, so it is trained and tested on blur too).
CLASSIFIER_MIN_ACCURACY = 0.85


def _fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _attribute_names(n: int) -> list[str]:
    from ..data import ATTRIBUTES

    return list(ATTRIBUTES) if n == len(ATTRIBUTES) else [f"attribute {i}" for i in range(n)]


def _call_conditioning(fn: Callable, input_shape, n_attributes: int):
    import keras

    x = keras.Input(shape=tuple(input_shape), name="x")
    a = keras.Input(shape=(int(n_attributes),), name="attributes")
    out = fn(x, a)
    # `type(...) is`, not isinstance: an object can claim any class through a `__class__` property
    if type(out) is not keras.KerasTensor:
        raise TypeError(f"the function returned a {type(out).__name__}, not a Keras tensor")
    try:  # a tensor made up on the spot has the right shape but no layers behind it
        keras.Model([x, a], out)
    except Exception:  # noqa: BLE001 - Keras says "disconnected" in several ways
        raise TypeError("the function returned a Keras tensor that is not computed from its inputs") from None
    return x, a, out


def _where(args: dict, hidden: bool) -> str:
    if hidden:
        return "on a hidden input"
    return f"on an input of shape {_fmt(args['input_shape'])} with {args['n_attributes']} attributes"


@register
class ConditionedShape(Check):
    name = "conditioned_shape"
    label = "shape of the conditioned input"

    def probe(self, fn, *, input_shape, n_attributes):
        _, _, out = _call_conditioning(fn, input_shape, n_attributes)
        return {"shape": [None if s is None else int(s) for s in out.shape[1:]],
                "args": {"input_shape": list(input_shape), "n_attributes": int(n_attributes)}}

    def judge(self, got, expected, *, hidden):
        where = _where(got["args"], hidden)
        if got["shape"] == expected["shape"]:
            return Verdict(True, "the shape is right on a hidden input" if hidden else
                           f"output shape {_fmt(got['shape'])} {where}")
        if hidden:  # the shape would tell the hidden input
            return Verdict(False, "the output shape is wrong on a hidden input; the rule of the public check must "
                                  "hold for every image size, number of channels and number of attributes.")
        return Verdict(False, f"{where}: got output shape {_fmt(got['shape'])}, expected {_fmt(expected['shape'])}.")


@register
class ConditioningLayers(Check):
    name = "conditioning_layers"
    label = "layers of the conditioning (kinds, sizes, parameters)"

    def probe(self, fn, *, input_shape, n_attributes):
        import keras

        x, a, out = _call_conditioning(fn, input_shape, n_attributes)
        model = keras.Model([x, a], out)
        described = []
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            config, item = layer.get_config(), {"class": type(layer).__name__}
            for key in ("units", "target_shape", "activation"):
                if key in config:
                    value = config[key]
                    item[key] = list(value) if isinstance(value, tuple) else value
            if "axis" in config and isinstance(config["axis"], int):
                item["axis"] = config["axis"] % len(layer.output.shape)  # -1 and 3 are the same axis of 4-D data
            described.append(item)
        return {"layers": described, "params": int(model.count_params()),
                "args": {"input_shape": list(input_shape), "n_attributes": int(n_attributes)}}

    def judge(self, got, expected, *, hidden):
        have = [layer["class"] for layer in got["layers"]]
        want = [layer["class"] for layer in expected["layers"]]
        if have != want:
            text = f"the conditioning adds the layers {', '.join(have) or 'none'}"
            return Verdict(False, text + (", which is not what the assignment describes." if hidden
                                          else f"; expected {', '.join(want)}."))
        problems = []
        # on a hidden input, sizes are said as the rule they break: the numbers would tell the input
        rules = {"units": "units (one per pixel: H * W)", "target_shape": "target shape (it must be (H, W, 1))"}
        for mine, ref in zip(got["layers"], expected["layers"]):
            for key in ("units", "target_shape", "activation"):
                if key in ref and mine.get(key) != ref[key]:
                    if hidden and key in rules:
                        problems.append(f"{mine['class']} has the wrong {rules[key]}")
                    else:
                        problems.append(f"{mine['class']} has {key} {mine.get(key)!r}"
                                        + ("" if hidden else f", expected {ref[key]!r}"))
            if "axis" in ref and mine.get("axis") != ref["axis"]:
                problems.append(f"{mine['class']} joins on axis {mine.get('axis')!r}"
                                + ("" if hidden else f", expected {ref['axis']!r} (the last one)"))
        if not problems and got["params"] != expected["params"]:
            problems.append("the parameter count differs from the layers the assignment describes" if hidden
                            else f"{got['params']:,} parameters, expected {expected['params']:,}")
        if problems:
            return Verdict(False, "; ".join(problems[:4]) + ".")
        return Verdict(True, "layers as the assignment describes" if hidden else f"layers {', '.join(have)}, "
                             f"{got['params']:,} parameters")


@register
class UsesCondition(Check):
    """Probes a freshly built, untrained CVAE: `fn` is the notebook's builder, `part` is "decoder" or "encoder"."""

    name = "uses_condition"
    label = "the model reads its condition"
    TOLERANCE = 1e-7  # a change smaller than this (mean absolute difference) counts as none

    def probe(self, fn, *, part, image_size, latent_dim, filters, n_attributes=8, samples=4, seed=0):
        rng = np.random.default_rng(seed)
        model = fn(image_size=image_size, n_attributes=n_attributes, latent_dim=latent_dim, filters=tuple(filters))
        sub = getattr(model, part, None)
        if sub is None:
            raise AttributeError(f"the model built has no '{part}' part")
        attrs = rng.integers(0, 2, size=(samples, n_attributes)).astype("float32")
        if part == "decoder":
            first = rng.normal(size=(samples, latent_dim)).astype("float32")
            other = rng.normal(size=(samples, latent_dim)).astype("float32")
        else:
            first = rng.uniform(size=(samples, image_size, image_size, 3)).astype("float32")
            other = rng.uniform(size=(samples, image_size, image_size, 3)).astype("float32")

        def run(x, a):
            out = sub([x, a], training=False)
            out = out[0] if isinstance(out, (list, tuple)) else out  # the encoder's z_mean
            return np.asarray(out, dtype="float64")

        base = run(first, attrs)
        changes = []
        for k in range(n_attributes):
            flipped = attrs.copy()
            flipped[:, k] = 1.0 - flipped[:, k]
            changes.append(float(np.mean(np.abs(run(first, flipped) - base))))
        return {"part": part, "attribute_changes": changes,
                "input_change": float(np.mean(np.abs(run(other, attrs) - base))),
                "repeat_change": float(np.mean(np.abs(run(first, attrs) - base))),
                "names": _attribute_names(n_attributes)}

    def pattern(self, result) -> tuple:
        """What the judge compares: which inputs change the output, and whether a repeat gives the same output."""
        tol = self.TOLERANCE
        return (tuple(c > tol for c in result["attribute_changes"]), result["input_change"] > tol,
                result["repeat_change"] <= tol)

    def judge(self, got, expected, *, hidden):
        # The reference reads every attribute and its input, and repeats itself; a result passes when it behaves the
        # same way (so a catalogued mistake that ignores the condition can be recognised by its pattern too).
        part = got["part"]
        what = "decoded image" if part == "decoder" else "encoder's code (z_mean)"
        source = "latent code" if part == "decoder" else "image"
        attributes, reads_input, repeats = self.pattern(got)
        if self.pattern(got) == self.pattern(expected):
            return Verdict(True, f"each of the {len(got['names'])} attributes and the {source} change the {what}; "
                                 "the same input gives the same output")
        problems = []
        ignored = [name for name, changes in zip(got["names"], attributes) if not changes]
        if len(ignored) == len(got["names"]):
            problems.append(f"switching any attribute leaves the {what} unchanged: the {part} ignores its condition")
        elif ignored:
            problems.append(f"switching {', '.join(ignored)} leaves the {what} unchanged")
        if not reads_input:
            problems.append(f"another {source} gives the same {what}: the {part} ignores its {source}")
        if not repeats:
            problems.append(f"the same {source} and attributes give a different {what} each time (is there "
                            "randomness in the conditioning?)")
        return Verdict(False, "; ".join(problems or [f"the {part} does not read its inputs as the reference "
                                                     "does"]) + ".")


# ----------------------------------------------------------------------------------------- latent arithmetic


def _arrays(*, z=None, attributes=None, seed=None, n=None, latent_dim=None, n_attributes=8):
    if z is not None:
        return np.asarray(z, dtype="float32"), np.asarray(attributes, dtype="float32")
    rng = np.random.default_rng(seed)
    attrs = rng.integers(0, 2, size=(n, n_attributes)).astype("float32")
    attrs[0], attrs[1] = 1.0, 0.0  # every attribute has faces with and without it
    codes = rng.normal(size=(n, latent_dim)).astype("float32") + attrs[:, :1] * np.linspace(1, -1, latent_dim,
                                                                                              dtype="float32")
    return codes, attrs


@register
class AttributeVectorValues(Check):
    name = "attribute_vector_values"
    label = "the attribute vector of latent arithmetic"
    RTOL, ATOL = 1e-4, 1e-5

    def probe(self, fn, *, attribute, z=None, attributes=None, seed=None, n=None, latent_dim=None):
        # `attribute`, not `name`: run_check's own first parameter is called name
        codes, attrs = _arrays(z=z, attributes=attributes, seed=seed, n=n, latent_dim=latent_dim)
        result = fn(codes.copy(), attrs.copy(), attribute)
        if result is None:
            raise TypeError("attribute_vector returned None; return the vector (a NumPy array)")
        try:
            vector = np.asarray(result, dtype="float64")
        except (TypeError, ValueError):
            raise TypeError(f"attribute_vector returned a {type(result).__name__}, not an array of numbers") from None
        return {"vector": vector, "name": attribute, "latent_dim": int(codes.shape[1])}

    def judge(self, got, expected, *, hidden):
        mine, ref = np.asarray(got["vector"]), np.asarray(expected["vector"])
        name = "on hidden arrays" if hidden else f"for '{got['name']}'"  # which attribute is part of the input
        if mine.shape != ref.shape:
            if hidden:
                return Verdict(False, "on hidden arrays the vector does not have one value per latent dimension.")
            return Verdict(False, f"{name} the vector has shape {_fmt(mine.shape)}; it must have one value per "
                                  f"latent dimension ({_fmt(ref.shape)}).")
        # NaN where the other has NaN counts as equal, so that a catalogued mistake that makes NaN is recognised
        if np.allclose(mine, ref, rtol=self.RTOL, atol=self.ATOL, equal_nan=True):
            return Verdict(True, "the vector is right on hidden arrays" if hidden
                           else f"the '{got['name']}' vector {np.round(mine, 4).tolist()}")
        if not np.all(np.isfinite(mine)):
            return Verdict(False, f"{name} the vector holds NaN or infinite values (the mean of an empty group of "
                                  "faces?).")
        if hidden:
            return Verdict(False, "on hidden arrays the vector is not the mean code of the faces with the attribute "
                                  "minus the mean code of the faces without it.")
        return Verdict(False, f"{name}: got {np.round(mine, 4).tolist()}, expected {np.round(ref, 4).tolist()}.")


# ----------------------------------------------------------------------------------------- quality after training


def blurred(x: np.ndarray, size: int) -> np.ndarray:
    """Images shrunk to `size` pixels and enlarged back: the softness of a short-trained decoder's output."""
    import tensorflow as tf

    full = x.shape[1:3]
    return tf.image.resize(tf.image.resize(x, (size, size), antialias=True), full).numpy().astype("float32")


def build_classifier(image_size: int, n_attributes: int):
    """The reference attribute classifier: a small CNN of standard layers, so the clean worker loads it safely."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(n_attributes, activation="sigmoid", name="attributes")(x)
    return keras.Model(inputs, outputs, name="attribute_classifier")


@register
class CVAEQuality(QualityCheck):
    name = "cvae_quality"
    label = "reconstruction and attribute control after the kit's training recipe"
    dataset = "faces"
    metrics = ("test_mse", "attribute_control")
    higher_is_better = ("attribute_control",)
    assets = (CLASSIFIER,)
    param_factor = 10.0  # see QualityCheck: a model that stores faces instead of compressing them is refused

    def probe(self, fn, *, recipe, data, export_dir, seed=0):
        import keras

        with np.load(data, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"]
        extra = recipe.get("extra", {})
        cvae = fn(image_size=int(x.shape[1]), n_attributes=int(y.shape[1]), latent_dim=recipe["latent_dim"],
                  filters=tuple(recipe["filters"]), beta=float(extra.get("beta", 1.0)))
        cvae.compile(optimizer=keras.optimizers.Adam(recipe["learning_rate"]))
        history = cvae.fit(_dataset(x, y, recipe["batch_size"], shuffle_seed=seed), epochs=recipe["epochs"],
                           verbose=0)
        out = Path(export_dir)
        out.mkdir(parents=True, exist_ok=True)
        cvae.encoder.save(out / "encoder.keras")
        cvae.decoder.save(out / "decoder.keras")
        cvae.save_weights(out / "model.weights.h5")  # what calibration publishes for the notebook
        return {"train_loss": [float(v) for v in history.history["loss"]], "export_dir": str(out)}

    def evaluate(self, export_dir, *, data, recipe, assets=None, max_params=None):
        """Runs in the clean worker. Returns the metrics, or raises with a sentence for the student."""
        with np.load(data, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"].astype("float32")
        export = Path(export_dir)
        try:
            encoder, decoder = _load(export / "encoder.keras"), _load(export / "decoder.keras")
        except Exception as err:  # noqa: BLE001 - any failure to load is the same sentence for the student
            raise ValueError(f"the encoder or decoder could not be loaded with standard Keras layers only ({err}); "
                             "build the conditioning from Dense, Reshape and Concatenate, without Lambda layers")
        params = int(encoder.count_params()) + int(decoder.count_params())
        if max_params is not None and params > max_params:
            raise ValueError(f"the model has {params:,} parameters, more than {self.param_factor:g} times the "
                             f"reference model's: a CVAE must compress the faces, not store them")
        latent = int(recipe["latent_dim"])
        image_shape, n_attr = tuple(x.shape[1:]), int(y.shape[1])
        if [tuple(s[1:]) for s in _shapes(encoder.input_shape)] != [image_shape, (n_attr,)]:
            raise ValueError(f"the encoder takes inputs of shapes {_shapes(encoder.input_shape)}; it must take the "
                             f"images and their {n_attr} attributes")
        if [tuple(s[1:]) for s in _shapes(decoder.input_shape)] != [(latent,), (n_attr,)]:
            raise ValueError(f"the decoder takes inputs of shapes {_shapes(decoder.input_shape)}; it must take a "
                             f"code of latent_dim={latent} values and the {n_attr} attributes")
        codes = encoder.predict([x, y], batch_size=256, verbose=0)
        z_mean = np.asarray(codes[0] if isinstance(codes, (list, tuple)) else codes)
        if z_mean.shape != (len(x), latent):
            raise ValueError(f"the encoder's first output (z_mean) has shape {z_mean.shape[1:]} per image; it must "
                             f"be latent_dim={latent} values")
        decoded = decoder.predict([z_mean, y], batch_size=256, verbose=0)
        if decoded.shape != x.shape:
            raise ValueError(f"the decoder gives images of shape {decoded.shape[1:]}, expected {image_shape}")
        test_mse = float(np.mean((decoded.astype("float64") - x) ** 2))
        control = attribute_control(decoder, _load(Path(assets) / CLASSIFIER), z_mean, y, recipe)
        return {"test_mse": test_mse, "attribute_control": float(np.mean(list(control.values())))}

    def baselines(self, test: dict, *, assets) -> dict:
        x = test["x"].astype("float64")
        return {"test_mse": {"all_zeros": float(np.mean(x ** 2)),
                             "mean_image": float(np.mean((x - x.mean(axis=0)) ** 2))},
                # The same face for "on" and "off" is read right once in each pair, whatever the classifier says.
                "attribute_control": {"decoder_ignores_condition": 0.5}}

    def train_assets(self, out_dir, *, train, test, recipe, seed):
        import json

        import keras

        keras.utils.set_random_seed(seed)
        extra = recipe.get("extra", {})
        # The first `classifier_images` training faces: a prefix of the training split, the same in every profile,
        # so that the profiles share one judge.
        n = int(extra.get("classifier_images", len(train["x"])))
        x, y = train["x"][:n], train["y"][:n].astype("float32")
        size = int(x.shape[1])
        soft = [max(4, size // 2), max(4, (3 * size) // 8)]
        x_all = np.concatenate([x] + [blurred(x, s) for s in soft])
        y_all = np.concatenate([y] * (1 + len(soft)))
        classifier = build_classifier(size, int(y.shape[1]))
        classifier.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        classifier.fit(_dataset(x_all, y_all, 64, shuffle_seed=seed), epochs=int(extra.get("classifier_epochs", 3)),
                       verbose=0)
        names = _attribute_names(int(y.shape[1]))
        truth = test["y"] > 0.5
        report = {"sharp": {}, "blurred": {}, "trained_on": int(len(x_all)), "blur_sizes": soft}
        for kind, images in (("sharp", test["x"]), ("blurred", blurred(test["x"], soft[0]))):
            read = classifier.predict(images, batch_size=256, verbose=0) > 0.5
            report[kind] = {n: round(float(np.mean(read[:, i] == truth[:, i])), 4) for i, n in enumerate(names)}
        weak = [n for n in _controlled(recipe, names) if report["blurred"][n] < CLASSIFIER_MIN_ACCURACY]
        if weak:
            from ..errors import KitError

            raise KitError(f"the reference attribute classifier reads {', '.join(weak)} right on fewer than "
                           f"{CLASSIFIER_MIN_ACCURACY:.0%} of blurred held-out faces ({report['blurred']}); it cannot "
                           "judge attribute control. Give the profile more training images, or leave those "
                           "attributes out of extra.control_attributes.")
        out = Path(out_dir)
        classifier.save(out / CLASSIFIER)
        (out / CLASSIFIER_REPORT).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
        return [out / CLASSIFIER, out / CLASSIFIER_REPORT]


def _shapes(shape) -> list[tuple]:
    """A model's input_shape as a list of shapes (one input gives a single tuple)."""
    if isinstance(shape, list):
        return [tuple(s) for s in shape]
    if shape and isinstance(shape[0], (tuple, list)):
        return [tuple(s) for s in shape]
    return [tuple(shape)]


def _controlled(recipe: dict, names: list[str]) -> list[str]:
    wanted = recipe.get("extra", {}).get("control_attributes") or names
    return [n for n in wanted if n in names]


def attribute_control(decoder, classifier, z_mean: np.ndarray, y: np.ndarray, recipe: dict) -> dict[str, float]:
    """Per controlled attribute: the share of decodings read as asked, over the first `control_images` held-out
    codes, each decoded with the attribute switched on and with it switched off (the other attributes as they are)."""
    names = _attribute_names(int(y.shape[1]))
    n = min(len(z_mean), int(recipe.get("extra", {}).get("control_images", 200)))
    z, base = z_mean[:n], y[:n]
    shares = {}
    for name in _controlled(recipe, names):
        k = names.index(name)
        asked = []
        for value in (1.0, 0.0):
            attrs = base.copy()
            attrs[:, k] = value
            images = decoder.predict([z, attrs], batch_size=256, verbose=0)
            read = classifier.predict(images, batch_size=256, verbose=0)[:, k] > 0.5
            asked.append(read == bool(value))
        shares[name] = float(np.mean(np.concatenate(asked)))
    return shares
