"""PyTorch eager baseline for a 1024x768 request: text encoder + 20 Euler steps with true CFG (batch 2) + SR + resize
+ PNG encode.  Last line of output is JSON {"images_per_sec", "median_ms", "runs"}.

  /usr/bin/python3 model/bench_torch.py [--runs 5] [--ckpt ...]
"""
import argparse
import io
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sampler import Pipeline  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints/main/ckpt.pt"))
    ap.add_argument("--sr-ckpt", default=os.path.join(HERE, "checkpoints/main/sr.pt"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--prompt", default="a red house on the left and a green tree on the right at sunset")
    a = ap.parse_args()
    threads = int(os.environ.get("TORCH_THREADS") or os.environ.get("OMP_NUM_THREADS")
                  or os.environ.get("OPENBLAS_NUM_THREADS") or 2)
    torch.set_num_threads(threads)
    from PIL import Image
    pipe = Pipeline.from_checkpoint(a.ckpt, a.sr_ckpt)

    def once(seed):
        img = pipe.generate(a.prompt, seed, 1024, 768, negative_prompt="a tree", steps=20)
        b = io.BytesIO()
        Image.fromarray(img).save(b, format="PNG")
        return len(b.getvalue())

    once(0)  # warm-up
    ms = []
    for i in range(a.runs):
        t0 = time.perf_counter()
        once(i + 1)
        ms.append((time.perf_counter() - t0) * 1000)
    med = float(np.median(ms))
    print(json.dumps({"threads": threads, "all_ms": [round(x, 1) for x in ms]}))
    print(json.dumps({"images_per_sec": round(1000.0 / float(np.mean(ms)), 3), "median_ms": round(med, 1), "runs": a.runs}))


if __name__ == "__main__":
    main()
