"""The edge-field upsampler: the model's drawing (rows·4 × cols·4 px) to any requested size with one-pixel edges.

The bundled model draws flat-coloured shapes. Upscaling its 56×40 drawing ~18× with any fixed kernel spreads each
edge over many pixels; this net instead describes every cell of a grid 4× finer than the drawing as *two colours and
a straight edge between them*, and a fixed renderer (`render_field`, mirrored in TypeScript by
src/engines/builtin/edge-field.ts) draws that description at the output size, so an edge stays one output pixel
wide at any scale.

  field [B, 9, 4h, 4w]: A (3, [-1,1]) the colour on the edge's positive side, B (3) the other side,
                        n (2) the unit normal (x, y) in sub-grid units, d (1) the edge's offset from the cell centre
  render: output pixel (x, y) of W×H sits at u = (x+½)·gw/W − ½, v = (y+½)·gh/H − ½ in sub-grid coordinates (cell
          centres at integers). Its four nearest cells k (indices clamped to the grid) each give
          α_k = clamp(½ + (n_k·(p − c_k) − d_k)·ρ/ramp, 0, 1) with ρ = ½(W/gw + H/gh) output px per sub-grid unit,
          value_k = B_k + α_k (A_k − B_k); the pixel blends the four values with weights w(f_x)·w(f_y), where f is
          the pixel's fraction of the way between two cell centres and w(f) = clamp(½ + (f − ½)·max(1, c/blend), 0, 1)
          with c the cell size in output pixels: each cell draws its own square and hands over to the next within
          `blend` output pixels (blend ≥ c is plain bilinear). ramp = blend = 1 at run time (a one-pixel,
          box-filter-like anti-aliased edge); training starts with a softer ramp.

  /usr/bin/python3 model/upsampler.py --minutes 40 --out model/checkpoints/up     # trains on 2 CPU cores
  /usr/bin/python3 model/upsampler.py --export model/checkpoints/up/up.pt         # → model/weights, parity fixture
  /usr/bin/python3 model/upsampler.py --smooth-fixture                           # smooth.onnx and its fixture case only
Resumes from <out>/up.pt; log in <out>/up.log. The data for step k comes from np.random.default_rng([seed, k]).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from smooth import SMOOTH, export_smooth, quantize, smooth_edges, smooth_px  # noqa: F401 (SMOOTH: sampler.py reads it here)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes as S  # noqa: E402

SUB = 4  # sub-grid cells per drawing pixel, each way
BLEND = 1.0  # output pixels over which a pixel's colour passes from one cell's description to the next
FIELD_CH = 9
UP_CFG = {"ch": 48, "layers": 4, "sub_ch": 24, "sub_layers": 2}
GRIDS = [[8, 20], [9, 16], [10, 14], [12, 12], [14, 10], [16, 9], [20, 8]]
PATCH = 4


class EdgeFieldNet(nn.Module):
    """convolutions at the drawing's resolution, pixel shuffle ×SUB, a few small convolutions on the sub-grid, then
    the 9 field channels. A and B are offsets from the bilinear ×SUB upsampling of the input, kept inside the local
    range of the drawing, and the last layer starts at zero, so an untrained net renders exactly that bilinear
    image."""

    def __init__(self, ch=48, layers=4, sub_ch=24, sub_layers=2):
        super().__init__()
        self.head = nn.Conv2d(3, ch, 3, padding=1)
        self.body = nn.ModuleList([nn.Conv2d(ch, ch, 3, padding=1) for _ in range(layers)])
        self.shuffle = nn.Conv2d(ch, sub_ch * SUB * SUB, 3, padding=1)
        self.sub_in = nn.Conv2d(3, sub_ch, 1)
        self.sub = nn.ModuleList([nn.Conv2d(sub_ch, sub_ch, 3, padding=1) for _ in range(sub_layers)])
        self.tail = nn.Conv2d(sub_ch, FIELD_CH, 1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, lowres):
        h = F.relu(self.head(lowres))
        for c in self.body:
            h = h + F.relu(c(h))
        up = F.interpolate(lowres, scale_factor=float(SUB), mode="bilinear", align_corners=False)
        s = F.relu(F.pixel_shuffle(self.shuffle(h), SUB) + self.sub_in(up))
        for c in self.sub:
            s = s + F.relu(c(s))
        o = self.tail(s)
        # A and B stay inside the range of the drawing's 3×3 neighbourhood around the cell: an edge can be as steep
        # as it likes but never brighter or darker than the colours it separates (no ringing halos by construction)
        lo_min = F.interpolate(-F.max_pool2d(-lowres, 3, 1, 1), scale_factor=float(SUB), mode="nearest")
        lo_max = F.interpolate(F.max_pool2d(lowres, 3, 1, 1), scale_factor=float(SUB), mode="nearest")
        a = torch.minimum(torch.maximum(up + o[:, 0:3], lo_min), lo_max)
        b = torch.minimum(torch.maximum(up + o[:, 3:6], lo_min), lo_max)
        n = o[:, 6:8]
        n = n / torch.sqrt((n * n).sum(1, keepdim=True) + 1e-6)
        return torch.cat([a, b, n, o[:, 8:9]], 1)


def blend_weight(f, cell_px, blend):
    """weight of the far cell for a pixel at fraction f ∈ [0,1) of the way between two cell centres: the switch
    from one cell to the next takes `blend` output pixels (cell_px of them or more: plain bilinear)"""
    k = max(1.0, cell_px / blend)
    return torch.clamp(0.5 + (f - 0.5) * k, 0.0, 1.0)


def render_field(field, H, W, ramp=1.0, window=None, blend=BLEND):
    """field [B, 9, gh, gw] → image [B, 3, H, W] in [-1,1] (see the module docstring; the TypeScript mirror must
    match this to float32 rounding). window (y0, x0, h, w): only that part of the H×W output (training crops)."""
    B, _, gh, gw = field.shape
    dev = field.device
    y0, x0, hh, ww = window or (0, 0, H, W)
    u = (torch.arange(x0, x0 + ww, device=dev, dtype=torch.float32) + 0.5) * (gw / W) - 0.5
    v = (torch.arange(y0, y0 + hh, device=dev, dtype=torch.float32) + 0.5) * (gh / H) - 0.5
    i0, j0 = torch.floor(u), torch.floor(v)
    fx, fy = blend_weight(u - i0, W / gw, blend), blend_weight(v - j0, H / gh, blend)
    rho = 0.5 * (W / gw + H / gh) / ramp
    out = torch.zeros(B, 3, hh, ww, device=dev, dtype=field.dtype)
    for dj, wy in ((0, 1 - fy), (1, fy)):
        j = torch.clamp(j0 + dj, 0, gh - 1)
        qy = (v - j)[:, None]
        rows = field.index_select(2, j.long())
        for di, wx in ((0, 1 - fx), (1, fx)):
            i = torch.clamp(i0 + di, 0, gw - 1)
            qx = (u - i)[None, :]
            f = rows.index_select(3, i.long())  # [B, 9, H, W]
            t = f[:, 6] * qx + f[:, 7] * qy - f[:, 8]
            alpha = torch.clamp(0.5 + t * rho, 0.0, 1.0)[:, None]
            val = f[:, 3:6] + alpha * (f[:, 0:3] - f[:, 3:6])
            out = out + (wy[:, None] * wx[None, :])[None, None] * val
    return out


# The drawing's own blotches and colour fringes (the denoiser's, not the renderer's) flattened before the field:
# measured on generated images (eval.py --sharp-sample 16), range sigma 0.15 took the halo from 10.4 to 7.5 levels
# with the fine-tuned net and kept most of its sharpness (model/README.md).
FLATTEN = {"radius": 2, "spatial_sigma": 1.0, "range_sigma": 0.15}


def flatten(lowres, radius, spatial_sigma, range_sigma):
    """edge-preserving smoothing of the drawing [B,3,h,w] in [-1,1] (a bilateral filter): each pixel becomes the
    mean of its (2r+1)² window weighted by exp(−(dx²+dy²)/(2·ss²) − |c − c₀|²/(2·rs²)), |c − c₀|² summed over
    the three channels; the window is clamped at the borders (edge pixels repeated). Mirrored by
    flattenDrawing in src/engines/builtin/edge-field.ts."""
    r = int(radius)
    B, C, h, w = lowres.shape
    p = F.pad(lowres, (r, r, r, r), mode="replicate")
    num = torch.zeros_like(lowres)
    den = torch.zeros_like(lowres[:, :1])
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            q = p[:, :, dy:dy + h, dx:dx + w]
            d2 = ((q - lowres) ** 2).sum(1, keepdim=True)
            wgt = torch.exp(-float((dy - r) ** 2 + (dx - r) ** 2) / (2 * spatial_sigma ** 2) - d2 / (2 * range_sigma ** 2))
            num = num + wgt * q
            den = den + wgt
    return num / den


def upsample(net, lowres, H, W, flat=None, smooth=None):
    """the run-time chain in PyTorch: lowres [B,3,h,w] in [-1,1] → [B,3,H,W]; `flat`: the manifest's
    upsampler.flatten, `smooth`: its upsampler.smooth (None: left out)"""
    if flat:
        lowres = flatten(lowres, flat["radius"], flat["spatial_sigma"], flat["range_sigma"])
    field = net(lowres)
    out = torch.clamp(render_field(field, H, W), -1.0, 1.0)
    if smooth:
        sig, rad = smooth_px(smooth, H, W, field.shape[2], field.shape[3])
        out = smooth_edges(quantize(out), sig, rad, smooth) / 127.5 - 1.0
    return out


# ------------------------------------------------------------------------------------------------ training

def _blur(x, rng):
    """a mild separable Gaussian blur, as the denoiser's drawings are a little softer than clean renders"""
    sig = rng.uniform(0.3, 0.8)
    k = np.exp(-0.5 * (np.arange(-2, 3) / sig) ** 2)
    k = (k / k.sum()).astype(np.float32)
    p = np.pad(x, ((0, 0), (2, 2), (2, 2)), mode="edge")
    x = sum(k[i] * p[:, :, i:i + x.shape[2]] for i in range(5))
    return sum(k[i] * x[:, i:i + p.shape[1] - 4, :] for i in range(5))


def make_pair(rng, B, scale, degrade=None):
    """B scenes in one aspect bucket: the drawing (what the denoiser makes) and the same scene rendered directly at
    `scale`× (the target). The drawing is the scene rendered at the model's size, then either passed through
    `degrade(drawings, scenes, rng)` or given noise or blur."""
    g = GRIDS[rng.integers(len(GRIDS))]
    h, w = g[0] * PATCH, g[1] * PATCH
    lo, hi, scs = [], [], []
    for _ in range(B):
        sc = S.random_scene(rng, avoid_heldout=False)
        l = S.to_unit(S.render(sc, h, w))
        if degrade is None:
            if rng.random() < 0.3:
                l = _blur(l, rng)
            if rng.random() < 0.7:
                l = l + rng.normal(0, rng.uniform(0.0, 0.05), l.shape).astype(np.float32)
        lo.append(np.clip(l, -1, 1))
        hi.append(S.to_unit(S.render(sc, h * scale, w * scale, ss=2)))
        scs.append(sc)
    lo = np.stack(lo)
    if degrade is not None:
        lo = degrade(lo, scs, rng)
    return torch.from_numpy(lo).float(), torch.from_numpy(np.stack(hi)).float()


class DenoiserDegrade:
    """Drawings with the bundled denoiser's own artifacts (colour fringes, blotches) whose exact target is known:
    the clean drawing of a scene is noised to σ₀ ∈ [lo, hi] and sampled back to σ = 0 in a few Euler steps with
    guidance, as the engine samples, conditioned on the scene's full caption (SDEdit). The layout stays the scene's,
    so the direct render stays the target."""

    def __init__(self, ckpt, steps=4, sigma=(0.1, 0.35), cfg=4.0):
        from sampler import Pipeline
        self.pipe = Pipeline.from_checkpoint(ckpt)
        self.steps, self.sigma, self.cfg = steps, sigma, cfg

    @torch.no_grad()
    def __call__(self, lo, scenes, rng):
        from mmdit import make_pos
        B, _, h, w = lo.shape
        r, c = h // PATCH, w // PATCH
        x0 = torch.from_numpy(S.patchify(lo, PATCH)).float()
        s0 = float(rng.uniform(*self.sigma))
        x = (1 - s0) * x0 + s0 * torch.from_numpy(rng.standard_normal(x0.shape).astype(np.float32))
        caps = [S.caption(sc, rng, mode="full") for sc in scenes]
        ids = torch.tensor([self.pipe.tokenize(t) for t in caps + [""] * B], dtype=torch.long)
        text, tmask = self.pipe.te(ids), (ids != 0).float()
        C = x0.shape[-1]
        ref, rmask, pos = torch.zeros(2 * B, 1, C), torch.zeros(2 * B, 1), make_pos((r, c), 0)
        sig = np.linspace(s0, 0.0, self.steps + 1)
        for i in range(self.steps):
            v = self.pipe.dn(x.repeat(2, 1, 1), torch.full((2 * B,), float(sig[i])), text, tmask, ref, rmask, pos)
            cond, unc = v[:B], v[B:]
            comb = unc + self.cfg * (cond - unc)
            comb = comb * (cond.norm(dim=-1, keepdim=True) / comb.norm(dim=-1, keepdim=True).clamp_min(1e-12))
            x = x + float(sig[i + 1] - sig[i]) * comb
        return np.clip(S.unpatchify(x.numpy(), r, c, PATCH), -1, 1).astype(np.float32)


_DEGRADE = None


def _gen(args):
    global _DEGRADE
    seed, step, batch, sdedit_p, ckpt = args
    rng = np.random.default_rng([seed, step])
    scale = int(rng.choice([6, 8, 8, 10]))
    degrade = None
    if sdedit_p and rng.random() < sdedit_p:
        if _DEGRADE is None:
            torch.set_num_threads(1)
            _DEGRADE = DenoiserDegrade(ckpt)
        degrade = _DEGRADE
    lo, hi = make_pair(rng, batch, scale, degrade)
    return lo.numpy(), hi.numpy()


def edge_weight(hi):
    """per-pixel loss weight: 1 + 4 near the target's edges, so the few edge pixels are not drowned by flat ones"""
    y = 0.299 * hi[:, 0] + 0.587 * hi[:, 1] + 0.114 * hi[:, 2]
    gx = (y[:, :, 1:] - y[:, :, :-1]).abs()
    gy = (y[:, 1:, :] - y[:, :-1, :]).abs()
    e = torch.zeros_like(y)
    e[:, :, 1:] += gx
    e[:, :, :-1] += gx
    e[:, 1:, :] += gy
    e[:, :-1, :] += gy
    e = F.max_pool2d((e > 0.08).float()[:, None], 5, 1, 2)
    return 1 + 4 * e


_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_mag(img):
    """luma Sobel magnitude of [B,3,H,W] in [-1,1] (model/sharpness.py's, in these units), edges replicated"""
    y = (0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2])[:, None]
    k = torch.stack([_SOBEL, _SOBEL.t()])[:, None].to(img)
    g = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), k)
    return torch.sqrt((g * g).sum(1) + 1e-6)


def sharpness_loss(out, hi, align=2, edge_t=40 / 127.5):
    """how far the output's strongest gradient near each target edge falls short of the target's (the aligned
    figure of model/sharpness.py, as a loss): rewards edges as steep as the direct render's, within ±align px of
    where they are; a blur that hedges between positions pays for it, an edge in place costs nothing"""
    g_out, g_ref = sobel_mag(out), sobel_mag(hi)
    edge = (g_ref >= edge_t).float()
    k = 2 * align + 1
    short = F.relu(F.max_pool2d(g_ref[:, None], k, 1, align) - F.max_pool2d(g_out[:, None], k, 1, align))[:, 0]
    return (short * edge).sum() / edge.sum().clamp_min(1.0)


HALO_R_DRAWING_PX = 12 / (768 / 40)  # model/sharpness.py HALO_R (12 px at 768 rows) in drawing pixels


def halo_loss(out, hi, r):
    """overshoot beyond the target's local range (per channel, window ±r px), the worst channel, mean over the
    crop: the halo figure of model/sharpness.py as a loss (the direct render scores 0; so does any blur)"""
    k = 2 * r + 1
    top = F.max_pool2d(hi, k, 1, r)
    bot = -F.max_pool2d(-hi, k, 1, r)
    over = (F.relu(out - top) + F.relu(bot - out)).amax(1)
    return over[:, r:-r, r:-r].mean()  # not the crop's border, where the window is cut short


def train(a):
    import multiprocessing as mp
    os.makedirs(a.out, exist_ok=True)
    ck_path = os.path.join(a.out, "up.pt")
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    net = EdgeFieldNet(**UP_CFG).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    step, elapsed = 0, 0.0
    if os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location=dev)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, elapsed = ck["step"], ck["elapsed"]
    elif a.init:  # warm start: the weights only, a fresh schedule (the data stream goes on from the init's step)
        ck = torch.load(a.init, map_location="cpu")
        net.load_state_dict({k: v.float() for k, v in ck["model"].items()})
        step = ck["step"]
    log = open(os.path.join(a.out, "up.log"), "a")
    t_start = time.time() - elapsed
    budget = a.minutes * 60
    pool = mp.get_context("fork").Pool(a.workers) if a.workers else None
    depth = max(2, 2 * a.workers)
    pending = {}

    job = lambda k: (a.seed, k, a.batch, a.sdedit, a.sdedit_ckpt)  # noqa: E731

    def fetch(k):
        if pool is None:
            return _gen(job(k))
        for q in range(k, k + depth):
            if q not in pending:
                pending[q] = pool.apply_async(_gen, (job(q),))
        return pending.pop(k).get()

    def save():
        torch.save({"cfg": UP_CFG, "model": {k: v.cpu() for k, v in net.state_dict().items()}, "opt": opt.state_dict(), "step": step,
                    "elapsed": time.time() - t_start}, ck_path + ".tmp")
        os.replace(ck_path + ".tmp", ck_path)

    last_ck = time.time()
    rl, rn, wait = 0.0, 0, 0.0
    while time.time() - t_start < budget:
        frac = (time.time() - t_start) / budget
        for g in opt.param_groups:
            g["lr"] = a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        # softer edges first, so edge positions get a gradient
        ramp = max(1.0, a.ramp_start - (a.ramp_start - 1.0) * frac / 0.4)
        t0 = time.time()
        lo, hi = (torch.from_numpy(x).to(dev) for x in fetch(step))
        wait += time.time() - t0
        # the loss on one random crop of the target: the net still sees the whole drawing, the renderer's
        # backward (the slow part) only the crop
        H, W = hi.shape[2], hi.shape[3]
        crng = np.random.default_rng([a.seed + 1, step])
        ch, cw = min(H, a.crop), min(W, a.crop)
        y0, x0 = int(crng.integers(0, H - ch + 1)), int(crng.integers(0, W - cw + 1))
        hi = hi[:, :, y0:y0 + ch, x0:x0 + cw]
        out = render_field(net(lo), H, W, ramp=ramp, window=(y0, x0, ch, cw))
        loss = ((out - hi).abs() * edge_weight(hi)).mean()
        if a.sharp_weight:
            loss = loss + a.sharp_weight * sharpness_loss(out, hi)
        if a.halo_weight:
            # sharpness.py's window is 12 px at 1024x768 (≈0.66 drawing pixels): the same share of a drawing pixel here
            r = max(1, int(round(HALO_R_DRAWING_PX * H / lo.shape[2])))
            loss = loss + a.halo_weight * halo_loss(out, hi, r)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        rl += loss.item()
        rn += 1
        if step % 25 == 0:
            msg = (f"up step {step} t={(time.time()-t_start)/60:.1f}m ramp={ramp:.2f} loss={rl/rn:.4f} "
                   f"data_wait={wait/rn:.2f}s")
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
            rl, rn, wait = 0.0, 0, 0.0
        if time.time() - last_ck > 120:
            save()
            last_ck = time.time()
    save()
    log.write(f"up done step {step}\n")
    log.close()
    if pool:
        pool.terminate()


# ------------------------------------------------------------------------------------------------ export

def load_net(ckpt):
    """a trained net with its weights rounded to fp16 (what ships), in eval mode"""
    ck = torch.load(ckpt, map_location="cpu")
    net = EdgeFieldNet(**ck.get("cfg", UP_CFG))
    net.load_state_dict({k: v.float() for k, v in ck["model"].items()})
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.half().float())
    return net.eval(), ck


def export(ckpt, weights, parity_out):
    """weights/upsampler.onnx, weights/torch/up.pt (fp16), the manifest's `upsampler` entry, and the parity
    fixture (PyTorch's field and rendered image for a few inputs, for src/engines/builtin/parity.test.ts)"""
    import json
    net, ck = load_net(ckpt)
    path = os.path.join(weights, "upsampler.onnx")
    with torch.no_grad():
        torch.onnx.export(net, (torch.rand(1, 3, 40, 56) * 2 - 1,), path, input_names=["lowres"],
                          output_names=["field"], dynamic_axes={"lowres": {2: "h", 3: "w"}, "field": {2: "gh", 3: "gw"}},
                          opset_version=17, do_constant_folding=True)
    try:
        import onnx
        onnx.checker.check_model(onnx.load(path))
    except ImportError:  # the onnx package is optional here; parity.test.ts loads the file in onnxruntime anyway
        pass
    os.makedirs(os.path.join(weights, "torch"), exist_ok=True)
    export_smooth(weights)
    torch.save({"cfg": ck.get("cfg", UP_CFG), "step": ck["step"], "model": {k: v.half() for k, v in net.state_dict().items()}},
               os.path.join(weights, "torch", "up.pt"))
    mpath = os.path.join(weights, "manifest.json")
    m = json.load(open(mpath))
    m["upsampler"] = {"kind": "edge-field", "file": "upsampler.onnx", "sub": SUB, "ramp": 1.0, "blend": BLEND, "step": ck["step"],
                      "flatten": dict(FLATTEN), "smooth": dict(SMOOTH, file="smooth.onnx")}
    # the version names the decode too, since the same denoiser now gives different pixels
    m["version"] = m["version"].split("+")[0] + f"+edge-field-step{ck['step']}+smooth"
    with open(mpath, "w") as f:
        json.dump(m, f, indent=1)
    rng = np.random.default_rng(99)
    cases = []
    for (h, w, H, W) in ((6, 8, 77, 101), (8, 6, 110, 70)):
        sc = S.random_scene(rng, avoid_heldout=False)
        lo = S.to_unit(S.render(sc, h, w))[None]
        lo = np.array([float("%.7g" % v) for v in lo.reshape(-1)], np.float32).reshape(lo.shape)
        with torch.no_grad():
            field = net(torch.from_numpy(lo))
            img = torch.clamp(render_field(field, H, W), -1, 1)
        q = np.clip(np.round((img[0].numpy() + 1) * 127.5), 0, 255).astype(int)  # planar [3, H, W]
        cases.append({"lowres": {"dims": list(lo.shape), "data": [float(v) for v in lo.reshape(-1)]},
                      "field": {"dims": list(field.shape), "data": [float("%.7g" % v) for v in field.numpy().reshape(-1)]},
                      "width": W, "height": H, "rgb": q.transpose(1, 2, 0).reshape(-1).tolist()})
    # the flatten step alone, on a drawing with blotches and fringes (a scene plus noise)
    sc = S.random_scene(rng, avoid_heldout=False)
    lo = S.to_unit(S.render(sc, 12, 16))[None] + rng.normal(0, 0.08, (1, 3, 12, 16)).astype(np.float32)
    lo = np.array([float("%.7g" % v) for v in np.clip(lo, -1, 1).reshape(-1)], np.float32).reshape(lo.shape)
    flat = flatten(torch.from_numpy(lo), FLATTEN["radius"], FLATTEN["spatial_sigma"], FLATTEN["range_sigma"])
    flatten_case = {"params": dict(FLATTEN), "lowres": {"dims": list(lo.shape), "data": [float(v) for v in lo.reshape(-1)]},
                    "flat": [float("%.7g" % v) for v in flat.numpy().reshape(-1)]}
    with open(parity_out, "w") as f:
        json.dump({"model": "model/weights", "cases": cases, "flatten": flatten_case, "smooth": smooth_case(net)}, f)
    print(f"exported {path} ({os.path.getsize(path)/1e6:.2f} MB), step {ck['step']}; parity → {parity_out}")


def smooth_case(net):
    """the smoothing step alone (parity fixture): drawn 8-bit images with slanted and curved edges and their smoothed
    8-bit results, at an odd size (radius 1, even padding) and an even one (radius 2)"""
    rng = np.random.default_rng(7)
    sc = S.random_scene(rng, avoid_heldout=False)
    lo = torch.from_numpy(S.to_unit(S.render(sc, 12, 16)))[None]
    rgb = lambda x: np.clip(np.round((x[0].numpy() + 1) * 127.5), 0, 255).astype(int).transpose(1, 2, 0).reshape(-1).tolist()  # noqa: E731
    cases = []
    with torch.no_grad():
        field = net(lo)
        for H, W in ((91, 121), (180, 240)):
            drawn = quantize(torch.clamp(render_field(field, H, W), -1, 1))
            sig, rad = smooth_px(SMOOTH, H, W, field.shape[2], field.shape[3])
            out = smooth_edges(drawn, sig, rad, SMOOTH) / 127.5 - 1.0
            cases.append({"field": [int(field.shape[3]), int(field.shape[2])], "width": W, "height": H,
                          "sigma_px": sig, "radius_px": rad, "rgb": rgb(drawn), "smoothed": rgb(out)})
    return {"params": dict(SMOOTH), "cases": cases}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", default="", help="checkpoint to export instead of training")
    ap.add_argument("--weights", default=os.path.join(HERE, "weights"))
    ap.add_argument("--parity-out", default=os.path.join(HERE, "..", "test/fixtures/parity/upsampler.json"))
    ap.add_argument("--smooth-fixture", action="store_true", help="write weights/smooth.onnx and rewrite only the parity fixture's smooth case (weights/torch/up.pt)")
    ap.add_argument("--minutes", type=float, default=0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="the trainer's device (data and DenoiserDegrade stay on the CPU workers)")
    ap.add_argument("--out", default="model/checkpoints/up")
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--crop", type=int, default=192, help="output crop (px) the loss is taken on")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2718)
    ap.add_argument("--init", default="", help="warm start from this checkpoint's weights (fresh schedule)")
    ap.add_argument("--ramp-start", type=float, default=3.0, help="edge ramp (px) at the start, annealed to 1 by 40%%")
    ap.add_argument("--sharp-weight", type=float, default=0.0, help="weight of sharpness_loss beside the L1")
    ap.add_argument("--halo-weight", type=float, default=0.0, help="weight of halo_loss (overshoot beyond the target's local range)")
    ap.add_argument("--sdedit", type=float, default=0.0, help="share of batches whose drawings go through DenoiserDegrade")
    ap.add_argument("--sdedit-ckpt", default=os.path.join(HERE, "weights/torch/ckpt.pt"), help="the denoiser DenoiserDegrade runs")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    if a.smooth_fixture:
        import json
        export_smooth(a.weights)
        fx = json.load(open(a.parity_out))
        fx["smooth"] = smooth_case(load_net(os.path.join(a.weights, "torch", "up.pt"))[0])
        with open(a.parity_out, "w") as f:
            json.dump(fx, f)
        print(f"smooth case → {a.parity_out}")
    elif a.export:
        export(a.export, a.weights, a.parity_out)
    elif a.minutes:
        train(a)
    else:
        ap.error("give --minutes (train) or --export CKPT")


if __name__ == "__main__":
    main()
