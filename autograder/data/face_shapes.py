"""The soft shapes the synthetic faces are drawn with, and the canvas they are painted on.

A shape is an anti-aliased mask in [0, 1] of shape (n, H, W) over a region of interest of the canvas: per-face
parameters have shape (n, 1, 1), x offsets (n, 1, W), y offsets (n, H, 1), and canvas units run over [0, 1]. Each
layer of a face touches only the rows and columns its shape can cover in some face of the chunk
(`Canvas.region`). Only IEEE-exact operations are used (see face_drawing.py's note on determinism): any change
here changes the data and must bump `faces.GENERATOR_VERSION`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_F32 = np.float32


def edge(d: np.ndarray, px: float) -> np.ndarray:
    """Soft step of a signed distance ``d`` (positive inside)."""
    d = d * (1.0 / px)
    d += 0.5
    return np.clip(d, 0.0, 1.0, out=d)


def choose(cond: np.ndarray, yes, no) -> np.ndarray:
    """Per-face choice between two values (float32)."""
    return np.where(cond > 0, yes, no).astype(_F32, copy=False)


def _on(g: np.ndarray | np.float32, on) -> np.ndarray | np.floating[Any]:
    return g + 0.5 if on is None else np.where(on > 0, g + 0.5, -1e4).astype(_F32)


def ellipse(dx, dy, rx, ry, px, on=None):
    """Ellipse centred at dx = dy = 0."""
    u = (dx / rx) ** 2 + (dy / ry) ** 2
    g = np.minimum(rx, ry) / (2 * px)
    u *= -g
    u += _on(g, on)
    return np.clip(u, 0.0, 1.0, out=u)


def flat_ellipse(dx, dy, rx, ry, px, on=None):
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


def box(dx, dy, x0, x1, y0, y1, px, on=None):
    """Rectangle x0 < dx < x1, y0 < dy < y1 (separable: one full-size multiply)."""
    mx = edge(np.minimum(dx - x0, x1 - dx), px)
    if on is not None:
        mx = mx * on
    return mx * edge(np.minimum(dy - y0, y1 - dy), px)


def between(dx, y, top, bottom, w, px, on=None):
    """Region top(dx) < y < bottom(dx) and |dx| < w; top and bottom are (n,1,W) curves."""
    m = edge(y - top, px)
    m *= edge(bottom - y, px)
    mx = edge(w - np.abs(dx), px)
    if on is not None:
        mx = mx * on
    m *= mx
    return m


def band(dx, y, y0, slope, curve, w, t, px, on=None):
    """Thick curve y = y0 + slope*dx + curve*dx**2 (vertical half-thickness t), |dx| < w."""
    centre = y0 + slope * dx + curve * dx * dx
    return between(dx, y, centre - t, centre + t, w, px, on)


class Canvas:
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
