"""Image ↔ token grid for the bundled model (model/CONTRACT.md, "Image tokens"): [3, r, P, c, P] -> [r, c, 3, P, P]."""
from __future__ import annotations


def patchify(x, P):
    """x: [..., 3, H, W] → [..., (H/P)*(W/P), 3*P*P]"""
    *lead, C, H, W = x.shape
    r, c = H // P, W // P
    x = x.reshape(*lead, C, r, P, c, P)
    n = len(lead)
    x = x.transpose(*range(n), n + 1, n + 3, n + 0, n + 2, n + 4)
    return x.reshape(*lead, r * c, C * P * P)


def unpatchify(t, r, c, P):
    *lead, N, D = t.shape
    n = len(lead)
    x = t.reshape(*lead, r, c, 3, P, P)
    x = x.transpose(*range(n), n + 2, n + 0, n + 3, n + 1, n + 4)
    return x.reshape(*lead, 3, r * P, c * P)
