"""Export qwen-image-mini to ONNX + manifest.json.

  /usr/bin/python3 model/export.py --ckpt model/checkpoints/main/ckpt.pt --sr-ckpt model/checkpoints/main/sr.pt \
      --out model/weights
  /usr/bin/python3 model/export.py --random-tiny            # → test/fixtures/tiny-model/

Uses the EMA weights of the checkpoint.  A missing SR checkpoint exports the untrained SR net, which is exactly
bilinear ×S (its last conv is zero-initialised).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes as S  # noqa: E402
from mmdit import SRNet, make_pos  # noqa: E402
from train import DEFAULT_CFG, TINY_CFG, Joint, build_models  # noqa: E402
from sampler import SAMPLER_DEFAULTS  # noqa: E402

OPSET = 17


def manifest(cfg, vocab, version):
    return {
        "name": "qwen-image-mini", "version": version,
        "text": {"max_tokens": cfg["max_tokens"], "dim": cfg["text_dim"], "vocab": vocab},
        "image": {"patch": cfg["patch"], "channels": 3, "token_dim": 3 * cfg["patch"] ** 2, "grids": cfg["grids"]},
        "sr": {"scale": cfg["sr_scale"]},
        "sampler": dict(SAMPLER_DEFAULTS),
        "max_refs": 3,
    }


def load_models(ckpt=None, sr_ckpt=None, tiny=False, seed=0):
    """returns (cfg, vocab, text_encoder, denoiser, sr) in eval mode."""
    if ckpt:
        ck = torch.load(ckpt, map_location="cpu")
        cfg, vocab = ck["cfg"], ck.get("vocab", S.VOCAB)
        te, dn = build_models(cfg) if len(vocab) == len(S.VOCAB) else _build_with_vocab(cfg, vocab)
        j = Joint(te, dn)
        j.load_state_dict(ck["ema"])
        # the shipped weights are the fp16-rounded EMA (model/weights/torch keeps them in fp16 to halve the size;
        # the ONNX files hold the same values in fp32), so every consumer runs exactly the same numbers
        with torch.no_grad():
            for p in j.parameters():
                p.copy_(p.half().float())
    else:
        cfg = dict(TINY_CFG if tiny else DEFAULT_CFG)
        vocab = S.VOCAB
        torch.manual_seed(seed)
        te, dn = build_models(cfg)
        if tiny:  # zero-initialised layers would make a useless parity fixture: randomise everything
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for n, p in list(te.named_parameters()) + list(dn.named_parameters()):
                    if p.dim() >= 2:
                        p.copy_(torch.randn(p.shape, generator=g) * (0.5 / p.shape[-1] ** 0.5))
                    else:
                        p.add_(torch.randn(p.shape, generator=g) * 0.05)
    sc = torch.load(sr_ckpt, map_location="cpu") if sr_ckpt and os.path.exists(sr_ckpt) else None
    if sc is not None:  # the SR net's own config wins (it is trained separately)
        cfg = dict(cfg, **{k: sc["cfg"][k] for k in ("sr_scale", "sr_ch", "sr_layers")})
    sr = SRNet(cfg["sr_scale"], cfg["sr_ch"], cfg["sr_layers"])
    if sc is not None:
        sr.load_state_dict(sc["model"])
    elif tiny:
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in sr.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return cfg, vocab, te.eval(), dn.eval(), sr.eval()


def _build_with_vocab(cfg, vocab):
    from mmdit import Denoiser, TextEncoder
    te = TextEncoder(len(vocab), cfg["text_dim"], cfg["text_layers"], cfg["text_heads"], cfg["max_tokens"])
    dn = Denoiser(3 * cfg["patch"] ** 2, cfg["text_dim"], cfg["dim"], cfg["depth"], cfg["heads"], cfg["mlp_ratio"],
                  tuple(cfg["axes_dims"]))
    return te, dn


def example_inputs(cfg, B=2, grid=(10, 14), n_refs=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    C = 3 * cfg["patch"] ** 2
    N = grid[0] * grid[1]
    T = cfg["max_tokens"]
    img = torch.randn(B, N, C, generator=g)
    sigma = torch.rand(B, generator=g)
    text = torch.randn(B, T, cfg["text_dim"], generator=g)
    tm = torch.zeros(B, T)
    tm[:, :7] = 1
    if n_refs:
        ref = torch.rand(B, N * n_refs, C, generator=g) * 2 - 1
        rm = torch.ones(B, N * n_refs)
    else:
        ref = torch.zeros(B, 1, C)
        rm = torch.zeros(B, 1)
    pos = make_pos(grid, n_refs)
    return img, sigma, text, tm, ref, rm, pos


def export_all(cfg, vocab, te, dn, sr, out, version):
    os.makedirs(out, exist_ok=True)
    T = cfg["max_tokens"]
    ids = torch.zeros(2, T, dtype=torch.long)
    ids[0, :5] = torch.tensor([5, 6, 7, 8, 9])
    with torch.no_grad():
        torch.onnx.export(te, (ids,), os.path.join(out, "text_encoder.onnx"), input_names=["input_ids"],
                          output_names=["text_states"], dynamic_axes={"input_ids": {0: "B", 1: "T"},
                                                                      "text_states": {0: "B", 1: "T"}},
                          opset_version=OPSET, do_constant_folding=True)
        ex = example_inputs(cfg, B=2, grid=(10, 14), n_refs=1)
        names = ["img", "sigma", "text", "text_mask", "ref", "ref_mask", "pos"]
        dyn = {"img": {0: "B", 1: "N"}, "sigma": {0: "B"}, "text": {0: "B", 1: "T"}, "text_mask": {0: "B", 1: "T"},
               "ref": {0: "B", 1: "M"}, "ref_mask": {0: "B", 1: "M"}, "pos": {0: "NM"}, "velocity": {0: "B", 1: "N"}}
        torch.onnx.export(dn, ex, os.path.join(out, "denoiser.onnx"), input_names=names, output_names=["velocity"],
                          dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True)
        lo = torch.rand(1, 3, 40, 56) * 2 - 1
        torch.onnx.export(sr, (lo,), os.path.join(out, "sr.onnx"), input_names=["lowres"], output_names=["highres"],
                          dynamic_axes={"lowres": {2: "h", 3: "w"}, "highres": {2: "H", 3: "W"}},
                          opset_version=OPSET, do_constant_folding=True)
    m = manifest(cfg, vocab, version)
    mpath = os.path.join(out, "manifest.json")
    if os.path.exists(mpath):
        # the edge-field upsampler is exported separately (upsampler.py --export): a new denoiser keeps it
        old = json.load(open(mpath))
        up = old.get("upsampler")
        if up and os.path.exists(os.path.join(out, up["file"])):
            m["upsampler"] = up
            m["version"] = version + f"+edge-field-step{up['step']}"
    with open(mpath, "w") as f:
        json.dump(m, f, indent=1)
    try:
        import onnx
        for n in ("text_encoder", "denoiser", "sr"):
            onnx.checker.check_model(onnx.load(os.path.join(out, n + ".onnx")))
    except ImportError:  # optional here; the parity tests load every file in onnxruntime anyway
        pass
    tot = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"exported to {out}: {tot/1e6:.2f} MB", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints/main/ckpt.pt"))
    ap.add_argument("--sr-ckpt", default=os.path.join(HERE, "checkpoints/main/sr.pt"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--random-tiny", action="store_true")
    ap.add_argument("--version", default=None)
    ap.add_argument("--no-parity", action="store_true", help="skip regenerating test/fixtures/parity/bundled.json")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    if a.random_tiny:
        cfg, vocab, te, dn, sr = load_models(tiny=True, seed=0)
        out = a.out or os.path.join(HERE, "..", "test/fixtures/tiny-model")
        export_all(cfg, vocab, te, dn, sr, out, a.version or "tiny-random-0")
    else:
        cfg, vocab, te, dn, sr = load_models(a.ckpt, a.sr_ckpt)
        step = torch.load(a.ckpt, map_location="cpu")["step"]
        out = a.out or os.path.join(HERE, "weights")
        export_all(cfg, vocab, te, dn, sr, out, a.version or f"mini-step{step}")
        if not a.no_parity and os.path.abspath(out) == os.path.abspath(os.path.join(HERE, "weights")):
            import subprocess
            subprocess.run([sys.executable, os.path.join(HERE, "make_parity.py"), "--which", "bundled",
                            "--ckpt", a.ckpt, "--sr-ckpt", a.sr_ckpt], check=True)


if __name__ == "__main__":
    main()
