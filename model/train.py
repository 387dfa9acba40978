"""Train qwen-image-mini (text encoder + MMDiT denoiser jointly; SR net with --sr).

  /usr/bin/python3 model/train.py --minutes 85 --out model/checkpoints/main          # CPU (2 threads)
  /usr/bin/python3 model/train.py --device cuda --steps 40000 --batch 64 --out ...    # GPU
  /usr/bin/python3 model/train.py --sr --minutes 10 --out model/checkpoints/main      # super-resolution net

Resumes from <out>/ckpt.pt (or sr.pt) when present. Fixed seeds: the data for step k is drawn from
np.random.default_rng((seed, k)), so a resumed run sees the same stream. Logs to <out>/train.log.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenes as S  # noqa: E402
from mmdit import Denoiser, SRNet, TextEncoder, count_params, make_pos  # noqa: E402

DEFAULT_CFG = {
    "patch": 4,
    "grids": [[8, 20], [9, 16], [10, 14], [12, 12], [14, 10], [16, 9], [20, 8]],
    "max_tokens": 32,
    "text_dim": 128, "text_layers": 2, "text_heads": 4,
    "dim": 128, "depth": 5, "heads": 4, "mlp_ratio": 3, "axes_dims": [8, 12, 12],
    "sr_scale": 4, "sr_ch": 48, "sr_layers": 4,
    "logit_mean": 0.5, "logit_std": 1.0,
}
TINY_CFG = dict(DEFAULT_CFG, text_dim=16, text_layers=2, text_heads=2, dim=32, depth=2, heads=2, mlp_ratio=2,
                axes_dims=[4, 6, 6], sr_ch=8, sr_layers=1)


def build_models(cfg):
    te = TextEncoder(len(S.VOCAB), cfg["text_dim"], cfg["text_layers"], cfg["text_heads"], cfg["max_tokens"])
    dn = Denoiser(3 * cfg["patch"] ** 2, cfg["text_dim"], cfg["dim"], cfg["depth"], cfg["heads"], cfg["mlp_ratio"],
                  tuple(cfg["axes_dims"]))
    return te, dn


class Joint(torch.nn.Module):
    def __init__(self, te, dn):
        super().__init__()
        self.te = te
        self.dn = dn


# ------------------------------------------------------------------------------------------------ data

def grid_px(cfg, g):
    return g[0] * cfg["patch"], g[1] * cfg["patch"]


def make_batch(cfg, rng, kind, grid, B):
    P = cfg["patch"]
    H, W = grid_px(cfg, grid)
    ids, x0s, refs, wts = [], [], [], []
    n_refs = {"t2i": 0, "edit": 1, "multi": 2}[kind]
    for _ in range(B):
        if kind == "t2i":
            sc = S.random_scene(rng)
            cap = S.caption(sc, rng)
            tgt = S.render(sc, H, W)
            rr = []
        elif kind == "edit":
            src = S.random_scene(rng)
            tsc, cap, _ = S.make_edit(src, rng)
            tgt = S.render(tsc, H, W)
            rr = [S.render(src, H, W)]
        else:
            a, b, tsc, cap, _ = S.make_multi(rng)
            tgt = S.render(tsc, H, W)
            rr = [S.render(a, H, W), S.render(b, H, W)]
        if kind != "t2i" and rng.random() < 0.1:
            cap = ""
        ids.append(S.tokenize(cap, cfg["max_tokens"]))
        x0s.append(S.patchify(S.to_unit(tgt), P))
        if cfg.get("obj_weight", 0):
            # per-token loss weight 1 + w·(fraction of object pixels): objects are small, backgrounds dominate
            bg = S.render(dict(tsc if kind != "t2i" else sc, objects=[]), H, W, ss=1)
            m = (np.abs(tgt - bg).sum(-1) > 3.0).astype(np.float32)
            frac = m.reshape(H // P, P, W // P, P).mean(axis=(1, 3)).reshape(-1)
            wts.append(1.0 + cfg["obj_weight"] * frac)
        if rr:
            refs.append(np.concatenate([S.patchify(S.to_unit(r), P) for r in rr], 0))
    C = 3 * P * P
    ids = torch.tensor(ids, dtype=torch.long)
    x0 = torch.from_numpy(np.stack(x0s)).float()
    if n_refs:
        ref = torch.from_numpy(np.stack(refs)).float()
        ref_mask = torch.ones(B, ref.shape[1])
    else:
        ref = torch.zeros(B, 1, C)
        ref_mask = torch.zeros(B, 1)
    pos = make_pos(grid, n_refs)
    wt = torch.from_numpy(np.stack(wts)).float() if wts else torch.ones(x0.shape[0], x0.shape[1])
    return ids, x0, ref, ref_mask, pos, wt


def sample_sigma(cfg, rng, B):
    z = rng.normal(cfg["logit_mean"], cfg["logit_std"], B)
    s = 1 / (1 + np.exp(-z))
    u = rng.random(B)
    s = np.where(rng.random(B) < 0.1, u, s)
    return torch.tensor(np.clip(s, 1e-3, 1.0), dtype=torch.float32)


# ------------------------------------------------------------------------------------------------ denoiser

def train_denoiser(a):
    dev = torch.device(a.device)
    os.makedirs(a.out, exist_ok=True)
    ck_path = os.path.join(a.out, "ckpt.pt")
    cfg = dict(DEFAULT_CFG)
    if a.dim:
        cfg["dim"] = a.dim
    if a.depth:
        cfg["depth"] = a.depth
    torch.manual_seed(a.seed)
    te, dn = build_models(cfg)
    model = Joint(te, dn).to(dev)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=0.01)
    step, elapsed = 0, 0.0
    hist = []
    if os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location="cpu")
        cfg = ck["cfg"]
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, elapsed, hist = ck["step"], ck["elapsed"], ck.get("hist", [])
        print(f"resumed at step {step}, {elapsed/60:.1f} min", flush=True)
    log = open(os.path.join(a.out, "train.log"), "a")
    n_te, n_dn = count_params(te), count_params(dn)
    msg = f"params text_encoder={n_te} denoiser={n_dn} total={n_te+n_dn} cfg={json.dumps(cfg)}"
    print(msg, flush=True)
    log.write(msg + "\n")
    budget = a.minutes * 60 if a.minutes else None
    t_start = time.time() - elapsed
    last_ck = time.time()
    run_loss, run_n = 0.0, 0
    kinds, kp = ["t2i", "edit", "multi"], [a.p_t2i, a.p_edit, 1.0 - a.p_t2i - a.p_edit]
    cfg["obj_weight"] = a.obj_weight
    bsz = {"t2i": a.batch, "edit": max(1, a.batch // 2), "multi": max(1, a.batch // 3)}

    def save():
        ck = {"cfg": cfg, "model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
              "step": step, "elapsed": time.time() - t_start, "hist": hist, "vocab": S.VOCAB}
        torch.save(ck, ck_path + ".tmp")
        os.replace(ck_path + ".tmp", ck_path)

    while True:
        el = time.time() - t_start
        frac = el / budget if budget else step / a.steps
        if (budget and el >= budget) or (a.steps and step >= a.steps):
            break
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        rng = np.random.default_rng([a.seed, step])
        kind = kinds[rng.choice(3, p=kp)]
        grid = cfg["grids"][rng.integers(len(cfg["grids"]))]
        ids, x0, ref, ref_mask, pos, wt = make_batch(cfg, rng, kind, grid, bsz[kind])
        B = x0.shape[0]
        sig = sample_sigma(cfg, rng, B)
        noise = torch.from_numpy(rng.standard_normal(x0.shape).astype(np.float32))
        ids, x0, ref, ref_mask, pos, sig, noise, wt = (t.to(dev) for t in (ids, x0, ref, ref_mask, pos, sig, noise, wt))
        xs = (1 - sig[:, None, None]) * x0 + sig[:, None, None] * noise
        text = model.te(ids)
        tmask = (ids != 0).float()
        v = model.dn(xs, sig, text, tmask, ref, ref_mask, pos)
        loss = (((v - (noise - x0)) ** 2).mean(-1) * wt).sum() / wt.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        step += 1
        run_loss += loss.item()
        run_n += 1
        if step % a.log_every == 0:
            el = time.time() - t_start
            hist.append([step, round(el, 1), run_loss / run_n])
            msg = f"step {step} t={el/60:.1f}m loss={run_loss/run_n:.4f} lr={lr:.2e} {el/step:.2f}s/step"
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
            run_loss, run_n = 0.0, 0
        if time.time() - last_ck > a.ckpt_minutes * 60:
            save()
            last_ck = time.time()
    save()
    msg = f"done step {step} elapsed {(time.time()-t_start)/60:.1f} min"
    print(msg, flush=True)
    log.write(msg + "\n")
    log.close()


# ------------------------------------------------------------------------------------------------ SR

def sr_pair(cfg, rng, B):
    P, Ssc = cfg["patch"], cfg["sr_scale"]
    grid = cfg["grids"][rng.integers(len(cfg["grids"]))]
    H, W = grid_px(cfg, grid)
    lo, hi = [], []
    for _ in range(B):
        sc = S.random_scene(rng, avoid_heldout=False)
        l = S.to_unit(S.render(sc, H, W))
        h = S.to_unit(S.render(sc, H * Ssc, W * Ssc, ss=2))
        if rng.random() < 0.7:  # mimic generator artifacts: small noise
            l = l + rng.normal(0, rng.uniform(0.0, 0.06), l.shape).astype(np.float32)
        lo.append(l)
        hi.append(h)
    return torch.from_numpy(np.stack(lo)).float(), torch.from_numpy(np.stack(hi)).float()


def train_sr(a):
    dev = torch.device(a.device)
    os.makedirs(a.out, exist_ok=True)
    ck_path = os.path.join(a.out, a.sr_file)
    cfg = dict(DEFAULT_CFG, sr_scale=a.sr_scale, sr_ch=a.sr_ch, sr_layers=a.sr_layers)
    torch.manual_seed(a.seed + 1)
    net = SRNet(cfg["sr_scale"], cfg["sr_ch"], cfg["sr_layers"]).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    step, elapsed = 0, 0.0
    if os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location="cpu")
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, elapsed = ck["step"], ck["elapsed"]
    log = open(os.path.join(a.out, a.sr_file.replace(".pt", ".log")), "a")
    t_start = time.time() - elapsed
    budget = a.minutes * 60
    last_ck = time.time()
    rl, rn = 0.0, 0

    def save():
        torch.save({"cfg": cfg, "model": net.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": time.time() - t_start}, ck_path + ".tmp")
        os.replace(ck_path + ".tmp", ck_path)

    while time.time() - t_start < budget and (not a.steps or step < a.steps):
        frac = (time.time() - t_start) / budget
        for g in opt.param_groups:
            g["lr"] = 2e-3 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        rng = np.random.default_rng([a.seed + 7, step])
        lo, hi = sr_pair(cfg, rng, a.sr_batch)
        lo, hi = lo.to(dev), hi.to(dev)
        loss = F.l1_loss(net(lo), hi)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        rl += loss.item()
        rn += 1
        if step % 25 == 0:
            msg = f"sr step {step} t={(time.time()-t_start)/60:.1f}m l1={rl/rn:.4f}"
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
            rl, rn = 0.0, 0
        if time.time() - last_ck > 120:
            save()
            last_ck = time.time()
    save()
    log.write(f"sr done step {step}\n")
    log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--minutes", type=float, default=0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--out", default="model/checkpoints/main")
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--dim", type=int, default=0)
    ap.add_argument("--depth", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--p-t2i", type=float, default=0.7, help="share of text-to-image steps (rest: edits, multi-image)")
    ap.add_argument("--p-edit", type=float, default=0.22)
    ap.add_argument("--obj-weight", type=float, default=3.0, help="extra loss weight on object pixels")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("TORCH_THREADS", "2")))
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--ckpt-minutes", type=float, default=5)
    ap.add_argument("--sr", action="store_true", help="train the super-resolution net instead")
    ap.add_argument("--sr-file", default="sr.pt")
    ap.add_argument("--sr-scale", type=int, default=DEFAULT_CFG["sr_scale"])
    ap.add_argument("--sr-ch", type=int, default=DEFAULT_CFG["sr_ch"])
    ap.add_argument("--sr-layers", type=int, default=DEFAULT_CFG["sr_layers"])
    ap.add_argument("--sr-batch", type=int, default=8)
    a = ap.parse_args()
    if not a.minutes and not a.steps:
        ap.error("give --minutes and/or --steps")
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    if a.sr:
        train_sr(a)
    else:
        train_denoiser(a)


if __name__ == "__main__":
    main()
