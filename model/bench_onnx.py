"""Time the exported ONNX graphs in onnxruntime-node (2 intra-op threads): one denoiser pass at batch 2 for a
1024x768 request (grid chosen from the manifest), the text encoder, SR and the edge-field upsampler's network.

  /usr/bin/python3 model/bench_onnx.py [--weights model/weights] [--repeat 30]
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ortpy  # noqa: E402
from sampler import choose_grid  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=os.path.join(HERE, "weights"))
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    man = json.load(open(os.path.join(a.weights, "manifest.json")))
    r, c = choose_grid(man["image"]["grids"], 1024, 768)
    N, C, T, D = r * c, man["image"]["token_dim"], man["text"]["max_tokens"], man["text"]["dim"]
    rng = np.random.default_rng(0)
    pos = np.zeros((N + 1, 3), np.float32)
    pos[:N, 1] = np.repeat(np.arange(r), c)
    pos[:N, 2] = np.tile(np.arange(c), r)
    den = {"img": rng.standard_normal((2, N, C)).astype(np.float32), "sigma": np.array([0.5, 0.5], np.float32),
           "text": rng.standard_normal((2, T, D)).astype(np.float32), "text_mask": np.ones((2, T), np.float32),
           "ref": np.zeros((2, 1, C), np.float32), "ref_mask": np.zeros((2, 1), np.float32), "pos": pos}
    res = {"grid": [r, c]}
    _, ms = ortpy.run(os.path.join(a.weights, "denoiser.onnx"), [den], threads=a.threads, repeat=a.repeat, no_outputs=True)
    res["denoiser_b2_median_ms"] = round(float(np.median(ms[3:])), 2)
    ids = np.zeros((2, T), np.int64)
    ids[0, :8] = np.arange(2, 10)
    _, ms = ortpy.run(os.path.join(a.weights, "text_encoder.onnx"), [{"input_ids": ids}], threads=a.threads,
                      repeat=a.repeat, no_outputs=True)
    res["text_encoder_b2_median_ms"] = round(float(np.median(ms[3:])), 2)
    P = man["image"]["patch"]
    lo = rng.uniform(-1, 1, (1, 3, r * P, c * P)).astype(np.float32)
    _, ms = ortpy.run(os.path.join(a.weights, "sr.onnx"), [{"lowres": lo}], threads=a.threads, repeat=max(5, a.repeat // 3),
                      no_outputs=True)
    res["sr_median_ms"] = round(float(np.median(ms[2:])), 2)
    decode = res["sr_median_ms"]
    if man.get("upsampler"):  # the field network only; drawing the field (edge-field.ts) is timed by bench/sharpness.ts
        _, ms = ortpy.run(os.path.join(a.weights, man["upsampler"]["file"]), [{"lowres": lo}], threads=a.threads,
                          repeat=max(5, a.repeat // 3), no_outputs=True)
        res["upsampler_median_ms"] = decode = round(float(np.median(ms[2:])), 2)
    res["est_request_ms_excl_png"] = round(20 * res["denoiser_b2_median_ms"] + res["text_encoder_b2_median_ms"] + decode, 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
