"""Tiny bridge: run ONNX models through onnxruntime-node (no onnxruntime in this Python)."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def enc(x):
    x = np.asarray(x)
    if x.dtype.kind in "iu":
        return {"type": "int64", "dims": list(x.shape), "data": x.reshape(-1).tolist()}
    return {"type": "float32", "dims": list(x.shape), "data": x.astype(np.float32).reshape(-1).tolist()}


def run(model, runs, threads=2, repeat=1, no_outputs=False):
    """runs: list of {input_name: ndarray}; returns (list of {output_name: ndarray}, ms list)."""
    with tempfile.TemporaryDirectory() as d:
        rq, rs = os.path.join(d, "req.json"), os.path.join(d, "res.json")
        with open(rq, "w") as f:
            json.dump({"model": os.path.abspath(model), "threads": threads, "repeat": repeat, "no_outputs": no_outputs,
                       "runs": [{k: enc(v) for k, v in r.items()} for r in runs]}, f)
        subprocess.run(["npx", "tsx", os.path.join(ROOT, "model/tools/ort_run.ts"), rq, rs], cwd=ROOT, check=True)
        with open(rs) as f:
            res = json.load(f)
    outs = [{k: np.array(v["data"], np.float32).reshape(v["dims"]) for k, v in o.items()} for o in res["outputs"]]
    return outs, res["ms"]
