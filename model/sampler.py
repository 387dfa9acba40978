"""Python reference sampler for qwen-image-mini (mirrors src/engines/builtin/sampler.ts per model/CONTRACT.md).

Runs the PyTorch eager modules.  Usage as a library:

    pipe = Pipeline.from_checkpoint("model/checkpoints/main/ckpt.pt", "model/checkpoints/main/sr.pt")
    rgb = pipe.generate("a red house on the left at night", seed=42, width=1024, height=768)   # uint8 [H,W,3]

CLI:  /usr/bin/python3 model/sampler.py --prompt "..." --seed 1 --width 1024 --height 768 --out /tmp/x.png
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes as S  # noqa: E402

SAMPLER_DEFAULTS = {"steps": 20, "true_cfg_scale": 4.0, "negative_cfg_scale": 6.0, "base_image_seq_len": 256, "max_image_seq_len": 8192,
                    "base_shift": 0.5, "max_shift": 0.9, "shift_terminal": 0.02,
                    # edits with one reference keep the rest of it (CONTRACT.md "Edits"); None: off
                    "edit_keep": {"share": 0.3, "lo": 0.06, "hi": 0.12, "grow": 2, "global_share": 0.5, "prune": True}}


# ------------------------------------------------------------------------------------------------ PRNG

def mulberry32(seed):
    a = seed & 0xFFFFFFFF
    while True:
        a = (a + 0x6D2B79F5) & 0xFFFFFFFF
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        yield (t ^ (t >> 14)) & 0xFFFFFFFF


def normals(seed, n):
    g = mulberry32(seed)
    out = np.empty(n, np.float64)
    for i in range(n):
        r1 = next(g)
        r2 = next(g)
        u1 = (r1 + 1) / 4294967297.0
        u2 = r2 / 4294967296.0
        out[i] = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return out


# ------------------------------------------------------------------------------------------------ schedule

def sigmas(steps, N, sp=SAMPLER_DEFAULTS):
    s = np.linspace(1.0, 1.0 / steps, steps)
    mu = sp["base_shift"] + (sp["max_shift"] - sp["base_shift"]) * (N - sp["base_image_seq_len"]) / (
        sp["max_image_seq_len"] - sp["base_image_seq_len"])
    e = math.exp(mu)
    s = e / (e + (1.0 / s - 1.0))
    z = 1.0 - s
    if z[-1] > 0:  # steps == 1 gives z_last = 0: no stretch
        z = z / (z[-1] / (1.0 - sp["shift_terminal"]))
    s = 1.0 - z
    return np.concatenate([s, [0.0]])


# ------------------------------------------------------------------------------------------------ edits keep the rest

def grow_mask(m, g):
    """max filter over a (2g+1)² window, edges clamped, then a 3×3 box blur (edges clamped): a soft border"""
    h, w = m.shape
    for axis, n in ((0, h), (1, w)):
        if g > 0:
            idx = np.arange(n)
            m = np.max(np.stack([np.take(m, np.clip(idx + d, 0, n - 1), axis=axis) for d in range(-g, g + 1)]), 0)
    for axis, n in ((0, h), (1, w)):
        idx = np.arange(n)
        m = (np.take(m, np.clip(idx - 1, 0, n - 1), axis=axis) + np.take(m, idx, axis=axis)
             + np.take(m, np.clip(idx + 1, 0, n - 1), axis=axis)) / np.float32(3)
    return m.astype(np.float32)


def edit_region(acc, k):
    """acc [h, w]: the mean over the first round(k["share"]·steps) steps of σ·|v_p − v_∅| (the guidance term's pull on the clean
    image, channels averaged). → soft mask [h, w] in [0, 1], 1 where the edit may draw, or None for a global edit
    (the mask covers more than k["global_share"] of the picture)."""
    m = np.clip((acc - np.float32(k["lo"])) / np.float32(k["hi"] - k["lo"]), 0, 1).astype(np.float32)
    grown = grow_mask(m, int(k["grow"]))
    if float(grown.mean()) > k["global_share"]:
        return None
    if k.get("prune"):  # parts of the pull that never reach `hi` are noise, not the edit: the source is kept there
        m = prune_islands(m)
        grown = grow_mask(m, int(k["grow"]))
    return grown


def prune_islands(m):
    """drops the 8-connected parts of the mask (m > 0) that never reach 1"""
    h, w = m.shape
    seen = np.zeros((h, w), bool)
    out = m.copy()
    for y0 in range(h):
        for x0 in range(w):
            if seen[y0, x0] or m[y0, x0] <= 0:
                continue
            stack, part = [(y0, x0)], []
            seen[y0, x0] = True
            while stack:
                y, x = stack.pop()
                part.append((y, x))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h and 0 <= xx < w and not seen[yy, xx] and m[yy, xx] > 0:
                            seen[yy, xx] = True
                            stack.append((yy, xx))
            if max(m[y, x] for y, x in part) < 1:
                for y, x in part:
                    out[y, x] = 0
    return out


def choose_grid(grids, width, height):
    target = math.log(width / height)
    return min(grids, key=lambda g: abs(math.log(g[1] / g[0]) - target))


# ------------------------------------------------------------------------------------------------ pipeline

class Pipeline:
    def __init__(self, cfg, vocab, te, dn, sr, sampler=None, up=None):
        self.cfg, self.vocab, self.te, self.dn, self.sr, self.up = cfg, vocab, te, dn, sr, up
        self.sp = dict(SAMPLER_DEFAULTS, **(sampler or {}))
        if os.environ.get("EDIT_KEEP"):  # experiments: a JSON object, or "off"
            import json
            self.sp["edit_keep"] = None if os.environ["EDIT_KEEP"] == "off" else json.loads(os.environ["EDIT_KEEP"])
        self.w2i = {w: i for i, w in enumerate(vocab)}

    @classmethod
    def from_checkpoint(cls, ckpt, sr_ckpt=None, up_ckpt=None):
        """up_ckpt: the edge-field upsampler (upsampler.py); without it the decode is SR ×4 then lanczos"""
        from export import load_models
        cfg, vocab, te, dn, sr = load_models(ckpt, sr_ckpt)
        up = None
        if up_ckpt and os.path.exists(up_ckpt):
            from upsampler import load_net
            up = load_net(up_ckpt)[0]
        return cls(cfg, vocab, te, dn, sr, up=up)

    def tokenize(self, s):
        T = self.cfg["max_tokens"]
        ids = [self.w2i.get(w, 1) for w in S.tokenize_words(s or "")][:T]
        return ids + [0] * (T - len(ids))

    @torch.no_grad()
    def generate(self, prompt, seed=0, width=1024, height=768, negative_prompt=None, steps=None, cfg_scale=None,
                 refs=None, return_lowres=False):
        """refs: list of uint8 [h,w,3] arrays (reference images 1..k). Returns uint8 [height,width,3]."""
        from PIL import Image
        P = self.cfg["patch"]
        C = 3 * P * P
        steps = steps or self.sp["steps"]
        scale = self.sp["true_cfg_scale"] if cfg_scale is None else cfg_scale
        r, c = choose_grid(self.cfg["grids"], width, height)
        N = r * c
        # batch rows: [prompt, empty] (+ [negative prompt] when one is given); see CONTRACT.md "Guidance"
        texts = [prompt, ""] + ([negative_prompt] if negative_prompt else [])
        neg_scale = self.sp.get("negative_cfg_scale", scale)
        use_cfg = bool(negative_prompt) or scale > 1
        if not use_cfg:
            texts = texts[:1]
        ids = torch.tensor([self.tokenize(t) for t in texts], dtype=torch.long)
        B = ids.shape[0]
        text = self.te(ids)
        tmask = (ids != 0).float()
        refs = refs or []
        if refs:
            toks = []
            for im in refs:
                im = Image.fromarray(np.asarray(im, np.uint8)).convert("RGB").resize((c * P, r * P), Image.LANCZOS)
                toks.append(S.patchify(S.to_unit(np.asarray(im, np.float32)), P))
            ref = torch.from_numpy(np.concatenate(toks, 0)).float()[None].repeat(B, 1, 1)
            rmask = torch.ones(B, ref.shape[1])
        else:
            ref = torch.zeros(B, 1, C)
            rmask = torch.zeros(B, 1)
        from mmdit import make_pos
        pos = make_pos((r, c), len(refs))
        x = torch.from_numpy(normals(seed & 0xFFFFFFFF, N * C).astype(np.float32).reshape(1, N, C))
        sg = sigmas(steps, N, self.sp)
        # Edits keep the rest (CONTRACT.md "Edits"): the first round(share·steps) steps measure where the instruction
        # pulls the picture away from the source; outside that region every later step is put back on the source's
        # own path (1 − σ)·src + σ·ε, so the drawing there ends as the source.
        keep = self.sp.get("edit_keep") if len(refs) == 1 and use_cfg else None
        measure = max(1, math.floor(keep["share"] * steps + 0.5)) if keep and keep.get("share", 0) > 0 else 0
        keep = keep if 0 < measure < steps else None
        eps, src, acc, region, keep_tok = x.clone(), ref[0, :N][None], None, None, None
        for i in range(steps):
            sig = torch.full((B,), float(sg[i]), dtype=torch.float32)
            v = self.dn(x.repeat(B, 1, 1), sig, text, tmask, ref, rmask, pos)
            if use_cfg:
                cond, unc = v[0:1], v[1:2]
                if keep and i < measure:
                    pull = S.unpatchify((np.float32(sg[i]) * (cond - unc)).abs().numpy()[0], r, c, P).mean(0)
                    acc = pull if acc is None else acc + pull
                comb = unc + scale * (cond - unc)
                if B == 3:  # the negative prompt gets its own term, as strong as the prompt's
                    comb = comb - neg_scale * (v[2:3] - unc)
                comb = comb * (cond.norm(dim=-1, keepdim=True) / comb.norm(dim=-1, keepdim=True).clamp_min(1e-12))
                v = comb
            x = x + float(sg[i + 1] - sg[i]) * v
            if keep and i == measure - 1:
                region = edit_region(acc / np.float32(measure), keep)
                if region is not None:
                    keep_tok = torch.from_numpy(S.patchify(np.repeat(region[None], 3, 0), P))[None]
            if keep_tok is not None:
                s1 = float(sg[i + 1])
                x = keep_tok * x + (1 - keep_tok) * ((1 - s1) * src + s1 * eps)
        self.last_region = region
        low = torch.from_numpy(S.unpatchify(x.numpy(), r, c, P)).clamp(-1, 1)
        if return_lowres:
            lowimg = ((low[0].numpy().transpose(1, 2, 0) + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        if self.up is not None:
            from upsampler import FLATTEN, SMOOTH, upsample
            out = upsample(self.up, low, height, width, flat=FLATTEN, smooth=SMOOTH)[0].numpy().transpose(1, 2, 0)
            out = ((out + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        else:
            hi = self.sr(low)[0].numpy().transpose(1, 2, 0)
            hi = ((hi + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
            out = np.asarray(Image.fromarray(hi).resize((width, height), Image.LANCZOS))
        if region is not None and keep.get("paste", True):
            # outside the edit region the output is the source image itself, at the output size
            m = np.asarray(Image.fromarray(region).resize((width, height), Image.BILINEAR), np.float32)[..., None]
            srcimg = np.asarray(Image.fromarray(np.asarray(refs[0], np.uint8)).convert("RGB").resize((width, height), Image.LANCZOS), np.float32)
            out = np.clip(np.round(m * out + (1 - m) * srcimg), 0, 255).astype(np.uint8)
        return (out, lowimg, x[0].numpy()) if return_lowres else out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints/main/ckpt.pt"))
    ap.add_argument("--sr-ckpt", default=os.path.join(HERE, "checkpoints/main/sr.pt"))
    ap.add_argument("--up-ckpt", default=os.path.join(HERE, "weights/torch/up.pt"))
    ap.add_argument("--prompt", default="a red house on the left and a green tree on the right at sunset")
    ap.add_argument("--negative", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=768)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--ref", action="append", default=[])
    ap.add_argument("--out", default="/tmp/sample.png")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    from PIL import Image
    pipe = Pipeline.from_checkpoint(a.ckpt, a.sr_ckpt, a.up_ckpt)
    refs = [np.asarray(Image.open(p).convert("RGB")) for p in a.ref]
    img = pipe.generate(a.prompt, a.seed, a.width, a.height, a.negative, a.steps, refs=refs)
    Image.fromarray(img).save(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
