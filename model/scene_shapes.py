"""Drawing primitives of the procedural renderer (model/scenes.py): masks on a sample grid (xx, yy in pixels), and
the things added for the wider vocabulary (data v2), drawn from them. Pure numpy; no scene logic here."""
from __future__ import annotations

import numpy as np


def _tri(xx, yy, cx, ytop, yb, hw):
    h = max(yb - ytop, 1e-6)
    f = (yy - ytop) / h
    return (yy >= ytop) & (yy <= yb) & (np.abs(xx - cx) <= hw * f)


def _disk(xx, yy, cx, cy, r):
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _ell(xx, yy, cx, cy, rx, ry):
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def _rect(xx, yy, x0, y0, x1, y1):
    return (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)


def _poly(xx, yy, pts):
    """even-odd point-in-polygon test, pts: list of (x, y)."""
    inside = np.zeros(np.broadcast(xx, yy).shape, bool)
    n = len(pts)
    for i in range(n):
        x0, y0 = pts[i]
        x1, y1 = pts[(i + 1) % n]
        if y0 == y1:
            continue
        cross = ((yy >= min(y0, y1)) & (yy < max(y0, y1)))
        xint = x0 + (yy - y0) * (x1 - x0) / (y1 - y0)
        inside ^= cross & (xx < xint)
    return inside


def new_object_masks(t, cname, col, xx, yy, cx, base, s):
    """the shapes added for the wider vocabulary (issue 16): drawn from discs, rectangles and polygons."""
    dark = np.array((40, 40, 45), np.float32)
    light = np.array((235, 235, 235), np.float32)
    if t == "star":
        cy, ro, ri = base - 0.42 * s, 0.42 * s, 0.17 * s
        pts = [(cx + (ro if k % 2 == 0 else ri) * np.sin(np.pi * k / 5), cy - (ro if k % 2 == 0 else ri) * np.cos(np.pi * k / 5))
               for k in range(10)]
        return [(_poly(xx, yy, pts), col)]
    if t == "heart":
        yt, r = base - 0.62 * s, 0.2 * s
        lobes = _disk(xx, yy, cx - 0.18 * s, yt, r) | _disk(xx, yy, cx + 0.18 * s, yt, r)
        tip = _poly(xx, yy, [(cx - 0.375 * s, yt + 0.05 * s), (cx + 0.375 * s, yt + 0.05 * s), (cx, base - 0.05 * s)])
        return [(lobes | tip, col)]
    if t == "flower":
        cy = base - 0.62 * s
        stem = _rect(xx, yy, cx - 0.035 * s, cy, cx + 0.035 * s, base)
        leaf = _ell(xx, yy, cx + 0.12 * s, base - 0.25 * s, 0.12 * s, 0.05 * s)
        petals = np.zeros(np.broadcast(xx, yy).shape, bool)
        for k in range(5):
            a = 2 * np.pi * k / 5
            petals |= _disk(xx, yy, cx + 0.17 * s * np.sin(a), cy - 0.17 * s * np.cos(a), 0.12 * s)
        mid = np.array((250, 215, 40) if cname not in ("yellow", "orange") else (120, 70, 30), np.float32)
        green = np.array((40, 140, 50), np.float32)
        return [(stem | leaf, green), (petals, col), (_disk(xx, yy, cx, cy, 0.09 * s), mid)]
    if t == "car":
        body = _rect(xx, yy, cx - 0.5 * s, base - 0.36 * s, cx + 0.5 * s, base - 0.12 * s)
        cabin = _poly(xx, yy, [(cx - 0.3 * s, base - 0.36 * s), (cx - 0.18 * s, base - 0.6 * s),
                               (cx + 0.2 * s, base - 0.6 * s), (cx + 0.32 * s, base - 0.36 * s)])
        win = _poly(xx, yy, [(cx - 0.2 * s, base - 0.39 * s), (cx - 0.13 * s, base - 0.55 * s),
                             (cx + 0.15 * s, base - 0.55 * s), (cx + 0.22 * s, base - 0.39 * s)])
        wheels = _disk(xx, yy, cx - 0.28 * s, base - 0.12 * s, 0.12 * s) | _disk(xx, yy, cx + 0.28 * s, base - 0.12 * s, 0.12 * s)
        glass = np.array((170, 215, 240), np.float32)
        return [(body | cabin, col), (win, glass), (wheels, dark)]
    if t == "boat":
        hull = _poly(xx, yy, [(cx - 0.52 * s, base - 0.26 * s), (cx + 0.52 * s, base - 0.26 * s),
                              (cx + 0.34 * s, base), (cx - 0.34 * s, base)])
        mast = _rect(xx, yy, cx - 0.025 * s, base - 0.95 * s, cx + 0.025 * s, base - 0.26 * s)
        sail = _poly(xx, yy, [(cx + 0.05 * s, base - 0.92 * s), (cx + 0.05 * s, base - 0.32 * s), (cx + 0.42 * s, base - 0.32 * s)])
        sailc = light if cname != "white" else np.array((200, 60, 50), np.float32)
        return [(hull, col), (mast, np.array((95, 60, 30), np.float32)), (sail, sailc)]
    if t == "fish":
        cy = base - 0.4 * s
        body = _ell(xx, yy, cx - 0.06 * s, cy, 0.36 * s, 0.2 * s)
        tail = _poly(xx, yy, [(cx + 0.22 * s, cy), (cx + 0.5 * s, cy - 0.2 * s), (cx + 0.5 * s, cy + 0.2 * s)])
        eye = _disk(xx, yy, cx - 0.26 * s, cy - 0.05 * s, 0.045 * s)
        return [(body | tail, col), (eye, dark if cname != "black" else light)]
    if t == "bird":
        cy = base - 0.5 * s
        body = _ell(xx, yy, cx, cy, 0.3 * s, 0.18 * s)
        head = _disk(xx, yy, cx - 0.28 * s, cy - 0.14 * s, 0.13 * s)
        tail = _poly(xx, yy, [(cx + 0.22 * s, cy - 0.04 * s), (cx + 0.46 * s, cy - 0.18 * s), (cx + 0.42 * s, cy + 0.06 * s)])
        wing = _poly(xx, yy, [(cx - 0.1 * s, cy - 0.05 * s), (cx + 0.16 * s, cy - 0.05 * s), (cx + 0.06 * s, cy - 0.42 * s)])
        beak = _poly(xx, yy, [(cx - 0.39 * s, cy - 0.18 * s), (cx - 0.39 * s, cy - 0.09 * s), (cx - 0.52 * s, cy - 0.13 * s)])
        legs = _rect(xx, yy, cx - 0.06 * s, cy, cx - 0.03 * s, base) | _rect(xx, yy, cx + 0.05 * s, cy, cx + 0.08 * s, base)
        wingc = col * 0.7 if cname != "black" else np.array((90, 90, 90), np.float32)
        return [(legs, dark), (body | head | tail, col), (wing, wingc), (beak, np.array((245, 170, 30), np.float32))]
    raise ValueError(t)
