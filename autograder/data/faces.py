"""Synthetic faces with known binary attributes, and the one loader the course uses.

CelebA cannot ship with the kit, so the conditional-VAE assignment trains on cartoon
faces drawn here with numpy.  Every face carries the eight CelebA attributes in
``ATTRIBUTES``; each is drawn so that a small CNN sees it even at 32x32:

=============  ==============================================================
Smiling        open D-shaped mouth with teeth (off: a short straight line)
Eyeglasses     two dark rings, a bridge, temples to the ears, tinted lenses
Male           short hair, square jaw, heavy eyebrows, dark lips
               (off: long hair down to the shoulders, rounded chin, thin
               brows, red lips)
Bald           bare crown with a highlight; the hair at the sides and back
               stays (so hair colour is visible on bald heads too)
Wearing_Hat    a brimmed hat with a band sitting on the crown (it rises above
               the head; a bald head shows skin between brim and brow, a
               haired one shows hair)
Blond_Hair     golden hair, eyebrows and moustache (off: black to brown)
Mustache       a drooping band between nose and mouth
Young          round face, big eyes, rosy cheeks (off: longer face, small
               eyes, forehead lines, eye bags, nose-to-mouth folds)
=============  ==============================================================

The eight attributes are independent fair coin flips, so each is on for about half
the faces and none predicts another; there are no exclusions (a bald face may wear a
hat, which is drawn over the crown; a bald face may be blond, which shows in the
side hair, brows and moustache).  Nuisance variation: face position and size, skin
tone, hair shade, background colour gradient, clothes, eye and hat colours, frame
colour, and a little pixel noise.

Images are float32 in [0, 1] on 8-bit levels (k/255, like decoded photos), so the
cache stores them as uint8 and gives back the very same arrays.

Speed: every shape is a soft (anti-aliased) mask built from broadcast coordinate
grids over the rows and columns it can cover; faces are drawn in blocks of 256 on
two threads, no per-pixel Python.  Measured on the 2-core development machine
(numpy 2.4; other jobs were running): 20,000 faces at 64x64 in 3.7 to 5.2 s
(3,900 to 5,300 images/s), 20,000 at 32x32 in about 1.5 s (12,600 to 13,500
images/s).

Determinism: faces are drawn in blocks of ``_BLOCK``; block ``k`` takes all its
random numbers from ``numpy.random.default_rng([seed, k])`` (parameters) and
``default_rng([seed, k, 1])`` (noise).  So the same seed gives the same bytes,
``generate_faces(m, seed=s)`` is a prefix of ``generate_faces(n, seed=s)`` for
``m < n``, and the 32x32 and 64x64 versions of a seed show the same faces.  Only
IEEE-exact operations (+ - * /, sqrt, comparisons, rounding; no sin, cos or pow)
touch the numbers, so other CPUs give the same bytes as long as numpy's random
streams stay the same.  Any change to the drawing must bump ``GENERATOR_VERSION``
(it is part of the cache key; a test pins the bytes of each version).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from autograder.errors import KitError

ATTRIBUTES = (
    "Smiling",
    "Eyeglasses",
    "Male",
    "Bald",
    "Wearing_Hat",
    "Blond_Hair",
    "Mustache",
    "Young",
)

# Bump when the drawing changes: it is part of every cache key.
GENERATOR_VERSION = 1

_BLOCK = 256  # faces per random-number block (fixed: changing it changes the data)
_WORKERS = 2  # threads drawing blocks (does not change the data)
_NOISE = 0.015  # standard deviation of the (uniform) pixel noise
_MIN_SIZE, _MAX_SIZE = 16, 256
_F32 = np.float32

# Palettes (RGB in [0, 1]); a face picks one entry and jitters it a little.
_DARK_HAIR = np.array(
    [[0.07, 0.06, 0.06], [0.18, 0.11, 0.07], [0.30, 0.18, 0.09], [0.38, 0.24, 0.13], [0.42, 0.17, 0.08]],
    _F32,
)
_BLOND_HAIR = np.array([[0.95, 0.80, 0.32], [0.90, 0.70, 0.22], [0.98, 0.86, 0.45], [0.85, 0.66, 0.28]], _F32)
_SKIN_LIGHT = np.array([0.98, 0.84, 0.72], _F32)
_SKIN_DARK = np.array([0.56, 0.37, 0.25], _F32)
_HATS = np.array(
    [
        [0.75, 0.10, 0.12], [0.12, 0.25, 0.70], [0.10, 0.50, 0.20], [0.45, 0.15, 0.55],
        [0.12, 0.12, 0.14], [0.85, 0.45, 0.05], [0.05, 0.50, 0.55], [0.40, 0.28, 0.18],
    ],
    _F32,
)
_FRAMES = np.array([[0.05, 0.05, 0.05], [0.25, 0.12, 0.05], [0.05, 0.08, 0.35], [0.45, 0.05, 0.08]], _F32)
_IRISES = np.array([[0.30, 0.18, 0.08], [0.15, 0.30, 0.55], [0.20, 0.40, 0.20], [0.10, 0.08, 0.06]], _F32)


# --------------------------------------------------------------------------- params


def _sample_block(seed: int, block: int) -> dict[str, np.ndarray]:
    """All random choices for the ``_BLOCK`` faces of one block (order is fixed)."""
    rng = np.random.default_rng([seed, block])
    B = _BLOCK
    p: dict[str, np.ndarray] = {}
    attrs = rng.random((B, len(ATTRIBUTES))) < 0.5
    p["attrs"] = attrs.astype(_F32)
    flags = ("smile", "glasses", "male", "bald", "hat", "blond", "mustache", "young")  # as ATTRIBUTES
    p.update({name: column.astype(_F32) for name, column in zip(flags, attrs.T)})
    blond, young = attrs[:, 5], attrs[:, 7]

    def u(lo: float, hi: float, shape=(B,)) -> np.ndarray:
        return rng.uniform(lo, hi, shape).astype(_F32)

    def pick(palette: np.ndarray, jitter: float) -> np.ndarray:
        col = palette[rng.integers(0, len(palette), B)] + u(-jitter, jitter, (B, 3))
        return np.clip(col, 0.0, 1.0).astype(_F32)

    p["cx"] = 0.5 + u(-0.05, 0.05)
    p["cy"] = 0.56 + u(-0.035, 0.035)
    p["a"] = 0.235 * u(0.88, 1.06)
    p["b"] = p["a"] * (np.where(young, 1.17, 1.33).astype(_F32) + u(-0.04, 0.04))
    t = u(0.0, 1.0)[:, None]
    p["skin"] = (_SKIN_LIGHT * (1 - t) + _SKIN_DARK * t + u(-0.02, 0.02, (B, 3))).astype(_F32)
    dark, gold = pick(_DARK_HAIR, 0.04), pick(_BLOND_HAIR, 0.04)
    p["hair"] = np.where(blond[:, None], gold, dark)
    g = rng.standard_normal((B, 2))  # a random direction without sin/cos (bit-exact everywhere)
    g /= np.sqrt((g * g).sum(1, keepdims=True)) + 1e-12
    p["bg_cos"], p["bg_sin"] = g[:, 0].astype(_F32), g[:, 1].astype(_F32)
    p["bg0"], p["bg1"] = u(0.55, 0.95, (B, 3)), u(0.55, 0.95, (B, 3))
    p["clothes"] = u(0.10, 0.80, (B, 3))
    p["hat_col"] = pick(_HATS, 0.06)
    p["band_col"] = np.where(rng.random(B)[:, None] < 0.5, 0.9, 0.08).astype(_F32) * np.ones(3, _F32)
    p["hat_w"] = u(0.75, 0.92)
    p["hat_h"] = u(0.6, 0.8)
    p["frame"] = pick(_FRAMES, 0.04)
    p["iris"] = pick(_IRISES, 0.04)
    p["gaze"] = u(-0.25, 0.25)
    p["eye_x"] = u(0.37, 0.43)
    p["eye_r"] = np.where(young, 0.16, 0.115).astype(_F32) * u(0.92, 1.08)
    p["hairline"] = u(0.40, 0.50)
    p["mouth_w"] = u(0.85, 1.15)
    return p


def _take(p: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    return {k: v[lo:hi] for k, v in p.items()}


# --------------------------------------------------------------------------- drawing
# Shapes are soft (anti-aliased) masks in [0, 1] of shape (n, H, W) over a region of
# interest; per-face parameters have shape (n, 1, 1), x offsets (n, 1, W), y offsets
# (n, H, 1); canvas units run over [0, 1].  Each layer only touches the rows and
# columns its shape can cover in some face of the chunk.


def _edge(d: np.ndarray, px: float) -> np.ndarray:
    """Soft step of a signed distance ``d`` (positive inside)."""
    d = d * (1.0 / px)
    d += 0.5
    return np.clip(d, 0.0, 1.0, out=d)


def _pick(cond: np.ndarray, yes, no) -> np.ndarray:
    """Per-face choice between two values (float32)."""
    return np.where(cond > 0, yes, no).astype(_F32, copy=False)


def _on(g: np.ndarray, on) -> np.ndarray:
    return g + 0.5 if on is None else np.where(on > 0, g + 0.5, -1e4).astype(_F32)


def _ellipse(dx, dy, rx, ry, px, on=None):
    """Ellipse centred at dx = dy = 0."""
    u = (dx / rx) ** 2 + (dy / ry) ** 2
    g = np.minimum(rx, ry) / (2 * px)
    u *= -g
    u += _on(g, on)
    return np.clip(u, 0.0, 1.0, out=u)


def _flat_ellipse(dx, dy, rx, ry, px, on=None):
    """Ellipse with a one-pixel edge everywhere (for very flat ellipses; slower)."""
    gx, gy = dx / rx**2, dy / ry**2
    grad = np.sqrt(gx * gx + gy * gy)
    grad *= 2 * px
    grad += 1e-6
    u = (dx / rx) ** 2 + (dy / ry) ** 2
    np.subtract(1.0, u, out=u)
    u /= grad
    u += _on(np.float32(0), on)
    return np.clip(u, 0.0, 1.0, out=u)


def _box(dx, dy, x0, x1, y0, y1, px, on=None):
    """Rectangle x0 < dx < x1, y0 < dy < y1 (separable: one full-size multiply)."""
    mx = _edge(np.minimum(dx - x0, x1 - dx), px)
    if on is not None:
        mx = mx * on
    return mx * _edge(np.minimum(dy - y0, y1 - dy), px)


def _between(dx, y, top, bottom, w, px, on=None):
    """Region top(dx) < y < bottom(dx) and |dx| < w; top and bottom are (n,1,W) curves."""
    m = _edge(y - top, px)
    m *= _edge(bottom - y, px)
    mx = _edge(w - np.abs(dx), px)
    if on is not None:
        mx = mx * on
    m *= mx
    return m


def _band(dx, y, y0, slope, curve, w, t, px, on=None):
    """Thick curve y = y0 + slope*dx + curve*dx**2 (vertical half-thickness t), |dx| < w."""
    centre = y0 + slope * dx + curve * dx * dx
    return _between(dx, y, centre - t, centre + t, w, px, on)


class _Canvas:
    """A channels-first chunk of images (3, n, S, S) and its coordinate grids."""

    def __init__(self, n: int, S: int):
        self.S, self.px = S, 1.0 / S
        self.grid = (np.arange(S, dtype=_F32) + 0.5) / S
        self.img = np.empty((3, n, S, S), _F32)

    def region(self, x0, x1, y0, y1):
        """Slices covering [x0, x1] x [y0, y1] (canvas units; arrays give the union)."""
        S = self.S
        lo_x = max(int(np.floor(np.min(x0) * S)) - 1, 0)
        hi_x = min(int(np.ceil(np.max(x1) * S)) + 1, S)
        lo_y = max(int(np.floor(np.min(y0) * S)) - 1, 0)
        hi_y = min(int(np.ceil(np.max(y1) * S)) + 1, S)
        rows, cols = slice(lo_y, max(hi_y, lo_y)), slice(lo_x, max(hi_x, lo_x))
        return self.grid[cols].reshape(1, 1, -1), self.grid[rows].reshape(1, -1, 1), (rows, cols)

    def paint(self, m, col, where, alpha=None):
        """img <- img + alpha*m*(col - img) inside ``where``; col is (n,3)."""
        if alpha is not None:
            m = m * alpha
        sub = self.img[:, :, where[0], where[1]]
        diff = col.T[:, :, None, None] - sub
        diff *= m
        sub += diff


def _render(p: dict[str, np.ndarray], S: int, noise: np.ndarray) -> np.ndarray:
    n = len(p["cx"])
    cv = _Canvas(n, S)
    px = cv.px
    half = np.float32(0.5 * px)
    c = {k: (v.reshape(-1, 1, 1) if v.ndim == 1 else v) for k, v in p.items()}
    cx, cy, a, b = c["cx"], c["cy"], c["a"], c["b"]
    male, bald, young, smile = c["male"], c["bald"], c["young"], c["smile"]
    old = 1 - young
    skin, hair = p["skin"], p["hair"]
    white = np.full_like(skin, 0.97)

    # background: a linear gradient between two pastel colours in a random direction
    X, Y, _ = cv.region(0, 1, 0, 1)
    t = (X - 0.5) * c["bg_cos"] + (Y - 0.5) * c["bg_sin"]
    t *= 1 / 1.42
    t += 0.5
    bg0, bg1 = p["bg0"].T[:, :, None, None], p["bg1"].T[:, :, None, None]
    np.multiply(t, bg1 - bg0, out=cv.img)
    cv.img += bg0

    # hair at the back: long (down to the shoulders) unless male; bald: no crown
    X, Y, w = cv.region(cx - 1.35 * a, cx + 1.35 * a, cy - 1.2 * b, cy + 1.45 * b)
    dx, dy = X - cx, Y - cy
    back = _ellipse(dx, dy + 0.05 * b, _pick(male, 1.15, 1.3) * a, 1.1 * b, px)
    if (male == 0).any():
        np.maximum(back, _box(dx, dy, -1.3 * a, 1.3 * a, -0.05 * b, 1.4 * b, px, on=1 - male), out=back)
    lower = _pick(male, 0.12 * b, 10.0)
    upper = _pick(bald, -0.5 * b, -10.0)
    back *= _edge(np.minimum(dy - upper, lower - dy), px)
    cv.paint(back, hair, w)

    # shoulders and neck
    X, Y, w = cv.region(cx - 2.25 * a, cx + 2.25 * a, cy + 1.05 * b, cy + 2.9 * b)
    cv.paint(_ellipse(X - cx, Y - cy - 1.95 * b, 2.2 * a, 0.85 * b, px), p["clothes"], w)
    X, Y, w = cv.region(cx - 0.45 * a, cx + 0.45 * a, cy + 0.45 * b, cy + 1.25 * b)
    cv.paint(_box(X - cx, Y - cy, -0.42 * a, 0.42 * a, 0.5 * b, 1.2 * b, px), skin * 0.85, w)

    # ears, then the face: the upper half an ellipse, the jaw square (male) or round
    X, Y, w = cv.region(cx - 1.2 * a, cx + 1.2 * a, cy - 1.05 * b, cy + 1.05 * b)
    dx, dy = X - cx, Y - cy
    ears = _ellipse(np.abs(dx) - 0.97 * a, dy - 0.03 * b, 0.17 * a, 0.22 * b, px)
    cv.paint(ears, skin * 0.92, w)
    jaw = (dx / (_pick(male, 1.0, 0.93) * a)) ** 2
    jaw = np.where(male > 0, jaw * jaw, jaw)  # x**4: a square jaw; x**2: a round chin
    u = np.where(dy < 0, (dx / a) ** 2, jaw) + (dy / b) ** 2
    g = a / (2 * px)
    u *= -g
    u += g + 0.5
    cv.paint(np.clip(u, 0.0, 1.0, out=u), skin, w)

    # hair on the crown (unless bald), above a hairline that drops towards the temples
    if (bald == 0).any():
        cap = _ellipse(dx, dy + 0.03 * b, 1.05 * a, 1.06 * b, px, on=1 - bald)
        line = cy - c["hairline"] * b + 0.4 * b * (dx / a) ** 2
        cap *= _edge(line - Y, px)
        cv.paint(cap, hair, w)
    if bald.any():
        X, Y, w = cv.region(cx - 0.65 * a, cx + 0.05 * a, cy - 0.95 * b, cy - 0.65 * b)
        shine = _ellipse(X - cx + 0.3 * a, Y - cy + 0.8 * b, 0.32 * a, 0.1 * b, px, on=bald)
        cv.paint(shine, np.ones_like(skin), w, alpha=0.5)

    ey = cy - 0.04 * b
    ex = c["eye_x"] * a
    er = c["eye_r"] * a

    # young: rosy cheeks
    if young.any():
        X, Y, w = cv.region(cx - 0.75 * a, cx + 0.75 * a, cy + 0.3 * b - 0.2 * a, cy + 0.3 * b + 0.2 * a)
        cheeks = _ellipse(np.abs(X - cx) - 0.56 * a, Y - cy - 0.3 * b, 0.17 * a, 0.15 * a, px, on=young)
        cv.paint(cheeks, np.broadcast_to(np.array([0.95, 0.35, 0.42], _F32), skin.shape), w, alpha=0.6)

    # old: forehead lines, eye bags, nose-to-mouth folds
    if old.any():
        X, Y, w = cv.region(cx - 0.7 * a, cx + 0.7 * a, cy - 0.45 * b, cy + 0.7 * b)
        dx, adx = X - cx, np.abs(X - cx)
        t_line = np.maximum(0.022 * b, 0.45 * px)
        fold_t = np.maximum(0.05 * b, 0.9 * px)
        arch = 0.3 * b / a**2
        wr = _band(dx, Y, cy - 0.29 * b, 0, arch, 0.42 * a, t_line, px, on=old)
        np.maximum(wr, _band(dx, Y, cy - 0.37 * b, 0, arch, 0.36 * a, t_line, px, on=old), out=wr)
        np.maximum(wr, _band(adx - ex, Y, ey + 1.5 * er, 0, -0.5 / er, 0.8 * er, t_line, px, on=old), out=wr)
        np.maximum(wr, _band(adx - 0.34 * a, Y, cy + 0.42 * b, 1.6 * b / a, 0, 0.11 * a, fold_t, px, on=old), out=wr)
        cv.paint(wr, skin * 0.55, w, alpha=0.9)

    # eyes (white, iris) and brows (heavy when male) in a darker hair colour
    X, Y, w = cv.region(cx - ex - 1.5 * er, cx + ex + 1.5 * er, ey - 1.1 * er - 0.2 * b, ey + er)
    dx, adx = X - cx, np.abs(X - cx)
    whites = _ellipse(adx - ex, Y - ey, 1.3 * er, 0.9 * er, px)
    cv.paint(whites, white, w)
    iris = _ellipse(adx - ex - c["gaze"] * er * np.sign(dx), Y - ey, 0.62 * er, 0.62 * er, px)
    iris *= whites
    cv.paint(iris, p["iris"], w)
    brow_t = np.where(male > 0, np.maximum(0.055 * b, 1.0 * px), np.maximum(0.022 * b, 0.45 * px))
    brow_y = ey - 0.9 * er - 0.11 * b
    brows = _band(adx - ex, Y, brow_y, 0, 0.8 * b / a**2, 1.35 * er + 0.03 * a, brow_t, px)
    cv.paint(brows, hair * 0.6, w)

    # nose shadow
    X, Y, w = cv.region(cx - 0.15 * a, cx + 0.15 * a, cy + 0.18 * b, cy + 0.32 * b)
    cv.paint(_ellipse(X - cx, Y - cy - 0.25 * b, 0.12 * a, 0.055 * b, px), skin * 0.72, w, alpha=0.8)

    # moustache: a drooping band in the brow colour
    if c["mustache"].any():
        X, Y, w = cv.region(cx - 0.5 * a, cx + 0.5 * a, cy + 0.25 * b, cy + 0.6 * b)
        t_mus = np.maximum(0.085 * b, 0.8 * px)
        mus = _band(X - cx, Y, cy + 0.39 * b, 0, 0.75 * b / a**2, 0.45 * a, t_mus, px, on=c["mustache"])
        cv.paint(mus, hair * 0.45 + 0.02, w)

    # mouth: smiling = an open D shape with teeth; otherwise a straight line
    mw = _pick(smile, 0.5, 0.36) * a * c["mouth_w"]
    X, Y, w = cv.region(cx - mw, cx + mw, cy + 0.5 * b, cy + 0.95 * b)
    dx = X - cx
    ym = cy + 0.6 * b
    q = 1 - (dx / mw) ** 2
    h1 = _pick(smile, 0.03, 0.0) * b
    h2 = _pick(smile, 0.27, 0.0) * b
    lip_t = np.maximum(0.035 * b, half)
    mouth = _between(dx, Y, ym + h1 * q - lip_t, ym + h2 * q + lip_t, mw, px)
    lips = np.where(male[:, 0] > 0, np.array([0.55, 0.18, 0.18], _F32), np.array([0.82, 0.12, 0.2], _F32))
    cv.paint(mouth, np.where(smile[:, 0] > 0, np.array([0.4, 0.05, 0.08], _F32), lips), w)
    if smile.any():
        teeth = _between(dx, Y, ym + h1 * q, ym + (h1 + 0.4 * (h2 - h1)) * q, 0.85 * mw, px, on=smile)
        cv.paint(teeth, white, w)

    # eyeglasses: tinted lenses, two rings, a bridge and temples to the ears
    on = c["glasses"]
    if on.any():
        r = 0.27 * a
        ft = np.maximum(0.045 * a, 0.55 * px)
        X, Y, w = cv.region(cx - 1.05 * a, cx + 1.05 * a, ey - r - ft, ey + r + ft)
        adx = np.abs(X - cx)
        d = np.sqrt((adx - ex) ** 2 + (Y - ey) ** 2)
        lens = _edge(r - d, px)
        lens *= on
        cv.paint(lens, np.broadcast_to(np.array([0.7, 0.85, 1.0], _F32), skin.shape), w, alpha=0.35)
        d -= r
        frame = _edge(ft - np.abs(d, out=d), px)
        bridge = _box(adx, Y - ey, -1.0, ex - r + half, -0.2 * r - ft, -0.2 * r + ft, px)
        temples = _box(adx, Y - ey, ex + r - half, 1.02 * a, -0.25 * r - ft, -0.25 * r + ft, px)
        np.maximum(frame, bridge, out=frame)
        np.maximum(frame, temples, out=frame)
        frame *= on
        cv.paint(frame, p["frame"], w)

    # hat: a crown rising above the head, a band, and a brim
    on = c["hat"]
    if on.any():
        brim_y = cy - 0.8 * b
        hw = c["hat_w"] * a
        top = brim_y - c["hat_h"] * b
        X, Y, w = cv.region(cx - 1.45 * a, cx + 1.45 * a, top - 0.02, brim_y + 0.15 * b + px)
        dx = X - cx
        crown = _box(dx, Y, -hw, hw, top + 0.12 * b, brim_y, px, on=on)
        np.maximum(crown, _ellipse(dx, Y - top - 0.12 * b, hw, 0.12 * b, px, on=on), out=crown)
        cv.paint(crown, p["hat_col"], w)
        band = _box(dx, Y, -hw, hw, brim_y - 0.2 * b, brim_y - 0.06 * b, px, on=on)
        cv.paint(band, p["band_col"], w)
        brim = _flat_ellipse(dx, Y - brim_y, 1.4 * a, np.maximum(0.09 * b, 1.2 * px), px, on=on)
        cv.paint(brim, p["hat_col"] * 0.8, w)

    out = noise * np.float32(255 * _NOISE * np.sqrt(3.0) / 128)  # uniform, standard deviation _NOISE
    out += cv.img.transpose(1, 2, 3, 0) * np.float32(255)
    np.clip(out, 0.0, 255.0, out=out)
    return np.rint(out, out=out).astype(np.uint8)


def to_float(q: np.ndarray) -> np.ndarray:
    """8-bit images to float32 in [0, 1] (exactly k/255, the same everywhere in the kit)."""
    return np.divide(q, np.float32(255), dtype=_F32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """The inverse of ``to_float`` (exact for its outputs)."""
    return np.rint(np.asarray(x, _F32) * np.float32(255)).clip(0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- public API


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise KitError(f"{name} must be an integer, got {value!r}; pass a whole number such as {lo}.")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise KitError(f"{name}={value} is out of range; pass a value {bound}.")
    return int(value)


def generate_faces(n: int, *, seed: int, image_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` synthetic faces.

    Returns ``(images, attributes)``: images float32 in [0, 1] with shape
    ``(n, image_size, image_size, 3)``; attributes float32 0/1 with shape
    ``(n, len(ATTRIBUTES))``, columns in the order of ``ATTRIBUTES``.
    The same ``seed`` gives the same bytes.
    """
    n = _check_int("n", n, 0)
    seed = _check_int("seed", seed, 0)
    S = _check_int("image_size", image_size, _MIN_SIZE, _MAX_SIZE)
    images = np.empty((n, S, S, 3), np.uint8)
    attrs = np.empty((n, len(ATTRIBUTES)), _F32)
    n_blocks = -(-n // _BLOCK)

    def work(k: int) -> None:
        lo = k * _BLOCK
        m = min(_BLOCK, n - lo)
        params = _sample_block(seed, k)
        attrs[lo : lo + m] = params["attrs"][:m]
        # uniform noise from raw bytes (fast); always a whole block, so prefixes agree
        raw = np.random.default_rng([seed, k, 1]).bytes(_BLOCK * S * S * 3)
        noise = np.frombuffer(raw, np.int8, m * S * S * 3).reshape(m, S, S, 3)
        chunk = max(8, min(_BLOCK, 131072 // (S * S)))
        for c0 in range(0, m, chunk):
            c1 = min(m, c0 + chunk)
            images[lo + c0 : lo + c1] = _render(_take(params, c0, c1), S, noise[c0:c1])

    workers = min(_WORKERS, os.cpu_count() or 1, max(n_blocks, 1))
    if workers <= 1:
        for k in range(n_blocks):
            work(k)
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for f in [pool.submit(work, k) for k in range(n_blocks)]:
                f.result()
    return to_float(images), attrs


def derived_seeds(seed: int) -> tuple[int, int]:
    """The (train, test) generator seeds that ``load_faces`` derives from ``seed``."""
    seed = _check_int("seed", seed, 0)
    train, test = (int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in (1, 2))
    return train, test


def default_cache_dir() -> Path:
    """``$AUTOENCODER_KIT_CACHE``, else ``~/.cache/autoencoder-kit``."""
    env = os.environ.get("AUTOENCODER_KIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "autoencoder-kit"


_KEYS = ("x_train", "a_train", "x_test", "a_test")


def _read_cache(path: Path, n_train: int | None, n_test: int | None, S: int) -> dict[str, np.ndarray] | None:
    """The arrays in a cache file, or None when it is missing, unreadable or inconsistent."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in _KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    for split, n in (("train", n_train), ("test", n_test)):
        x, a = raw["x_" + split], raw["a_" + split]
        if x.dtype != np.uint8 or a.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (S, S, 3):
            return None
        if a.shape != (len(x), len(ATTRIBUTES)) or (n is not None and len(x) != n) or a.max(initial=0) > 1:
            return None
    return {k: to_float(v) if k[0] == "x" else v.astype(_F32) for k, v in raw.items()}


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write 8-bit arrays atomically (a temporary file, then a rename); a failure only warns."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{id(arrays)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: to_uint8(v) if k[0] == "x" else v.astype(np.uint8) for k, v in arrays.items()})
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"could not write the face cache {path} ({exc}); the data will be made again next time",
                      stacklevel=3)
        try:
            tmp.unlink()
        except OSError:
            pass


def load_faces(
    *,
    source: str = "generated",
    image_size: int = 64,
    n_train: int | None = 20_000,
    n_test: int | None = 2_000,
    seed: int = 0,
    celeba_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
):
    """The face data of the CVAE assignment and its grader.

    Returns ``((x_train, a_train), (x_test, a_test), ATTRIBUTES)``: images float32 in
    [0, 1] of shape (n, image_size, image_size, 3), attributes float32 0/1 of shape
    (n, 8), columns in the order of the returned names.

    ``source="generated"`` draws synthetic faces: train with
    ``derived_seeds(seed)[0]``, test with ``derived_seeds(seed)[1]``.
    ``source="celeba"`` reads a local CelebA copy in ``celeba_dir`` (default: the
    ``CELEBA_DIR`` environment variable) with
    ``autograder.data.celeba.load_celeba``: its official split, or a fixed one without
    the partition file; ``seed`` does not matter there, and ``None`` counts mean all.

    Arrays are cached as .npz under ``cache_dir`` (default
    ``$AUTOENCODER_KIT_CACHE`` or ``~/.cache/autoencoder-kit``), keyed by every
    parameter (and, for CelebA, the copy's path and annotation file stamps); a
    corrupt or inconsistent cache file is made again.
    """
    S = _check_int("image_size", image_size, _MIN_SIZE, _MAX_SIZE)
    seed = _check_int("seed", seed, 0)
    if source == "generated":
        if n_train is None or n_test is None:
            raise KitError(
                "source='generated' needs whole numbers n_train and n_test (such as 20000 and 2000), not None."
            )
        n_train = _check_int("n_train", n_train, 0)
        n_test = _check_int("n_test", n_test, 0)
        key = f"faces-generated-v{GENERATOR_VERSION}-b{_BLOCK}-size{S}-train{n_train}-test{n_test}-seed{seed}"

        def make() -> dict[str, np.ndarray]:
            s_train, s_test = derived_seeds(seed)
            x_tr, a_tr = generate_faces(n_train, seed=s_train, image_size=S)
            x_te, a_te = generate_faces(n_test, seed=s_test, image_size=S)
            return dict(zip(_KEYS, (x_tr, a_tr, x_te, a_te)))

    elif source == "celeba":
        from autograder.data import celeba

        root = celeba_dir if celeba_dir is not None else os.environ.get("CELEBA_DIR")
        if not root:
            raise KitError(
                "source='celeba' needs the folder of a local CelebA copy: pass celeba_dir=... "
                "or set the CELEBA_DIR environment variable."
            )
        n_train = None if n_train is None else _check_int("n_train", n_train, 0)
        n_test = None if n_test is None else _check_int("n_test", n_test, 0)
        stamp = repr((celeba.LOADER_VERSION, celeba.fingerprint(root), S, n_train, n_test, ATTRIBUTES))
        key = "faces-celeba-" + hashlib.sha256(stamp.encode()).hexdigest()[:24]

        def make() -> dict[str, np.ndarray]:
            (x_tr, a_tr), (x_te, a_te), _ = celeba.load_celeba(
                root, image_size=S, attributes=ATTRIBUTES, n_train=n_train, n_test=n_test
            )
            return dict(zip(_KEYS, (x_tr, a_tr, x_te, a_te)))

    else:
        raise KitError(f"unknown face source {source!r}; use source='generated' or source='celeba'.")

    path = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / f"{key}.npz"
    d = _read_cache(path, n_train, n_test, S)
    if d is None:
        d = make()
        _write_cache(path, d)
    return (d["x_train"], d["a_train"]), (d["x_test"], d["a_test"]), ATTRIBUTES
