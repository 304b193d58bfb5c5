"""Drawing the synthetic attribute faces: the random choices of a block of faces, and the faces they give.

CelebA cannot ship with the kit, so the conditional-VAE assignment trains on cartoon faces drawn here with numpy
(faces.py generates and caches them). Every face carries the eight CelebA attributes in ``ATTRIBUTES``, each drawn
so that a small CNN sees it even at 32x32:

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

The attributes are independent fair coin flips: each is on for about half the faces and none predicts another. There
are no exclusions (a bald face may wear a hat, drawn over the crown; a bald face may be blond, which shows in the
side hair, brows and moustache). Nuisance variation: face position and size, skin tone, hair shade, background
gradient, clothes, eye and hat colours, frame colour, and a little pixel noise.

Images come out as 8-bit levels (``render`` returns uint8; ``to_float`` gives float32 k/255, like decoded photos),
so a cache can store them as uint8 and give back the very same arrays. Every layer is a soft mask from
face_shapes.py, computed from broadcast coordinate grids: no per-pixel Python.

Determinism: only IEEE-exact operations (+ - * /, sqrt, comparisons, rounding; no sin, cos or pow) touch the
numbers, so other CPUs give the same bytes as long as numpy's random streams stay the same. Any change to what this
module draws must bump ``faces.GENERATOR_VERSION`` (part of the cache key; a test pins the bytes of each version).
"""

from __future__ import annotations

import numpy as np

from .face_shapes import Canvas, band, between, box, choose, edge, ellipse, flat_ellipse

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

BLOCK = 256  # faces per random-number block (fixed: changing it changes the data)
_NOISE = 0.015  # standard deviation of the (uniform) pixel noise
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
        [0.75, 0.10, 0.12],
        [0.12, 0.25, 0.70],
        [0.10, 0.50, 0.20],
        [0.45, 0.15, 0.55],
        [0.12, 0.12, 0.14],
        [0.85, 0.45, 0.05],
        [0.05, 0.50, 0.55],
        [0.40, 0.28, 0.18],
    ],
    _F32,
)
_FRAMES = np.array([[0.05, 0.05, 0.05], [0.25, 0.12, 0.05], [0.05, 0.08, 0.35], [0.45, 0.05, 0.08]], _F32)
_IRISES = np.array([[0.30, 0.18, 0.08], [0.15, 0.30, 0.55], [0.20, 0.40, 0.20], [0.10, 0.08, 0.06]], _F32)


# --------------------------------------------------------------------------- parameters


def sample_block(seed: int, block: int) -> dict[str, np.ndarray]:
    """All random choices for the ``BLOCK`` faces of one block (order is fixed)."""
    rng = np.random.default_rng([seed, block])
    B = BLOCK
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


def take(p: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    return {k: v[lo:hi] for k, v in p.items()}


# --------------------------------------------------------------------------- drawing


def render(p: dict[str, np.ndarray], S: int, noise: np.ndarray) -> np.ndarray:
    n = len(p["cx"])
    cv = Canvas(n, S)
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
    back = ellipse(dx, dy + 0.05 * b, choose(male, 1.15, 1.3) * a, 1.1 * b, px)
    if (male == 0).any():
        np.maximum(back, box(dx, dy, -1.3 * a, 1.3 * a, -0.05 * b, 1.4 * b, px, on=1 - male), out=back)
    lower = choose(male, 0.12 * b, 10.0)
    upper = choose(bald, -0.5 * b, -10.0)
    back *= edge(np.minimum(dy - upper, lower - dy), px)
    cv.paint(back, hair, w)

    # shoulders and neck
    X, Y, w = cv.region(cx - 2.25 * a, cx + 2.25 * a, cy + 1.05 * b, cy + 2.9 * b)
    cv.paint(ellipse(X - cx, Y - cy - 1.95 * b, 2.2 * a, 0.85 * b, px), p["clothes"], w)
    X, Y, w = cv.region(cx - 0.45 * a, cx + 0.45 * a, cy + 0.45 * b, cy + 1.25 * b)
    cv.paint(box(X - cx, Y - cy, -0.42 * a, 0.42 * a, 0.5 * b, 1.2 * b, px), skin * 0.85, w)

    # ears, then the face: the upper half an ellipse, the jaw square (male) or round
    X, Y, w = cv.region(cx - 1.2 * a, cx + 1.2 * a, cy - 1.05 * b, cy + 1.05 * b)
    dx, dy = X - cx, Y - cy
    ears = ellipse(np.abs(dx) - 0.97 * a, dy - 0.03 * b, 0.17 * a, 0.22 * b, px)
    cv.paint(ears, skin * 0.92, w)
    jaw = (dx / (choose(male, 1.0, 0.93) * a)) ** 2
    jaw = np.where(male > 0, jaw * jaw, jaw)  # x**4: a square jaw; x**2: a round chin
    u = np.where(dy < 0, (dx / a) ** 2, jaw) + (dy / b) ** 2
    g = a / (2 * px)
    u *= -g
    u += g + 0.5
    cv.paint(np.clip(u, 0.0, 1.0, out=u), skin, w)

    # hair on the crown (unless bald), above a hairline that drops towards the temples
    if (bald == 0).any():
        cap = ellipse(dx, dy + 0.03 * b, 1.05 * a, 1.06 * b, px, on=1 - bald)
        line = cy - c["hairline"] * b + 0.4 * b * (dx / a) ** 2
        cap *= edge(line - Y, px)
        cv.paint(cap, hair, w)
    if bald.any():
        X, Y, w = cv.region(cx - 0.65 * a, cx + 0.05 * a, cy - 0.95 * b, cy - 0.65 * b)
        shine = ellipse(X - cx + 0.3 * a, Y - cy + 0.8 * b, 0.32 * a, 0.1 * b, px, on=bald)
        cv.paint(shine, np.ones_like(skin), w, alpha=0.5)

    ey = cy - 0.04 * b
    ex = c["eye_x"] * a
    er = c["eye_r"] * a

    # young: rosy cheeks
    if young.any():
        X, Y, w = cv.region(cx - 0.75 * a, cx + 0.75 * a, cy + 0.3 * b - 0.2 * a, cy + 0.3 * b + 0.2 * a)
        cheeks = ellipse(np.abs(X - cx) - 0.56 * a, Y - cy - 0.3 * b, 0.17 * a, 0.15 * a, px, on=young)
        cv.paint(cheeks, np.broadcast_to(np.array([0.95, 0.35, 0.42], _F32), skin.shape), w, alpha=0.6)

    # old: forehead lines, eye bags, nose-to-mouth folds
    if old.any():
        X, Y, w = cv.region(cx - 0.7 * a, cx + 0.7 * a, cy - 0.45 * b, cy + 0.7 * b)
        dx, adx = X - cx, np.abs(X - cx)
        t_line = np.maximum(0.022 * b, 0.45 * px)
        fold_t = np.maximum(0.05 * b, 0.9 * px)
        arch = 0.3 * b / a**2
        wr = band(dx, Y, cy - 0.29 * b, 0, arch, 0.42 * a, t_line, px, on=old)
        np.maximum(wr, band(dx, Y, cy - 0.37 * b, 0, arch, 0.36 * a, t_line, px, on=old), out=wr)
        np.maximum(wr, band(adx - ex, Y, ey + 1.5 * er, 0, -0.5 / er, 0.8 * er, t_line, px, on=old), out=wr)
        np.maximum(wr, band(adx - 0.34 * a, Y, cy + 0.42 * b, 1.6 * b / a, 0, 0.11 * a, fold_t, px, on=old), out=wr)
        cv.paint(wr, skin * 0.55, w, alpha=0.9)

    # eyes (white, iris) and brows (heavy when male) in a darker hair colour
    X, Y, w = cv.region(cx - ex - 1.5 * er, cx + ex + 1.5 * er, ey - 1.1 * er - 0.2 * b, ey + er)
    dx, adx = X - cx, np.abs(X - cx)
    whites = ellipse(adx - ex, Y - ey, 1.3 * er, 0.9 * er, px)
    cv.paint(whites, white, w)
    iris = ellipse(adx - ex - c["gaze"] * er * np.sign(dx), Y - ey, 0.62 * er, 0.62 * er, px)
    iris *= whites
    cv.paint(iris, p["iris"], w)
    brow_t = np.where(male > 0, np.maximum(0.055 * b, 1.0 * px), np.maximum(0.022 * b, 0.45 * px))
    brow_y = ey - 0.9 * er - 0.11 * b
    brows = band(adx - ex, Y, brow_y, 0, 0.8 * b / a**2, 1.35 * er + 0.03 * a, brow_t, px)
    cv.paint(brows, hair * 0.6, w)

    # nose shadow
    X, Y, w = cv.region(cx - 0.15 * a, cx + 0.15 * a, cy + 0.18 * b, cy + 0.32 * b)
    cv.paint(ellipse(X - cx, Y - cy - 0.25 * b, 0.12 * a, 0.055 * b, px), skin * 0.72, w, alpha=0.8)

    # moustache: a drooping band in the brow colour
    if c["mustache"].any():
        X, Y, w = cv.region(cx - 0.5 * a, cx + 0.5 * a, cy + 0.25 * b, cy + 0.6 * b)
        t_mus = np.maximum(0.085 * b, 0.8 * px)
        mus = band(X - cx, Y, cy + 0.39 * b, 0, 0.75 * b / a**2, 0.45 * a, t_mus, px, on=c["mustache"])
        cv.paint(mus, hair * 0.45 + 0.02, w)

    # mouth: smiling = an open D shape with teeth; otherwise a straight line
    mw = choose(smile, 0.5, 0.36) * a * c["mouth_w"]
    X, Y, w = cv.region(cx - mw, cx + mw, cy + 0.5 * b, cy + 0.95 * b)
    dx = X - cx
    ym = cy + 0.6 * b
    q = 1 - (dx / mw) ** 2
    h1 = choose(smile, 0.03, 0.0) * b
    h2 = choose(smile, 0.27, 0.0) * b
    lip_t = np.maximum(0.035 * b, half)
    mouth = between(dx, Y, ym + h1 * q - lip_t, ym + h2 * q + lip_t, mw, px)
    lips = np.where(male[:, 0] > 0, np.array([0.55, 0.18, 0.18], _F32), np.array([0.82, 0.12, 0.2], _F32))
    cv.paint(mouth, np.where(smile[:, 0] > 0, np.array([0.4, 0.05, 0.08], _F32), lips), w)
    if smile.any():
        teeth = between(dx, Y, ym + h1 * q, ym + (h1 + 0.4 * (h2 - h1)) * q, 0.85 * mw, px, on=smile)
        cv.paint(teeth, white, w)

    # eyeglasses: tinted lenses, two rings, a bridge and temples to the ears
    on = c["glasses"]
    if on.any():
        r = 0.27 * a
        ft = np.maximum(0.045 * a, 0.55 * px)
        X, Y, w = cv.region(cx - 1.05 * a, cx + 1.05 * a, ey - r - ft, ey + r + ft)
        adx = np.abs(X - cx)
        d = np.sqrt((adx - ex) ** 2 + (Y - ey) ** 2)
        lens = edge(r - d, px)
        lens *= on
        cv.paint(lens, np.broadcast_to(np.array([0.7, 0.85, 1.0], _F32), skin.shape), w, alpha=0.35)
        d -= r
        frame = edge(ft - np.abs(d, out=d), px)
        bridge = box(adx, Y - ey, -1.0, ex - r + half, -0.2 * r - ft, -0.2 * r + ft, px)
        temples = box(adx, Y - ey, ex + r - half, 1.02 * a, -0.25 * r - ft, -0.25 * r + ft, px)
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
        crown = box(dx, Y, -hw, hw, top + 0.12 * b, brim_y, px, on=on)
        np.maximum(crown, ellipse(dx, Y - top - 0.12 * b, hw, 0.12 * b, px, on=on), out=crown)
        cv.paint(crown, p["hat_col"], w)
        hat_band = box(dx, Y, -hw, hw, brim_y - 0.2 * b, brim_y - 0.06 * b, px, on=on)
        cv.paint(hat_band, p["band_col"], w)
        brim = flat_ellipse(dx, Y - brim_y, 1.4 * a, np.maximum(0.09 * b, 1.2 * px), px, on=on)
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
