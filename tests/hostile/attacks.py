"""Attack code, as the source text a student would put in an answer cell.

Placeholders `__NAME__` are replaced by `fill()` with the repr of a value of one test run (paths of the course
copy, ports of the test's servers, a random token). Snippets that report end with `raise RuntimeError("X:" +
report)`: the report is the only channel back, through the answer cell's error in the findings, so whatever an
escape obtained would show up in results.json, where the tests look for it.
"""

from __future__ import annotations

ENCODER = '''def define_encoder_block(x, num_filters):
    """Two 3x3 ReLU convolutions with `num_filters` filters, then 2x2 max pooling."""
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.MaxPooling2D()(x)
    return x
'''

DECODER = '''def define_decoder_block(x, num_filters):
    """2x upsampling, then two 3x3 ReLU convolutions with `num_filters` filters."""
    x = layers.UpSampling2D()(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return x
'''

WRONG_DECODER = """def define_decoder_block(x, num_filters):
    return x  # wrong: no upsampling, no convolutions
"""


def fill(code: str, **values) -> str:
    for name, value in values.items():
        code = code.replace(f"__{name.upper()}__", repr(value))
    return code


# ------------------------------------------------------------------------------------------------ escapes

# Read what no worker may read. `__READS__` maps a two-letter tag to a path. Each entry reports `tag!N:text` (N
# bytes read, the first of them) or `tag-errno`. A file hidden by a bind of /dev/null reads as 0 bytes.
READS = """
import os as _os
_report = []
for _tag, _path in __READS__.items():
    try:
        with open(_path, "rb") as _fh:
            _data = _fh.read(24)
        _report.append(f"{_tag}!{len(_data)}:{_data.decode('latin-1')}")
    except OSError as _err:
        _report.append(f"{_tag}-{_err.errno}")
try:  # is the grader's process visible (signal 0 only asks)?
    _os.kill(__GRADER_PID__, 0)
    _report.append("pk!")
except OSError as _err:
    _report.append(f"pk-{_err.errno}")
_report.append("en!" if any(__TOKEN__ in v for v in _os.environ.values()) else "en-")
_report.append("tl%d" % len([n for n in _os.listdir("/tmp") if n.startswith("autograder-")]))
_marks = [_os.path.exists(__TMP_MARK__), _os.path.exists(__SITE_MARK__), "HOSTILE_MARK" in _os.environ]
_report.append("mk!" if any(_marks) else "mk-")
raise RuntimeError("R:" + " ".join(_report))
"""

# Write where no worker may write, connect where no worker may connect, and leave marks for a later grading.
# `__CREATE__` maps a tag to a new file's path (created with inert content), `__TOUCH__` a tag to an existing
# file (opened for update, nothing written: harmless if it works, and it must not), `__OVERWRITE__` a tag to a file
# of the test's scratch copy of the course (written for real).
WRITES = """
import os as _os, socket as _socket
_report = []
for _tag, _path in __CREATE__.items():
    try:
        _os.makedirs(_os.path.dirname(_path), exist_ok=True)
        with open(_path, "xb") as _fh:
            _fh.write(b"hostile test file, safe to delete")
        _report.append(f"{_tag}!")
    except OSError as _err:
        _report.append(f"{_tag}-{_err.errno}")
for _tag, _path in __TOUCH__.items():
    try:
        with open(_path, "r+b"):
            pass
        _report.append(f"{_tag}!")
    except OSError as _err:
        _report.append(f"{_tag}-{_err.errno}")
for _tag, _path in __OVERWRITE__.items():  # files of the test's own course copy: really written, if it works
    try:
        with open(_path, "r+b") as _fh:
            _fh.write(b"HOSTILE")
        _report.append(f"{_tag}!")
    except OSError as _err:
        _report.append(f"{_tag}-{_err.errno}")

def _net(tag, fn):
    try:
        fn()
        _report.append(f"{tag}!")
    except OSError as _err:
        _report.append(f"{tag}-{_err.errno}")

_net("tc", lambda: _socket.create_connection(("127.0.0.1", __TCP_PORT__), timeout=3).close())
_net("ud", lambda: _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM).sendto(__TOKEN__.encode(),
                                                                              ("127.0.0.1", __UDP_PORT__)))
_net("ux", lambda: _socket.socket(_socket.AF_UNIX).connect(__ABSTRACT__))
_net("ex", lambda: _socket.create_connection(("1.1.1.1", 53), timeout=3).close())
_net("dn", lambda: _socket.getaddrinfo("example.com", 80))
_os.environ["HOSTILE_MARK"] = "1"      # for a later worker, if environments leaked
_os.putenv("HOSTILE_MARK", "1")
raise RuntimeError("W:" + " ".join(_report))
"""

# ------------------------------------------------------------------------------------------------ forgery

# Forged results from a function that only knows the right answers: a private, correct decoder block run through
# the kit's own probes, for every decoder check of the plan. `_forged` is a list of event lines.
FORGE_VALUES = """
import json as _json, os as _os
from autograder import checks as _checks
from autograder.plain import encode as _encode

_plan = _json.load(open("plan.json"))
_events = _plan["events"]

def _right(x, num_filters):
    x = layers.UpSampling2D()(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return x

_forged = [_json.dumps({"done": p["id"], "value": _encode(_checks.get(p["check"]).probe(_right, **p["args"]))})
           for p in _plan["probes"] if p["function"] == "define_decoder_block"]
_forged.append(_json.dumps({"done": _forged and _json.loads(_forged[0])["done"],
                            "value": {"__ndarray__": "AAAA", "dtype": "float32", "shape": [2 ** 62, 4]}}))
"""

# The encoder cell of the forgery notebook: a 70 MB junk line in the events file (a runner that read only the
# first 64 MB lost every real event after it), the checker, numpy and builtins patched in the worker, and the
# quality probe replaced by one that exports links to the reference model (and a disk filler) without training.
FORGE_ENCODER = """
import builtins as _builtins, json as _json, os as _os, pathlib as _pathlib
import numpy as _np
from autograder import checks as _checks

with open(_json.load(open("plan.json"))["events"], "ab") as _fh:
    _fh.write(b"x" * (70 * 1024 * 1024) + b"\\n")

_np.array_equal = lambda *a, **k: True
_np.allclose = lambda *a, **k: True
for _check in list(_checks.REGISTRY.values()):
    type(_check).judge = lambda self, got, expected, hidden=False: _checks.Verdict(True, "PATCHED", 1.0)
_checks.Verdict = lambda *a, **k: None
_builtins.print = lambda *a, **k: None

def _linked_export(self, fn, *, recipe, data, export_dir, seed=0):
    out = _pathlib.Path(export_dir)
    out.mkdir(parents=True, exist_ok=True)
    ref = __COURSE__ + "/reference_weights/autoencoder/reconstruction_quality"
    (out / "encoder.keras").symlink_to(ref + ".encoder.keras")
    (out / "decoder.keras").symlink_to(ref + ".decoder.keras")
    (out / "model.weights.h5").symlink_to("/dev/zero")
    return {"train_loss": [0.0], "export_dir": str(out)}

type(_checks.get("reconstruction_quality")).probe = _linked_export
"""

# The decoder cell of the forgery notebook (after a wrong decoder): fake results on stdout and on disk, forged
# events now, at exit, and from a forked child that answers each decoder check's `start` with a forged `done`.
FORGE_DECODER = (
    FORGE_VALUES
    + """
import atexit as _atexit, sys as _sys, time as _time

_fake = _json.dumps({"score": 14, "max_score": 14, "tests": [{"name": "all", "score": 14, "max_score": 14,
                                                             "status": "passed"}]})
_sys.stdout.write(_fake + "\\n")
_sys.stdout.flush()
for _path in ("results.json", "../results.json", "feedback.html"):
    try:
        with open(_path, "w") as _fh:
            _fh.write(_fake)
    except OSError:
        pass

with open(_events, "a") as _fh:
    _fh.write("\\n".join(_forged) + "\\n")

def _at_exit():
    with open(_events, "a") as fh:
        fh.write("\\n".join(_forged) + "\\n")

_atexit.register(_at_exit)

_by_id = {_json.loads(line)["done"]: line for line in _forged[:-1]}
if _os.fork() == 0:  # a child that outlives this cell, if the worker lets it
    _seen, _end = set(), _time.monotonic() + 300
    while _time.monotonic() < _end:
        try:
            with open(_events) as fh:
                for raw in fh:
                    if raw.startswith('{"start"'):
                        item = _json.loads(raw)["start"]
                        if item in _by_id and item not in _seen:
                            _seen.add(item)
                            with open(_events, "a") as out:
                                out.write(_by_id[item] + "\\n")
        except Exception:
            pass
        _time.sleep(0.005)
    _os._exit(0)
"""
)

# Exit early with status 0 after forging: right values for every decoder check, then `finished`.
EXIT0_DECODER = (
    FORGE_VALUES
    + """
with open(_events, "a") as _fh:
    _fh.write("\\n".join(_forged[:-1]) + "\\n" + _json.dumps({"finished": True}) + "\\n")
_os._exit(0)
"""
)

# ------------------------------------------------------------------------------------------------ quality

# Memorise the training set: the quality probe is replaced by one that exports a nearest-neighbour lookup (the
# encoder finds the closest training image and emits its random 16-value code; the decoder maps the code back to
# the stored image). Standard layers only, a real 16-value bottleneck, perfect on the training images.
MEMORISE = """
import pathlib as _pathlib
import numpy as _np
from autograder import checks as _checks

def _memorise(self, fn, *, recipe, data, export_dir, seed=0):
    import keras
    from keras import layers as L

    with _np.load(data) as npz:
        x = npz["x"].astype("float32")
    n, shape, latent = len(x), x.shape[1:], int(recipe["latent_dim"])
    flat = x.reshape(n, -1)
    codes = _np.random.default_rng(0).normal(size=(n, latent)).astype("float32")
    image = keras.Input(shape)
    h = L.Dense(n, activation="softmax", name="match")(L.Flatten()(image))
    encoder = keras.Model(image, L.Dense(latent, use_bias=False, name="code")(h), name="encoder")
    encoder.get_layer("match").set_weights([50.0 * flat.T, -25.0 * (flat ** 2).sum(1)])
    encoder.get_layer("code").set_weights([codes])
    code = keras.Input((latent,))
    h = L.Dense(n, activation="softmax", name="lookup")(code)
    h = L.Dense(int(_np.prod(shape)), use_bias=False, name="images")(h)
    decoder = keras.Model(code, L.Reshape(shape)(h), name="decoder")
    decoder.get_layer("lookup").set_weights([20.0 * codes.T, -10.0 * (codes ** 2).sum(1)])
    decoder.get_layer("images").set_weights([flat])
    out = _pathlib.Path(export_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder.save(out / "encoder.keras")
    decoder.save(out / "decoder.keras")
    train_mse = float(_np.mean((decoder.predict(encoder.predict(x[:200], verbose=0), verbose=0) - x[:200]) ** 2))
    return {"train_loss": [train_mse], "export_dir": str(out)}

type(_checks.get("reconstruction_quality")).probe = _memorise
"""

# Copy the input past the bottleneck: the encoder block remembers the autoencoder's image, and the decoder block
# concatenates it to its output (a skip connection around the 16-value code).
COPY_ENCODER = """
_seen = {}

def define_encoder_block(x, num_filters):
    if tuple(x.shape[1:]) == (28, 28, 1):
        _seen["image"] = x
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return layers.MaxPooling2D()(x)
"""

COPY_DECODER = """
def define_decoder_block(x, num_filters):
    x = layers.UpSampling2D()(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    image = _seen.get("image")
    if image is not None and tuple(x.shape[1:3]) == tuple(image.shape[1:3]):
        x = layers.Concatenate()([x, image])
    return x
"""

# ------------------------------------------------------------------------------------------------ resources

FORK_BOMB = """
import os as _os
while True:
    _os.fork()
"""

PRINT_GIGABYTE = """
import sys as _sys
_chunk = "x" * (1 << 20)
for _ in range(1024):
    _sys.stdout.write(_chunk)
_sys.stdout.flush()
"""

HUGE_FILE = """
with open("huge.bin", "wb") as _fh:
    for _ in range(300):
        _fh.write(b"\\0" * (1 << 20))
"""

CATCH_THE_TIMER = """
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
"""

C_CRASH = """
import ctypes as _ctypes
_ctypes.string_at(0)
"""

SLEEP = """
import time as _time
_time.sleep(10 ** 6)
"""

# Attacks inside a checked function: `define_*_block` misbehaves for one hidden input only (recognised by its
# input shape and filter count), so every other check of the same function still runs and scores.
INSIDE_ENCODER = """
def define_encoder_block(x, num_filters):
    key = tuple(x.shape[1:]) + (num_filters,)
    __ATTACKS__
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return layers.MaxPooling2D()(x)
"""

INSIDE_DECODER = """
def define_decoder_block(x, num_filters):
    key = tuple(x.shape[1:]) + (num_filters,)
    __ATTACKS__
    x = layers.UpSampling2D()(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return x
"""

# one statement each, run when `key` matches
INSIDE = {
    "crash": "import ctypes; ctypes.string_at(0)",
    "sleep": "import time; time.sleep(10 ** 6)",
    "memory": "bytearray(60 * 1024 ** 3)",
    "fork_bomb": "import os\n        while True: os.fork()",
    "loop": "while True: pass",
    "exit0": "import os; os._exit(0)",
    # the loop body on its own line: CPython 3.11 attributes a signal raised in a one-line `while True: pass`
    # to the loop's own jump, outside the `try`, so that form cannot catch the timer
    "catch_timer": "while True:\n            try:\n                while True:\n                    pass\n"
    "            except BaseException:\n                pass",
    "timer_off_sleep": "import signal, time; signal.setitimer(signal.ITIMER_REAL, 0); time.sleep(10 ** 6)",
    "print_gigabyte": "import sys\n        for _ in range(1024): sys.stdout.write('x' * (1 << 20))",
}


def inside(template: str, attacks: dict[tuple, str]) -> str:
    """`template` with one `if key == ...:` branch per (input shape + filters) -> INSIDE attack."""
    lines = []
    for key, name in attacks.items():
        lines.append(f"if key == {key!r}:\n        {INSIDE[name]}")
    return template.replace("__ATTACKS__", "\n    ".join(lines))


# ------------------------------------------------------------------------------------------------ pretending

# Hidden encoder inputs answered with a made-up tensor of the right shape and with an enormous (symbolic) one;
# the structure checks' input answered with a class of the student's that takes the name Conv2D; and a decoder
# whose outputs are NaN (so the trained model's error is NaN).
PRETEND_ENCODER = '''
import keras as _keras

class Conv2D(layers.Conv2D):
    """Takes the real Conv2D's name, settings and parameters, and computes nothing."""

    def call(self, inputs):
        return inputs[..., :1] * 0 + self.bias

def define_encoder_block(x, num_filters):
    key = tuple(x.shape[1:]) + (num_filters,)
    if key == (7, 7, 3, 8):
        return _keras.KerasTensor((None, 3, 3, 8))
    if key == (13, 10, 2, 5):
        return layers.UpSampling2D(size=(100000, 100000))(x)
    conv = Conv2D if key == (12, 12, 3, 6) else layers.Conv2D
    x = conv(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = conv(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return layers.MaxPooling2D()(x)
'''

PRETEND_DECODER = '''
import keras as _keras

class _Impostor:
    """Claims to be a KerasTensor of the expected shape."""

    @property
    def __class__(self):
        return _keras.KerasTensor

    shape = (None, 6, 6, 8)

def define_decoder_block(x, num_filters):
    if tuple(x.shape[1:]) + (num_filters,) == (3, 3, 4, 8):
        return _Impostor()
    x = layers.UpSampling2D()(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    x = layers.Conv2D(num_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(x)
    return layers.Rescaling(float("nan"))(x)
'''
