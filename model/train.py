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


def data_vocab(cfg):
    """the word list a config trains with: v1's 111 words, or v2's (the same ids, new words appended)."""
    return S.VOCAB2 if cfg.get("data", 1) == 2 else S.VOCAB


def build_models(cfg):
    te = TextEncoder(len(data_vocab(cfg)), cfg["text_dim"], cfg["text_layers"], cfg["text_heads"], cfg["max_tokens"])
    dn = Denoiser(3 * cfg["patch"] ** 2, cfg["text_dim"], cfg["dim"], cfg["depth"], cfg["heads"], cfg["mlp_ratio"],
                  tuple(cfg["axes_dims"]))
    return te, dn


class Joint(torch.nn.Module):
    def __init__(self, te, dn):
        super().__init__()
        self.te = te
        self.dn = dn


# ------------------------------------------------------------------------------------------------ data

# out-of-vocabulary filler (maps to <unk>): the offline prompt rewriter's suffix and common prompt padding
JUNK = ["ultra", "hd", "4k", "8k", "cinematic", "composition", "detailed", "highly", "realistic", "photograph",
        "beautiful", "high", "quality", "style", "masterpiece", "sharp", "focus", "lighting", "art", "vivid"]

def grid_px(cfg, g):
    return g[0] * cfg["patch"], g[1] * cfg["patch"]


def make_batch(cfg, rng, kind, grid, B):
    P = cfg["patch"]
    H, W = grid_px(cfg, grid)
    ids, x0s, refs, wts = [], [], [], []
    n_refs = {"t2i": 0, "edit": 1, "multi": 2}[kind]
    v2 = cfg.get("data", 1) == 2
    vocab = data_vocab(cfg)
    op_p = cfg.get("edit_op_p")
    for _ in range(B):
        # data v2: a share (p_v1) of the samples still come from the v1 generator, so that nothing is forgotten
        new = v2 and rng.random() >= cfg.get("p_v1", 0.3)
        if kind == "t2i":
            sc = S.random_scene2(rng, new_objects=cfg.get("new_objects")) if new else S.random_scene(rng)
            cap = S.caption2(sc, rng) if new else S.caption(sc, rng)
            tgt = S.render(sc, H, W)
            rr = []
        elif kind == "edit":
            src = S.random_scene2(rng, new_objects=cfg.get("new_objects")) if new else S.random_scene(rng)
            tsc, cap, _ = S.make_edit(src, rng, op_p=op_p, v2=new)
            tgt = S.render(tsc, H, W)
            rr = [S.render(src, H, W)]
        else:
            a, b, tsc, cap, _ = S.make_multi(rng, v2=new)
            tgt = S.render(tsc, H, W)
            rr = [S.render(a, H, W), S.render(b, H, W)]
        if kind != "t2i" and rng.random() < 0.1:
            cap = ""
        if cap and cfg.get("junk_p", 0) and rng.random() < cfg["junk_p"]:
            # words outside the vocabulary (<unk>), as prompt rewriters and users add them: learn to ignore them
            junk = [JUNK[i] for i in rng.choice(len(JUNK), int(rng.integers(1, 6)), replace=False)]
            cap = cap + ", " + " ".join(junk) if rng.random() < 0.8 else " ".join(junk) + " " + cap
        ids.append(S.tokenize(cap, cfg["max_tokens"], vocab))
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


def gen_step(cfg, seed, step, kp, bsz):
    """everything random for training step `step` (numpy only; deterministic in (seed, step)): used in-process
    and by data workers."""
    rng = np.random.default_rng([seed, step])
    kind = ["t2i", "edit", "multi"][rng.choice(3, p=kp)]
    grid = cfg["grids"][rng.integers(len(cfg["grids"]))]
    ids, x0, ref, ref_mask, pos, wt = make_batch(cfg, rng, kind, grid, bsz[kind])
    sig = sample_sigma(cfg, rng, x0.shape[0])
    return {"ids": ids.numpy(), "x0": x0.numpy(), "ref": ref.numpy(), "ref_mask": ref_mask.numpy(),
            "pos": pos.numpy(), "wt": wt.numpy(), "sig": sig.numpy()}


_WORKER = None


def _worker_init(args):
    global _WORKER
    torch.set_num_threads(1)
    _WORKER = args


def _worker_gen(step):
    cfg, seed, kp, bsz = _WORKER
    return gen_step(cfg, seed, step, kp, bsz)


class Prefetcher:
    """batches for steps start, start+1, … made by a process pool, `depth` in flight, handed out in order."""

    def __init__(self, workers, args, start, depth):
        import collections
        import multiprocessing as mp
        self.pool = mp.get_context("fork").Pool(workers, _worker_init, (args,))
        self.next = start
        self.q = collections.deque()
        for _ in range(depth):
            self._submit()

    def _submit(self):
        self.q.append(self.pool.apply_async(_worker_gen, (self.next,)))
        self.next += 1

    def get(self):
        r = self.q.popleft().get()
        self._submit()
        return r

    def close(self):
        self.pool.terminate()


def sample_sigma(cfg, rng, B):
    z = rng.normal(cfg["logit_mean"], cfg["logit_std"], B)
    s = 1 / (1 + np.exp(-z))
    u = rng.random(B)
    s = np.where(rng.random(B) < 0.1, u, s)
    return torch.tensor(np.clip(s, 1e-3, 1.0), dtype=torch.float32)


# ------------------------------------------------------------------------------------------------ denoiser

def _half_state(sd):
    return {k: (v.detach().to("cpu").half() if v.is_floating_point() else v.detach().to("cpu")) for k, v in sd.items()}


def widen_vocab(state, old_vocab, new_vocab):
    """a v1 state dict with its embedding table widened to new_vocab (v1 ids are a prefix): each new word starts
    from a related v1 word (S.V2_EMBED_FROM: "trees" from "tree") or from the mean embedding, plus a little noise."""
    assert list(new_vocab[:len(old_vocab)]) == list(old_vocab), "the new vocabulary must extend the old one"
    k = "te.emb.weight"
    w = state[k].float()
    g = torch.Generator().manual_seed(len(new_vocab))
    rows = []
    for word in new_vocab[len(old_vocab):]:
        src = S.V2_EMBED_FROM.get(word)
        base = w[old_vocab.index(src)] if src in old_vocab else w[2:].mean(0)
        rows.append(base + torch.randn(w.shape[1], generator=g) * 0.02)
    out = dict(state)
    out[k] = torch.cat([w, torch.stack(rows)]).to(state[k].dtype) if rows else state[k]
    return out


def save_slim(path, cfg, step, state):
    """weights only, rounded to fp16 (the exported ONNX is made from these same rounded values)."""
    torch.save({"cfg": cfg, "vocab": data_vocab(cfg), "step": step, "ema": _half_state(state)}, path + ".tmp")
    os.replace(path + ".tmp", path)


def train_denoiser(a):
    dev = torch.device(a.device)
    os.makedirs(a.out, exist_ok=True)
    ck_path = os.path.join(a.out, "ckpt.pt")
    cfg = dict(DEFAULT_CFG)
    for k in ("dim", "depth", "heads"):
        if getattr(a, k):
            cfg[k] = getattr(a, k)
    ck = torch.load(ck_path, map_location="cpu") if os.path.exists(ck_path) else None
    init = torch.load(a.init, map_location="cpu") if (a.init and not ck) else None
    if ck or init:
        cfg = dict((ck or init)["cfg"])
    cfg["obj_weight"] = a.obj_weight
    cfg["junk_p"] = a.junk_p
    if ck is None:  # the data version and mix are fixed when a run starts (a resumed run keeps its own)
        cfg["data"] = a.data
        if a.data == 2:
            cfg["p_v1"] = a.p_v1
            cfg["new_objects"] = a.new_objects.split(",") if a.new_objects else S.NEW_OBJECTS
        cfg["edit_op_p"] = [float(x) for x in a.edit_op_p.split(",")] if a.edit_op_p else None
    if init and len(init.get("vocab", S.VOCAB)) < len(data_vocab(cfg)):
        init = dict(init, ema=widen_vocab(init["ema"], list(init.get("vocab", S.VOCAB)), data_vocab(cfg)))
    kp = [a.p_t2i, a.p_edit, 1.0 - a.p_t2i - a.p_edit]
    bsz = {"t2i": a.batch, "edit": max(1, a.batch // 2), "multi": max(1, a.batch // 3)}
    step = ck["step"] if ck else 0
    # the worker pool is forked before CUDA is touched
    pre = Prefetcher(a.workers, (cfg, a.seed, kp, bsz), step, 4 * a.workers) if a.workers else None
    torch.manual_seed(a.seed)
    te, dn = build_models(cfg)
    model = Joint(te, dn)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    elapsed, hist = 0.0, []
    if ck:
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        elapsed, hist = ck["elapsed"], ck.get("hist", [])
        print(f"resumed at step {step}, {elapsed/60:.1f} min", flush=True)
    elif init:
        # warm start from slim weights (fresh optimiser and schedule)
        model.load_state_dict(init["ema"])
        ema.load_state_dict(init["ema"])
        print(f"initialised from {a.init} (step {init.get('step')})", flush=True)
    model.to(dev)
    ema.to(dev)
    cuda = dev.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=0.01,
                            **({"fused": True} if cuda else {}))
    if ck:
        opt.load_state_dict(ck["opt"])
    log = open(os.path.join(a.out, "train.log"), "a")
    n_te, n_dn = count_params(te), count_params(dn)
    msg = f"params text_encoder={n_te} denoiser={n_dn} total={n_te+n_dn} cfg={json.dumps(cfg)} args={vars(a)}"
    print(msg, flush=True)
    log.write(msg + "\n")
    budget = a.minutes * 60 if a.minutes else None
    t_start = time.time() - elapsed
    last_ck = time.time()
    run_loss, run_n = torch.zeros((), device=dev), 0
    wait_s = 0.0
    mparams = [p for p in model.parameters()]
    eparams = [p for p in ema.parameters()]
    amp = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if cuda else None

    def save():
        c = {"cfg": cfg, "model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
             "step": step, "elapsed": time.time() - t_start, "hist": hist, "vocab": data_vocab(cfg)}
        torch.save(c, ck_path + ".tmp")
        os.replace(ck_path + ".tmp", ck_path)
        save_slim(os.path.join(a.out, "ema16.pt"), cfg, step, ema.state_dict())

    while True:
        el = time.time() - t_start
        frac = el / budget if budget else step / a.steps
        if (budget and el >= budget) or (a.steps and step >= a.steps):
            break
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        t_wait = time.time()
        d = pre.get() if pre else gen_step(cfg, a.seed, step, kp, bsz)
        wait_s += time.time() - t_wait
        ids, x0, ref, ref_mask, pos, sig, wt = (torch.from_numpy(d[k]).to(dev, non_blocking=True) for k in
                                                ("ids", "x0", "ref", "ref_mask", "pos", "sig", "wt"))
        gen = torch.Generator(device=dev).manual_seed(a.seed * 1000003 + step)
        noise = torch.randn(x0.shape, generator=gen, device=dev)
        xs = (1 - sig[:, None, None]) * x0 + sig[:, None, None] * noise
        tmask = (ids != 0).float()
        if amp:
            with amp:
                v = model.dn(xs, sig, model.te(ids), tmask, ref, ref_mask, pos)
        else:
            v = model.dn(xs, sig, model.te(ids), tmask, ref, ref_mask, pos)
        loss = (((v.float() - (noise - x0)) ** 2).mean(-1) * wt).sum() / wt.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(mparams, 1.0)
        opt.step()
        dk = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            if cuda:
                torch._foreach_mul_(eparams, dk)
                torch._foreach_add_(eparams, mparams, alpha=1 - dk)
            else:
                for pe, pm in zip(eparams, mparams):
                    pe.mul_(dk).add_(pm.detach(), alpha=1 - dk)
        step += 1
        run_loss += loss.detach()
        run_n += 1
        if step % a.log_every == 0:
            el = time.time() - t_start
            hist.append([step, round(el, 1), run_loss.item() / run_n])
            msg = (f"step {step} t={el/60:.1f}m loss={hist[-1][2]:.4f} lr={lr:.2e} {el/step:.3f}s/step"
                   f" data-wait {wait_s/run_n*1000:.0f}ms/step")
            wait_s = 0.0
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
            run_loss, run_n = torch.zeros((), device=dev), 0
        if time.time() - last_ck > a.ckpt_minutes * 60:
            save()
            last_ck = time.time()
    save()
    if pre:
        pre.close()
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
    ap.add_argument("--heads", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0, help="data worker processes (0: make batches in-process)")
    ap.add_argument("--init", default="", help="warm start from a slim weights file (ema16.pt)")
    ap.add_argument("--junk-p", type=float, default=0.15, help="share of captions given out-of-vocabulary words")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--p-t2i", type=float, default=0.7, help="share of text-to-image steps (rest: edits, multi-image)")
    ap.add_argument("--p-edit", type=float, default=0.22)
    ap.add_argument("--data", type=int, default=1, choices=[1, 2],
                    help="2: the wider vocabulary (new things, sizes, counts, plain backgrounds; scenes.py v2)")
    ap.add_argument("--p-v1", type=float, default=0.3, help="data 2: share of samples still drawn from the v1 generator")
    ap.add_argument("--new-objects", default="", help="data 2: comma list of the new things to use (default all)")
    ap.add_argument("--edit-op-p", default="", help="probabilities over scenes.EDIT_OPS, comma separated (default: uniform)")
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
