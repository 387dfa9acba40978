"""The edge smoothing: the last step of the edge-field decode (model/CONTRACT.md "Edge-field upsampler").

The edge field's cells each draw their own square of the output, so slanted and curved edges come out as a staircase
of cell-sized steps. SmoothNet puts them on the level set of a blurred copy of the drawn image; it ships as
weights/smooth.onnx (no weights, only the arithmetic), which the runtime runs at the output size. upsampler.py's
`upsample` calls it; `upsampler.py --smooth-fixture` exports it and writes its parity case.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The field's cells each draw their own square and hand over within one output pixel, so a curved or slanted edge
# comes out as a staircase of cell-sized steps (~4.7 px at 1024×768). Smoothing the drawn image and pushing it back to
# its local colours around the half level puts the edge on the level set of the smoothed image instead: a smooth
# line through the middle of the steps, still one pixel wide. sigma and radius are in sub-grid cells, so the same
# settings fit any output size; at 1024×768 (4.69 px per cell) they are σ = 3 px and a 5×5 window. Measured on
# generated images (model/README.md, "sixth session"). The step is its own small graph, smooth.onnx (SmoothNet), so
# that onnxruntime runs it at the output size.
SMOOTH = {"sigma": 0.64, "radius": 0.43, "contrast_lo": 0.1, "contrast_hi": 0.25, "ramp": 1.0}
SMOOTH_TAPS = 19  # half-resolution Gaussian taps the graph takes: σ up to 6 output px
SMOOTH_RADII = 2  # window radii the graph can pick from (1, 2)


def smooth_px(smooth, H, W, gh, gw):
    """the smoothing's σ and window radius in output pixels for a gh×gw field drawn at H×W: the cell size is
    c = ½(W/gw + H/gh) (as ρ in render_field), σ = min(sigma·c, 6), radius = min(2, max(1, round(radius·c)))"""
    c = 0.5 * (W / gw + H / gh)
    hr = (SMOOTH_TAPS - 1) // 2
    return min(smooth["sigma"] * c, hr / 1.5), min(SMOOTH_RADII, max(1, int(math.floor(smooth["radius"] * c + 0.5))))


def smooth_inputs(sigma, radius, smooth):
    """SmoothNet's small inputs: the half-resolution Gaussian of σ/2 as SMOOTH_TAPS taps (exp(−t²/(2(σ/2)²)) for
    |t| ≤ ceil(3σ/2), normalised, zero beyond), the one-hot choice of radius, and [contrast_lo, contrast_hi, k − 1]
    with k = σ·√(2π)/ramp the full gain"""
    hr = (SMOOTH_TAPS - 1) // 2
    s2 = sigma / 2
    t = np.arange(-hr, hr + 1, dtype=np.float64)
    k = np.where(np.abs(t) <= math.ceil(3 * s2), np.exp(-0.5 * (t / s2) ** 2), 0.0)
    taps = torch.from_numpy((k / k.sum()).astype(np.float32))
    rsel = torch.zeros(SMOOTH_RADII)
    rsel[radius - 1] = 1.0
    params = torch.tensor([smooth["contrast_lo"], smooth["contrast_hi"], sigma * math.sqrt(2 * math.pi) / smooth["ramp"] - 1.0])
    return taps, rsel, params


class SmoothNet(nn.Module):
    """the edge smoothing as a graph (smooth.onnx). Inputs: x [1,3,He,We], the drawn 8-bit image as v/127.5 − 1 with
    its last row and column repeated to even sizes; taps [SMOOTH_TAPS]; rsel [SMOOTH_RADII]; params [3]
    (smooth_inputs). Output: levels [1,3,He,We], the smoothed image as rounded 8-bit levels 0..255. Per pixel and
    channel: g, x's 2×2 block means blurred by the taps (rows then columns, edges repeated) and resized back ×2
    bilinearly (half-pixel centres, clamped at the borders); m and M, the min and max of x over the (2r+1)² window
    (r cascaded 3×3 windows, edges repeated); q = smoothstep of (max over channels of M − m) between
    contrast_lo and contrast_hi; the gain 1 + (k − 1)·q; the output m + clamp(½ + ((g − m)/(M − m) − ½)·gain,
    0, 1)·(M − m), or x itself where M = m."""

    def forward(self, x, taps, rsel, params):
        hr = (SMOOTH_TAPS - 1) // 2
        half = F.avg_pool2d(x, 2)
        kh = taps.reshape(1, 1, 1, SMOOTH_TAPS).repeat(3, 1, 1, 1)
        kv = taps.reshape(1, 1, SMOOTH_TAPS, 1).repeat(3, 1, 1, 1)
        g = F.conv2d(F.pad(half, (hr, hr, 0, 0), mode="replicate"), kh, groups=3)
        g = F.conv2d(F.pad(g, (0, 0, hr, hr), mode="replicate"), kv, groups=3)
        g = F.interpolate(g, scale_factor=2.0, mode="bilinear", align_corners=False)
        hi, lo = x, x
        M = torch.zeros_like(x)
        m = torch.zeros_like(x)
        for k in range(SMOOTH_RADII):
            hi = F.max_pool2d(F.pad(hi, (1, 1, 1, 1), mode="replicate"), 3, 1)
            lo = -F.max_pool2d(F.pad(-lo, (1, 1, 1, 1), mode="replicate"), 3, 1)
            M = M + rsel[k] * hi
            m = m + rsel[k] * lo
        span = M - m
        q = torch.clamp((span.amax(1, keepdim=True) - params[0]) / (params[1] - params[0]), 0.0, 1.0)
        gain = 1.0 + params[2] * (q * q * (3.0 - 2.0 * q))
        a = torch.clamp(0.5 + ((g - m) / torch.clamp(span, min=1e-6) - 0.5) * gain, 0.0, 1.0)
        out = torch.where(span > 1e-6, m + a * span, x)
        return torch.clamp(torch.round((out + 1.0) * 127.5), 0.0, 255.0)


_SMOOTH_NET = SmoothNet()


def even_pad(img):
    """[B,C,H,W] with the last row and column repeated to even sizes"""
    return F.pad(img, (0, img.shape[3] % 2, 0, img.shape[2] % 2), mode="replicate")


def smooth_edges(img, sigma, radius, smooth):
    """the drawn image [B,3,H,W] (8-bit values as v/127.5 − 1) → its smoothed 8-bit levels [B,3,H,W] (SmoothNet;
    mirrored by smooth.onnx at run time); sigma and radius in output pixels (smooth_px)"""
    H, W = img.shape[2:]
    taps, rsel, params = smooth_inputs(sigma, radius, smooth)
    return torch.cat([_SMOOTH_NET(even_pad(img[b:b + 1]), taps, rsel, params) for b in range(img.shape[0])])[:, :, :H, :W]


def quantize(img):
    """[-1,1] → the 8-bit levels the runtime writes, back in [-1,1] (the runtime smooths its 8-bit drawing)"""
    return torch.clamp(torch.round((img + 1.0) * 127.5), 0, 255) / 127.5 - 1.0


def export_smooth(weights):
    """weights/smooth.onnx: SmoothNet with dynamic image sizes"""
    path = os.path.join(weights, "smooth.onnx")
    taps, rsel, params = smooth_inputs(3.0, 2, SMOOTH)
    with torch.no_grad():
        torch.onnx.export(SmoothNet(), (torch.rand(1, 3, 40, 56) * 2 - 1, taps, rsel, params), path,
                          input_names=["x", "taps", "rsel", "params"], output_names=["levels"],
                          dynamic_axes={"x": {2: "h", 3: "w"}, "levels": {2: "h", 3: "w"}}, opset_version=17)
    print(f"exported {path} ({os.path.getsize(path)} bytes)")
