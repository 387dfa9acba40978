"""Edge sharpness, PSNR and halo figures of an upscaled image against the same scene drawn directly at that size.

The procedural renderer (scenes.py) draws any scene at any size with exact, anti-aliased (3x3 supersampled) edges,
so the direct render is the ideal output of the chain "model resolution → requested size".

  figures(out, ref)  → {"psnr", "sharp", "sharp_top", "halo", "halo_frac"}
    psnr       dB over all pixels (0..255 RGB)
    sharp      aligned edge sharpness: mean over the reference's edge pixels (luma Sobel magnitude ≥ EDGE_T) of the
               largest gradient of `out` within ±ALIGN_R px, divided by the same for the reference. 1.0 = as crisp
               as the direct render; a blur that spreads a step over k pixels gives about 1/k.
    sharp_top  alignment-free variant for generated images whose edges can sit a few pixels off the reference: the
               mean of the n largest gradients of `out` over the mean of the n largest of the reference, n = the
               reference's edge-pixel count.
    halo       ringing: in the band within HALO_BAND px of a reference edge, how far `out` leaves the range
               [local min, local max] of the reference (per channel, window ±HALO_R px), in 0..255 levels, mean
               over the band of the worst channel. The direct render scores 0.
    halo_frac  share of band pixels whose overshoot exceeds HALO_VISIBLE levels.
    direction  staircase: mean angle (degrees) between the edge orientation of `out` and of the reference at the
               reference's edge pixels, each from the luma Sobel structure tensor averaged over 3×3 pixels. A
               slanted or curved edge drawn as axis-aligned steps scores high however crisp the steps are; the
               direct render scores 0.

  /usr/bin/python3 model/sharpness.py --make DIR [--n 12] [--seed 5150]   # lo_i.png (model res), ref_i.png (1024x768)
  /usr/bin/python3 model/sharpness.py --score DIR --name NAME             # scores DIR/NAME_i.png against ref_i.png
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes as S  # noqa: E402

EDGE_T = 40.0  # luma Sobel magnitude (Sobel sum of |weights| = 4, so a full 0→255 step in one pixel is ~1020)
ALIGN_R = 2  # px of slack when looking for the output's gradient peak next to a reference edge
HALO_BAND = 6  # px either side of a reference edge where ringing is looked for
HALO_R = 12  # px: window of the reference's local min/max, wider than the ramp of an 18x upscale so that blur alone stays inside it
HALO_VISIBLE = 8.0  # levels: overshoot a person notices on flat colour
MODEL_HW = (40, 56)  # 1024x768 → grid 10x14 of 4-px patches
OUT_HW = (768, 1024)


def luma(img):
    x = np.asarray(img, np.float64)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def sobel(y):
    p = np.pad(y, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return np.hypot(gx, gy)


def _filt(a, r, op):
    """separable (2r+1)² max or min filter over the first two axes, edges replicated"""
    out = a
    for axis in (0, 1):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        acc = np.take(p, range(0, n), axis=axis)
        for k in range(1, 2 * r + 1):
            acc = op(acc, np.take(p, range(k, k + n), axis=axis))
        out = acc
    return out


def maxf(a, r):
    return _filt(a, r, np.maximum)


def minf(a, r):
    return _filt(a, r, np.minimum)


def psnr(a, b):
    mse = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean()
    return 99.0 if mse <= 1e-10 else float(10 * np.log10(255.0 ** 2 / mse))


def _orientation(img):
    """doubled-angle edge orientation per pixel: the luma Sobel structure tensor (gx² − gy², 2·gx·gy) box-averaged
    over 3×3 pixels (edges replicated), as an angle in (−π, π]"""
    y = luma(img)
    p = np.pad(y, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])

    def box(z):
        z = np.pad(z, 1, mode="edge")
        return sum(z[dy:dy + y.shape[0], dx:dx + y.shape[1]] for dy in range(3) for dx in range(3)) / 9.0
    a, b = box(gx * gx - gy * gy), box(2 * gx * gy)
    return np.arctan2(b, a), np.hypot(a, b)


def direction_error(out, ref, edge):
    """mean angle (degrees) between out's and ref's edge orientations over the edge mask (where out has a gradient)"""
    to, mo = _orientation(out)
    tr, _ = _orientation(ref)
    d = np.abs(np.angle(np.exp(1j * (to - tr)))) / 2  # halve the doubled angle: 0..90°
    sel = edge & (mo > 1e-9)
    return float(np.degrees(d[sel]).mean()) if sel.any() else 0.0


def figures(out, ref):
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    g_out, g_ref = sobel(luma(out)), sobel(luma(ref))
    edge = g_ref >= EDGE_T
    edge[:2, :] = edge[-2:, :] = False
    edge[:, :2] = edge[:, -2:] = False
    n = int(edge.sum())
    if n == 0:
        return {"psnr": psnr(out, ref), "sharp": float("nan"), "sharp_top": float("nan"), "halo": 0.0, "halo_frac": 0.0,
                "direction": float("nan")}
    sharp = float(maxf(g_out, ALIGN_R)[edge].mean() / maxf(g_ref, ALIGN_R)[edge].mean())
    top = lambda g: float(np.sort(g.ravel())[-n:].mean())  # noqa: E731
    sharp_top = top(g_out) / top(g_ref)
    band = maxf(edge, HALO_BAND)
    hi, lo = maxf(ref, HALO_R), minf(ref, HALO_R)
    over = (np.maximum(out - hi, 0) + np.maximum(lo - out, 0)).max(-1)[band]
    return {"psnr": psnr(out, ref), "sharp": sharp, "sharp_top": sharp_top, "halo": float(over.mean()),
            "halo_frac": float((over > HALO_VISIBLE).mean()), "direction": direction_error(out, ref, edge)}


def mean_figures(rows):
    keys = rows[0].keys() if rows else []
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def sharp_scenes(n, seed):
    """held-out style scenes (colour x object x position combinations never trained on, as in eval.py), with
    clouds and stars so that small shapes count too"""
    rng = np.random.default_rng(seed)
    trip = sorted(S.HELDOUT)
    out = []
    for i in range(n):
        s = S.random_scene(rng, n_objects=0)
        c, o, p = trip[(3 * i) % len(trip)]
        s["objects"] = [{"type": o, "color": c, "pos": p}]
        for q in S.POSITIONS:
            if q != p and rng.random() < 0.6:
                s["objects"].append(S.random_object(rng, q))
        s["objects"].sort(key=lambda x: S.POSITIONS.index(x["pos"]))
        out.append(s)
    return out


def fmt(f):
    return (f"sharpness {f['sharp']:.3f} (alignment-free {f['sharp_top']:.3f}), PSNR {f['psnr']:.2f} dB, "
            f"halo {f['halo']:.2f} levels ({f['halo_frac']*100:.2f}% of edge band > {HALO_VISIBLE:.0f}), "
            f"edge direction error {f['direction']:.1f}°")


def main():
    from PIL import Image
    ap = argparse.ArgumentParser()
    ap.add_argument("--make")
    ap.add_argument("--score")
    ap.add_argument("--name")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--seed", type=int, default=5150)
    a = ap.parse_args()
    if a.make:
        os.makedirs(a.make, exist_ok=True)
        for i, s in enumerate(sharp_scenes(a.n, a.seed)):
            lo = S.render(s, *MODEL_HW).round().astype(np.uint8)  # what the SR net was trained on (train.sr_pair)
            ref = S.render(s, *OUT_HW).round().astype(np.uint8)
            Image.fromarray(lo).save(os.path.join(a.make, f"lo_{i}.png"))
            Image.fromarray(ref).save(os.path.join(a.make, f"ref_{i}.png"))
        return
    if a.score and a.name:
        rows = []
        for f in sorted(glob.glob(os.path.join(a.score, f"{a.name}_*.png"))):
            i = f.rsplit("_", 1)[1][:-4]
            out = np.asarray(Image.open(f).convert("RGB"))
            ref = np.asarray(Image.open(os.path.join(a.score, f"ref_{i}.png")).convert("RGB"))
            rows.append(figures(out, ref))
        print(json.dumps(dict(mean_figures(rows), n=len(rows))))
        return
    ap.error("--make DIR or --score DIR --name NAME")


if __name__ == "__main__":
    main()
