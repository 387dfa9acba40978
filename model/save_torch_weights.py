"""Writes the weights the bundled ONNX files were exported from as slim PyTorch checkpoints in
model/weights/torch/ (EMA weights in fp16 + config + vocab only, no optimiser state), so that the PyTorch eager
baseline (bench_torch.py, eval.py --direct) runs on a fresh clone with the same weights as the server.

    /usr/bin/python3 model/save_torch_weights.py [--ckpt model/checkpoints/main/ckpt.pt] [--sr-ckpt ...]
"""
import argparse
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints/main/ckpt.pt"))
    ap.add_argument("--sr-ckpt", default=os.path.join(HERE, "checkpoints/main/sr.pt"))
    ap.add_argument("--out", default=os.path.join(HERE, "weights/torch"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    ck = torch.load(a.ckpt, map_location="cpu")
    slim = {k: ck[k] for k in ("cfg", "vocab", "ema", "step") if k in ck}
    # fp16 storage; export.py rounds the same way, so ONNX and these weights hold identical values
    slim["ema"] = {k: (v.half() if v.is_floating_point() else v) for k, v in slim["ema"].items()}
    torch.save(slim, os.path.join(a.out, "ckpt.pt"))
    sc = torch.load(a.sr_ckpt, map_location="cpu")
    keep = [k for k in sc if k not in ("opt", "optimizer", "optim")]
    torch.save({k: sc[k] for k in keep}, os.path.join(a.out, "sr.pt"))
    for name in ("ckpt.pt", "sr.pt"):
        print(name, os.path.getsize(os.path.join(a.out, name)) // 1024, "KB")


if __name__ == "__main__":
    main()
