"""Score an image (any size) against scene semantics by analysis-by-synthesis with model/scenes.py.

  /usr/bin/python3 model/checker.py some.png        → prints the detected scene as JSON

detect(img) returns {"time", "ground", "sun", "moon", "clouds", "objects": [{"type","color","pos"}...]}:
every candidate (time, ground, sky object, object type x colour at each position) is rendered at a small working
resolution and the one with the lowest error inside the relevant region wins.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenes as S  # noqa: E402

WH = 48  # working height


def _small(img):
    from PIL import Image
    img = np.asarray(img)
    H, W = img.shape[:2]
    w = max(16, int(round(WH * W / H)))
    return np.asarray(Image.fromarray(img.astype(np.uint8)).convert("RGB").resize((w, WH), Image.BOX), np.float32)


def _region(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[int(y0 * h):max(int(y1 * h), int(y0 * h) + 1), int(x0 * w):max(int(x1 * w), int(x0 * w) + 1)] = True
    return m


def _err(a, b, m, robust=False):
    d = np.sqrt(((a - b) ** 2).sum(-1))[m]
    return float(np.median(d)) if robust else float((d ** 2).mean())


def _base(time, ground, **kw):
    s = {"time": time, "ground": ground, "sun": False, "moon": False, "stars": False, "clouds": False,
         "objects": [], "seed": 0}
    s.update(kw)
    return s


def detect(img):
    x = _small(img)
    h, w = x.shape[:2]
    m = min(h, w)
    sky = _region(h, w, 0.0, S.HORIZON * 0.95, 0.0, 1.0)
    # time: robust distance over the whole sky (sun/clouds/mountains are outliers)
    errs = {t: _err(x, S.render(_base(t, "grass"), h, w, ss=1), sky, robust=True) for t in S.TIMES}
    time = min(errs, key=errs.get)
    strip = _region(h, w, 0.87, 1.0, 0.0, 1.0)
    gerr = {g: _err(x, S.render(_base(time, g), h, w, ss=1), strip, robust=True) for g in S.GROUNDS}
    ground = min(gerr, key=gerr.get)
    # sun / moon in their fixed spot
    yy, xx = np.mgrid[0:h, 0:w]
    sunreg = (xx + 0.5 - S.SUN_XY[0] * w) ** 2 + (yy + 0.5 - S.SUN_XY[1] * h) ** 2 <= (0.13 * m) ** 2
    cands = {"none": {}, "sun": {"sun": True}, "moon": {"moon": True}}
    serr = {k: _err(x, S.render(_base(time, ground, **v), h, w, ss=2), sunreg) for k, v in cands.items()}
    skyobj = min(serr, key=serr.get)
    # clouds
    creg = _region(h, w, 0.08, 0.34, 0.08, 0.68)
    cl = {c: _err(x, S.render(_base(time, ground, clouds=c), h, w, ss=2), creg) for c in (False, True)}
    clouds = cl[True] < cl[False]
    bg = _base(time, ground, clouds=clouds, sun=skyobj == "sun", moon=skyobj == "moon")
    objs = []
    for p in S.POSITIONS:
        cx = S.POS_X[p]
        band = _region(h, w, 0.28, 0.86, cx - 0.14, cx + 0.14)
        best, be = None, _err(x, S.render(bg, h, w, ss=2), band)
        for t in S.OBJECTS:
            for c in S.COLOR_NAMES:
                o = {"type": t, "color": c, "pos": p}
                e = _err(x, S.render(dict(bg, objects=[o]), h, w, ss=2), band)
                if e < be:
                    best, be = o, e
        if best:
            objs.append(best)
    return {"time": time, "ground": ground, "sun": skyobj == "sun", "moon": skyobj == "moon", "clouds": bool(clouds),
            "objects": objs}


def score(det, expected):
    """expected: partial scene (keys present are checked; objects: list of {"type","color"?,"pos"}, and
    "absent": list of positions or sky names that must be empty). Returns list of (attribute, ok)."""
    res = []
    for k in ("time", "ground"):
        if k in expected:
            res.append((k, det[k] == expected[k]))
    for k in ("sun", "moon", "clouds"):
        if k in expected:
            res.append((k, det[k] == expected[k]))
    byp = {o["pos"]: o for o in det["objects"]}
    for o in expected.get("objects", []):
        d = byp.get(o["pos"])
        res.append((f"{o['type']}@{o['pos']}", bool(d and d["type"] == o["type"])))
        if "color" in o:
            res.append((f"{o['color']} {o['type']}@{o['pos']}", bool(d and d["color"] == o["color"])))
    for p in expected.get("absent", []):
        res.append((f"no object@{p}", p not in byp))
    return res


if __name__ == "__main__":
    from PIL import Image
    print(json.dumps(detect(np.asarray(Image.open(sys.argv[1]).convert("RGB")))))
