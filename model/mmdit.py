"""qwen-image-mini: a miniature MMDiT (Qwen-Image style) + text encoder + super-resolution net.

Written for torch 1.13 + ONNX opset 17: attention by hand, layer norm via F.layer_norm with constant
weight/bias buffers, no Python logic that depends on tensor shapes except slicing by another input's size.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG = -1e4


def layer_norm(x, eps=1e-6):
    # explicit formula: exports as plain ops (no LayerNormalization node issues)
    mu = x.mean(-1, keepdim=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdim=True)
    return xc * torch.rsqrt(var + eps)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


def attention(q, k, v, bias):
    """q [B,H,Lq,hd], k/v [B,H,Lk,hd], bias [B,1,1,Lk] additive."""
    if q.is_cuda and hasattr(F, "scaled_dot_product_attention"):  # training on a GPU: same maths, fused kernel
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1])) + bias
    return torch.matmul(torch.softmax(s, dim=-1), v)


class TextEncoder(nn.Module):
    def __init__(self, vocab, dim=128, layers=2, heads=4, max_tokens=32):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(max_tokens, dim) * 0.02)
        self.heads = heads
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(nn.ModuleDict(dict(
                n1=RMSNorm(dim), qkv=nn.Linear(dim, 3 * dim), o=nn.Linear(dim, dim),
                n2=RMSNorm(dim), fc1=nn.Linear(dim, 3 * dim), fc2=nn.Linear(3 * dim, dim))))
        self.nf = RMSNorm(dim)

    def forward(self, input_ids):
        B = input_ids.shape[0]
        T = input_ids.shape[1]
        mask = (input_ids != 0).float()
        bias = ((1.0 - mask) * NEG)[:, None, None, :]
        x = self.emb(input_ids) + self.pos[:T][None]
        H = self.heads
        for b in self.blocks:
            h = b["n1"](x)
            qkv = b["qkv"](h).reshape(B, T, 3, H, -1).permute(2, 0, 3, 1, 4)
            a = attention(qkv[0], qkv[1], qkv[2], bias)
            x = x + b["o"](a.permute(0, 2, 1, 3).reshape(B, T, -1))
            x = x + b["fc2"](F.gelu(b["fc1"](b["n2"](x)), approximate="tanh"))
        return self.nf(x)


def timestep_embedding(sigma, dim=128):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=sigma.device) / half)
    args = (sigma.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Rope3D(nn.Module):
    """3-axis RoPE over (frame, row, col); head dim split into (axes_dims) chunks."""

    def __init__(self, head_dim, axes_dims=(8, 12, 12), base=100.0):
        super().__init__()
        assert sum(axes_dims) == head_dim and all(d % 2 == 0 for d in axes_dims)
        fr = []
        ax = []
        for i, d in enumerate(axes_dims):
            fr.append(1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32) / d)))
            ax.append(torch.full((d // 2,), i, dtype=torch.long))
        self.register_buffer("freqs", torch.cat(fr), persistent=False)
        # one-hot [3, hd/2] selecting which pos axis drives each frequency
        sel = torch.zeros(3, head_dim // 2)
        sel[torch.cat(ax), torch.arange(head_dim // 2)] = 1.0
        self.register_buffer("sel", sel, persistent=False)

    def forward(self, pos):
        ang = torch.matmul(pos, self.sel) * self.freqs  # [L, hd/2]
        return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    """x [B,H,L,hd]; cos/sin [L,hd/2]; rotate interleaved pairs."""
    xe = x[..., 0::2]
    xo = x[..., 1::2]
    re = xe * cos - xo * sin
    ro = xe * sin + xo * cos
    return torch.stack([re, ro], dim=-1).flatten(-2)


class StreamParts(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        hd = dim // heads
        self.mod = nn.Linear(dim, 6 * dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.qn = RMSNorm(hd)
        self.kn = RMSNorm(hd)
        self.o = nn.Linear(dim, dim)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)


class JointBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=3):
        super().__init__()
        self.heads = heads
        self.img = StreamParts(dim, heads, mlp_ratio)
        self.txt = StreamParts(dim, heads, mlp_ratio)

    def _qkv(self, p, x, mod):
        B = x.shape[0]
        L = x.shape[1]
        sh, sc, g, sh2, sc2, g2 = mod.chunk(6, dim=-1)
        h = layer_norm(x) * (1 + sc[:, None]) + sh[:, None]
        qkv = p.qkv(h).reshape(B, L, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        return p.qn(qkv[0]), p.kn(qkv[1]), qkv[2], (g, sh2, sc2, g2)

    def _post(self, p, x, a, rest):
        g, sh2, sc2, g2 = rest
        B = x.shape[0]
        L = x.shape[1]
        x = x + g[:, None] * p.o(a.permute(0, 2, 1, 3).reshape(B, L, -1))
        h = layer_norm(x) * (1 + sc2[:, None]) + sh2[:, None]
        return x + g2[:, None] * p.fc2(F.gelu(p.fc1(h), approximate="tanh"))

    def forward(self, xi, xt, temb, cos, sin, bias):
        ti = F.silu(temb)
        qi, ki, vi, ri = self._qkv(self.img, xi, self.img.mod(ti))
        qt, kt, vt, rt = self._qkv(self.txt, xt, self.txt.mod(ti))
        qi = apply_rope(qi, cos, sin)
        ki = apply_rope(ki, cos, sin)
        k = torch.cat([kt, ki], dim=2)
        v = torch.cat([vt, vi], dim=2)
        ai = attention(qi, k, v, bias)  # queries grouped per stream: no split of a joint output needed
        at = attention(qt, k, v, bias)
        return self._post(self.img, xi, ai, ri), self._post(self.txt, xt, at, rt)


class Denoiser(nn.Module):
    def __init__(self, token_dim=48, text_dim=128, dim=160, depth=4, heads=5, mlp_ratio=3,
                 axes_dims=(8, 12, 12), t_dim=128):
        super().__init__()
        self.t_dim = t_dim
        self.img_in = nn.Linear(token_dim, dim)
        self.txt_norm = RMSNorm(text_dim)
        self.txt_in = nn.Linear(text_dim, dim)
        self.t_mlp = nn.Sequential(nn.Linear(t_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.rope = Rope3D(dim // heads, axes_dims)
        self.blocks = nn.ModuleList([JointBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.final_mod = nn.Linear(dim, 2 * dim)
        self.final = nn.Linear(dim, token_dim)
        nn.init.zeros_(self.final_mod.weight)
        nn.init.zeros_(self.final_mod.bias)
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)

    def forward(self, img, sigma, text, text_mask, ref, ref_mask, pos):
        temb = self.t_mlp(timestep_embedding(sigma, self.t_dim))
        xi = self.img_in(torch.cat([img, ref], dim=1))  # target tokens then reference tokens
        xt = self.txt_in(self.txt_norm(text))
        ones = torch.ones_like(img[:, :, 0])
        keymask = torch.cat([text_mask, ones, ref_mask], dim=1)
        bias = ((1.0 - keymask) * NEG)[:, None, None, :]
        cos, sin = self.rope(pos)
        for blk in self.blocks:
            xi, xt = blk(xi, xt, temb, cos, sin, bias)
        sh, sc = self.final_mod(F.silu(temb)).chunk(2, dim=-1)
        h = layer_norm(xi) * (1 + sc[:, None]) + sh[:, None]
        out = self.final(h)
        return out[:, : img.shape[1]]


class SRNet(nn.Module):
    """ESPCN-style: all convolutions at low resolution, pixel shuffle ×S, residual over bilinear upsampling."""

    def __init__(self, scale=4, ch=48, layers=4):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, ch, 3, padding=1)
        self.body = nn.ModuleList([nn.Conv2d(ch, ch, 3, padding=1) for _ in range(layers)])
        self.tail = nn.Conv2d(ch, 3 * scale * scale, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, lowres):
        h = F.relu(self.head(lowres))
        for c in self.body:
            h = h + F.relu(c(h))
        r = F.pixel_shuffle(self.tail(h), self.scale)
        up = F.interpolate(lowres, scale_factor=float(self.scale), mode="bilinear", align_corners=False)
        return torch.clamp(up + r, -1.0, 1.0)


def make_pos(grid, n_refs):
    """(frame,row,col) for target + n_refs reference images, all on the same grid."""
    r, c = grid
    rr, cc = torch.meshgrid(torch.arange(r, dtype=torch.float32), torch.arange(c, dtype=torch.float32), indexing="ij")
    base = torch.stack([torch.zeros(r * c), rr.flatten(), cc.flatten()], dim=-1)
    parts = [base]
    for k in range(1, n_refs + 1):
        p = base.clone()
        p[:, 0] = k
        parts.append(p)
    if n_refs == 0:
        parts.append(torch.zeros(1, 3))  # dummy reference token
    return torch.cat(parts, dim=0)


def count_params(m):
    return sum(p.numel() for p in m.parameters())
