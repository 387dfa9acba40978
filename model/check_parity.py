"""Check ONNX (through onnxruntime-node) against the PyTorch parity fixtures.

  /usr/bin/python3 model/check_parity.py --which tiny|bundled   → prints max abs error per case, exit 1 if > tol
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ortpy  # noqa: E402


def arr(d, dtype=np.float32):
    return np.array(d["data"], dtype).reshape(d["dims"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--which", default="tiny")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    fx = json.load(open(os.path.join(HERE, "..", "test/fixtures/parity", a.which + ".json")))
    mdir = os.path.join(HERE, "..", fx["model"])
    worst = 0.0
    te = fx["text_encoder"][0]
    o, _ = ortpy.run(os.path.join(mdir, "text_encoder.onnx"), [{"input_ids": arr(te["input_ids"], np.int64)}])
    e = np.abs(o[0]["text_states"] - arr(te["text_states"])).max()
    print("text_encoder", e)
    worst = max(worst, e)
    names = ["img", "sigma", "text", "text_mask", "ref", "ref_mask", "pos"]
    runs = [{n: arr(c[n]) for n in names} for c in fx["denoiser"]]
    outs, _ = ortpy.run(os.path.join(mdir, "denoiser.onnx"), runs)
    for c, o in zip(fx["denoiser"], outs):
        v = arr(c["velocity"])
        e = np.abs(o["velocity"] - v).max()
        print("denoiser grid", c["grid"], "refs", c["n_refs"], "max|v|", float(np.abs(v).max()), "err", e)
        worst = max(worst, e)
    outs, _ = ortpy.run(os.path.join(mdir, "sr.onnx"), [{"lowres": arr(c["lowres"])} for c in fx["sr"]])
    for c, o in zip(fx["sr"], outs):
        e = np.abs(o["highres"] - arr(c["highres"])).max()
        print("sr", c["lowres"]["dims"], "err", e)
        worst = max(worst, e)
    up_fx = os.path.join(HERE, "..", "test/fixtures/parity/upsampler.json")
    man = json.load(open(os.path.join(mdir, "manifest.json")))
    if a.which == "bundled" and man.get("upsampler") and os.path.exists(up_fx):
        ux = json.load(open(up_fx))
        outs, _ = ortpy.run(os.path.join(HERE, "..", ux["model"], man["upsampler"]["file"]),
                            [{"lowres": arr(c["lowres"])} for c in ux["cases"]])
        for c, o in zip(ux["cases"], outs):
            e = np.abs(o["field"] - arr(c["field"])).max()
            print("upsampler", c["lowres"]["dims"], "err", e)
            worst = max(worst, e)
    print("worst", worst)
    sys.exit(0 if worst <= a.tol else 1)


if __name__ == "__main__":
    main()
