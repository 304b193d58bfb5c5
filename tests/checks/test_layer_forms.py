"""Structure compared by meaning, on plain data (no Keras): the canonical form of a block's layers makes equivalent
spellings equal, and the block checks' messages say what the block has and what the assignment asks for without
telling a hidden input."""

from __future__ import annotations

import re

from autograder.checks.blocks import BlockLayers, BlockLayerSettings, BlockOutputShape, BlockParamCount
from autograder.checks.layer_forms import canonical, initializer_name, kinds
from autograder.checks.messages import shape_difference

HE = {"module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": None}}
GLOROT = {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None}}


def conv(filters=6, activation="relu", padding="same", init=HE, **more):
    return {
        "class": "Conv2D",
        "name": "conv2d_7",
        "trainable": True,
        "dtype": {"class_name": "DTypePolicy"},
        "filters": filters,
        "kernel_size": [3, 3],
        "strides": [1, 1],
        "padding": padding,
        "activation": activation,
        "kernel_initializer": init,
        "kernel_regularizer": None,
        **more,
    }


POOL = {"class": "MaxPooling2D", "name": "max_pooling2d", "pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}
SOLUTION = [conv(), conv(), POOL]


def summary(layers, params=710, num_filters=6):
    return {"layers": layers, "params": params, "args": {"input_shape": [12, 12, 3], "num_filters": num_filters}}


def test_equivalent_activation_steps_fold_into_the_linear_layer_they_follow():
    relu_layer = {"class": "ReLU", "max_value": None, "negative_slope": 0.0, "threshold": 0.0}
    written = [
        [conv(activation="linear"), {"class": "Activation", "activation": "relu"}] * 2 + [POOL],
        [conv(activation="linear"), relu_layer, conv(activation="linear"), relu_layer, POOL],
        [
            conv(activation="linear"),
            {"class": "ops.Relu"},
            conv(activation="linear"),
            {"class": "ops.ReLU", "negative_slope": 0.0, "max_value": None, "threshold": 0.0},
            POOL,
        ],
        [conv(), {"class": "Activation", "activation": "relu"}, conv(), {"class": "Identity"}, POOL],  # relu twice
    ]
    want = canonical(SOLUTION)
    for layers in written:
        assert canonical(layers) == want, layers


def test_an_activation_that_changes_the_function_stays_a_step_of_its_own():
    tanh_after_relu = canonical([conv(), {"class": "Activation", "activation": "tanh"}, POOL])
    assert kinds(tanh_after_relu) == ["Conv2D", 'Activation("tanh")', "MaxPooling2D"]
    capped = canonical(
        [conv(activation="linear"), {"class": "ReLU", "max_value": 3.0, "negative_slope": 0.0, "threshold": 0.0}]
    )
    assert kinds(capped) == ["Conv2D", "ReLU"] and capped[0].settings["activation"] == "linear"


def test_initializers_are_named_by_what_they_draw():
    variance_scaling = {
        "class_name": "VarianceScaling",
        "config": {"scale": 2.0, "mode": "fan_in", "distribution": "normal", "seed": 3},
    }
    assert (
        initializer_name(HE)
        == initializer_name(variance_scaling)
        == initializer_name("he_normal")
        == initializer_name("HeNormal")
        == "he_normal"
    )
    assert initializer_name(GLOROT) == "glorot_uniform"
    assert (
        initializer_name({"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.05, "seed": 1}})
        == "random_normal(mean=0.0, stddev=0.05)"
    )


def test_names_dtypes_regularizers_and_nesting_do_not_matter_but_real_settings_do():
    renamed = [dict(conv(), name="enc_conv1", kernel_regularizer={"class_name": "L2"}), conv(), dict(POOL, name="p")]
    assert canonical(renamed) == canonical(SOLUTION)
    assert canonical([conv(dilation_rate=[2, 2]), conv(), POOL]) != canonical(
        [conv(dilation_rate=[1, 1]), conv(), POOL]
    )


def test_an_axis_counts_from_the_front():
    assert canonical([{"class": "Concatenate", "axis": -1, "rank": 4}]) == canonical(
        [{"class": "Concatenate", "axis": 3, "rank": 4}]
    )


def test_layer_checks_accept_equivalent_code_and_say_what_the_assignment_asks_for():
    folded = summary([conv(activation="linear"), {"class": "Activation", "activation": "relu"}, conv(), POOL])
    for check in (BlockLayers(), BlockLayerSettings()):
        assert check.judge(folded, summary(SOLUTION), hidden=True).passed
    one_conv = BlockLayers().judge(summary([conv(), POOL]), summary(SOLUTION), hidden=True)
    assert one_conv.message == (
        "got the layers Conv2D, MaxPooling2D; the assignment asks for Conv2D, Conv2D, MaxPooling2D."
    )
    padding = BlockLayerSettings().judge(summary([conv(padding="valid"), conv(), POOL]), summary(SOLUTION), hidden=True)
    assert padding.message == 'Conv2D #1 has padding="valid" where the assignment asks for padding="same".'


def test_hidden_structure_messages_tell_no_number_that_depends_on_the_input():
    """A filter count or a parameter count of the student's block is a function of the hidden input (a block with
    2 * num_filters filters would show num_filters); the messages say what is wrong without them."""
    doubled = summary([conv(filters=12), conv(filters=12), POOL], params=2000)
    settings = BlockLayerSettings().judge(doubled, summary(SOLUTION), hidden=True)
    params = BlockParamCount().judge(doubled, summary(SOLUTION), hidden=True)
    assert settings.message == (
        "Conv2D #1 does not have num_filters filters; Conv2D #2 does not have num_filters filters."
    )
    assert params.message.startswith("on a hidden input the block has more parameters")
    for verdict in (settings, params):
        assert not re.search(r"\d", re.sub(r"\w+2D( #\d)?", "", verdict.message)), verdict.message
    public = BlockLayerSettings().judge(doubled, summary(SOLUTION), hidden=False)
    assert public.message.startswith("Conv2D #1 has 12 filters where the assignment asks for num_filters filters")


def test_a_hidden_shape_failure_says_which_axes_are_wrong_without_their_sizes():
    got = {"shape": [6, 6, 6], "args": {"input_shape": [13, 10, 2], "num_filters": 5}}
    verdict = BlockOutputShape().judge(got, {"shape": [6, 5, 5]}, hidden=True)
    assert "its width and channels are too large; its height is right" in verdict.message
    assert not re.search(r"\d", verdict.message)
    assert shape_difference([4, 4], [4, 4, 1]) == "it has 2 axes after the batch axis, where the assignment asks for 3"


TRANSPOSED = {
    "class": "Conv2DTranspose",
    "filters": 8,
    "kernel_size": [4, 4],
    "strides": [2, 2],
    "activation": "linear",
}
NORM = {"class": "BatchNormalization", "axis": -1, "rank": 4, "momentum": 0.99, "epsilon": 0.001}


def test_every_spelling_of_a_leaky_relu_is_one_step_with_its_slope():
    """LeakyReLU(negative_slope=0.2) is what the string activation "leaky_relu" computes (its default slope is 0.2;
    the layer's own default is 0.3): the spellings Keras gives that function compare equal, another slope does not."""
    spellings = [
        {"class": "LeakyReLU", "name": "leaky_re_lu", "negative_slope": 0.2},
        {"class": "Activation", "activation": "leaky_relu"},
        {"class": "ReLU", "negative_slope": 0.2, "max_value": None, "threshold": 0.0},
        {"class": "ops.LeakyRelu", "negative_slope": 0.2},
        {"class": "ops.ReLU", "negative_slope": 0.2, "max_value": None, "threshold": 0.0},
    ]
    forms = [canonical([TRANSPOSED, NORM, step]) for step in spellings]
    assert all(form == forms[0] for form in forms), forms
    assert kinds(forms[0]) == ["Conv2DTranspose", "BatchNormalization", "LeakyReLU"]
    keras_default = canonical([TRANSPOSED, NORM, {"class": "LeakyReLU", "negative_slope": 0.3}])
    assert keras_default != forms[0] and kinds(keras_default) == kinds(forms[0])
    # After a linear layer a leaky ReLU stays a step of its own (its slope is a setting), and a layer's
    # activation="leaky_relu" is split into the same two steps.
    after_conv = canonical([conv(activation="linear"), {"class": "Activation", "activation": "leaky_relu"}])
    assert after_conv == canonical([conv(activation="leaky_relu")])
    assert kinds(after_conv) == ["Conv2D", "LeakyReLU"] and after_conv[0].settings["activation"] == "linear"


def test_an_activation_steps_kind_names_its_function():
    """A check, or a catalogued mistake, about one activation function is not about every other: a plain ReLU and
    a sigmoid after the same layers are different kinds (tests/test_gan.py grades it)."""
    plain_relu = canonical([TRANSPOSED, NORM, {"class": "ReLU", "negative_slope": 0.0, "threshold": 0.0}])
    sigmoid = canonical([TRANSPOSED, NORM, {"class": "Activation", "activation": "sigmoid"}])
    assert kinds(plain_relu)[-1] == 'Activation("relu")' and kinds(sigmoid)[-1] == 'Activation("sigmoid")'
    assert (
        not BlockLayers()
        .judge(summary([TRANSPOSED, NORM, SIGMOID]), summary([TRANSPOSED, NORM, RELU]), hidden=False)
        .passed
    )
    assert canonical([conv(activation="swish")]) == canonical(
        [conv(activation="linear"), {"class": "Activation", "activation": "silu"}]
    )


SIGMOID = {"class": "Activation", "activation": "sigmoid"}
RELU = {"class": "ReLU", "negative_slope": 0.0, "threshold": 0.0, "max_value": None}
