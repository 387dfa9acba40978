"""Write parity fixtures (PyTorch reference outputs) to test/fixtures/parity/.

  /usr/bin/python3 model/make_parity.py --which tiny       # random tiny model (same as test/fixtures/tiny-model)
  /usr/bin/python3 model/make_parity.py --which bundled    # model/weights (from the checkpoint export.py used)
  /usr/bin/python3 model/make_parity.py --which common     # tokenizer / sigma schedule / noise cases

export.py calls this automatically after each export so fixtures and weights never drift apart.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes as S  # noqa: E402
from mmdit import make_pos  # noqa: E402
from sampler import Pipeline, choose_grid, normals, sigmas  # noqa: E402

OUT = os.path.join(HERE, "..", "test/fixtures/parity")


def q(x):
    """round to float32 values that survive a %.7g text round trip (so inputs in JSON are exact)."""
    x = np.asarray(x, np.float32)
    return np.array([float("%.7g" % v) for v in x.reshape(-1)], np.float32).reshape(x.shape)


def t(x, kind="float32"):
    x = np.asarray(x)
    if kind == "int64":
        return {"dims": list(x.shape), "data": [int(v) for v in x.reshape(-1)]}
    return {"dims": list(x.shape), "data": [float("%.7g" % v) for v in x.astype(np.float32).reshape(-1)]}


PROMPTS = ["a red house on the left and a green tree on the right at sunset",
           "a blue circle in the middle, snow, at night with a moon", "", "make the house red", "xyzzy tree!!"]


def common():
    toks = ["a red house on the left", "A RED House, on the LEFT!!", "make it night", "",
            "put the tree from image 2 into image 1", "a purple-ish  ufo near 3 grey hills",
            " ".join(["tree"] * 40), "naïve café über tree"]
    return {
        "tokenizer": [{"text": s, "max_tokens": 32, "ids": S.tokenize(s, 32)} for s in toks],
        "sigmas": [{"steps": st, "N": n, "sigmas": [float(v) for v in sigmas(st, n)]}
                   for st, n in [(20, 140), (20, 256), (20, 4096), (4, 144), (1, 160), (50, 8192)]],
        "noise": [{"seed": sd, "first16": [float(v) for v in normals(sd, 16)]} for sd in (0, 42, 2147483647)],
        "grid_choice": [{"width": w, "height": h, "grid": choose_grid(S_GRIDS, w, h)}
                        for w, h in [(1024, 768), (768, 1024), (1024, 1024), (1440, 512), (512, 1440), (1280, 720),
                                     (720, 1280), (1024, 576)]],
    }


S_GRIDS = None


def model_cases(pipe, sampler_e2e=True):
    cfg, te, dn, sr = pipe.cfg, pipe.te, pipe.dn, pipe.sr
    C = 3 * cfg["patch"] ** 2
    g = torch.Generator().manual_seed(123)
    out = {"text_encoder": [], "denoiser": [], "sr": [], "sampler": []}
    ids = np.array([pipe.tokenize(p) for p in PROMPTS], np.int64)
    with torch.no_grad():
        ts = te(torch.from_numpy(ids)).numpy()
    out["text_encoder"].append({"input_ids": t(ids, "int64"), "text_states": t(ts)})
    cases = [  # (B, grid, n_refs, prompt indices)
        (2, (10, 14), 0, [0, 2]),
        (2, (4, 6), 1, [3, 2]),
        (1, (6, 4), 2, [4]),
        (2, (3, 5), 3, [1, 2]),
    ]
    for B, grid, nr, pi in cases:
        N = grid[0] * grid[1]
        img = q(torch.randn(B, N, C, generator=g).numpy())
        sigma = q(torch.rand(B, generator=g).numpy())
        text = q(ts[pi])
        tmask = (ids[pi] != 0).astype(np.float32)
        if nr:
            ref = q((torch.rand(B, N * nr, C, generator=g) * 2 - 1).numpy())
            rmask = np.ones((B, N * nr), np.float32)
        else:
            ref = np.zeros((B, 1, C), np.float32)
            rmask = np.zeros((B, 1), np.float32)
        pos = make_pos(grid, nr).numpy()
        with torch.no_grad():
            v = dn(*(torch.from_numpy(a) for a in (img, sigma, text, tmask, ref, rmask, pos))).numpy()
        out["denoiser"].append({"grid": list(grid), "n_refs": nr, "img": t(img), "sigma": t(sigma), "text": t(text),
                                "text_mask": t(tmask), "ref": t(ref), "ref_mask": t(rmask), "pos": t(pos),
                                "velocity": t(v)})
    for h, w in [(10, 14), (7, 5)]:
        lo = q((torch.rand(1, 3, h, w, generator=g) * 2 - 1).numpy())
        with torch.no_grad():
            hi = sr(torch.from_numpy(lo)).numpy()
        out["sr"].append({"lowres": t(lo), "highres": t(hi)})
    if sampler_e2e:
        for prompt, neg, seed, steps in [(PROMPTS[0], "", 42, 4), ("a house", "a tree", 7, 3)]:
            r, c = choose_grid(cfg["grids"], 1024, 768)
            P = cfg["patch"]
            _, low, xfin = pipe.generate(prompt, seed, 1024, 768, negative_prompt=neg, steps=steps, return_lowres=True)
            out["sampler"].append({"prompt": prompt, "negative_prompt": neg, "seed": seed, "steps": steps,
                                   "true_cfg_scale": pipe.sp["true_cfg_scale"], "width": 1024, "height": 768,
                                   "grid": [r, c], "final_tokens": t(xfin)})
    return out


def edit_keep_case(pipe):
    """one edit with the bundled sampler's edit_keep: the source drawn at the grid's own size (no resize on either
    side), the final latent and the edit region"""
    r, c = choose_grid(pipe.cfg["grids"], 1024, 768)
    P = pipe.cfg["patch"]
    src = S.random_scene(np.random.default_rng(5), n_objects=2)
    ref = S.render(src, r * P, c * P, ss=1).round().astype(np.uint8)
    prompt, seed, steps = "remove the " + src["objects"][0]["type"], 11, 20
    _, _, xfin = pipe.generate(prompt, seed, 1024, 768, steps=steps, refs=[ref], return_lowres=True)
    region = pipe.last_region
    assert region is not None, "the fixture's edit should be local"
    return {"model": "model/weights", "prompt": prompt, "seed": seed, "steps": steps, "width": 1024, "height": 768,
            "edit_keep": pipe.sp["edit_keep"], "ref": {"width": c * P, "height": r * P, "data": ref.reshape(-1).tolist()},
            "grid": [r, c], "final_tokens": t(xfin), "region": t(region)}


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    p = os.path.join(OUT, name)
    with open(p, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    print("wrote", p, f"{os.path.getsize(p)/1e3:.0f} kB", flush=True)


def main():
    global S_GRIDS
    ap = argparse.ArgumentParser()
    ap.add_argument("--which", choices=["tiny", "bundled", "common", "edit", "all"], default="all")
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints/main/ckpt.pt"))
    ap.add_argument("--sr-ckpt", default=os.path.join(HERE, "checkpoints/main/sr.pt"))
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    from export import load_models
    from train import DEFAULT_CFG
    S_GRIDS = DEFAULT_CFG["grids"]
    if a.which in ("common", "all"):
        write("common.json", common())
    if a.which in ("tiny", "all"):
        pipe = Pipeline(*load_models(tiny=True, seed=0))
        write("tiny.json", dict(model="test/fixtures/tiny-model", **model_cases(pipe)))
    if a.which in ("bundled", "all"):
        pipe = Pipeline(*load_models(a.ckpt, a.sr_ckpt))
        write("bundled.json", dict(model="model/weights", **model_cases(pipe)))
    if a.which in ("edit", "bundled", "all"):
        write("edit_keep.json", edit_keep_case(Pipeline(*load_models(a.ckpt, a.sr_ckpt))))


if __name__ == "__main__":
    main()
