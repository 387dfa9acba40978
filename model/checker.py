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


def _plain(c):
    return {"time": "day", "ground": "grass", "sun": False, "moon": False, "stars": False, "clouds": False,
            "objects": [], "seed": 0, "background": c}


def detect2(img, sizes=True):
    """the wider vocabulary (scenes.py v2): also plain backgrounds, the new things and sizes.
    Returns detect()'s keys plus "background" (a colour or None); objects carry "size" (None, small, big)."""
    x = _small(img)
    h, w = x.shape[:2]
    # plain background or a sky: the top band and the bottom strip against each candidate, robustly
    edge = _region(h, w, 0.0, 0.2, 0.0, 1.0) | _region(h, w, 0.9, 1.0, 0.0, 1.0)
    berr = {c: _err(x, S.render(_plain(c), h, w, ss=1), edge, robust=True) for c in S.COLOR_NAMES}
    bgc = min(berr, key=berr.get)
    sky = _region(h, w, 0.0, S.HORIZON * 0.95, 0.0, 1.0)
    serr = min(_err(x, S.render(_base(t, "grass"), h, w, ss=1), sky, robust=True) for t in S.TIMES)
    plain = berr[bgc] < 0.5 * serr and berr[bgc] < 25.0
    if plain:
        det = {"time": None, "ground": None, "sun": False, "moon": False, "clouds": False, "background": bgc}
        bg = _plain(bgc)
    else:
        d1 = detect(img)
        det = dict(d1, background=None)
        bg = _base(d1["time"], d1["ground"], clouds=d1["clouds"], sun=d1["sun"], moon=d1["moon"])
    objs = []
    size_opts = [None, "small", "big"] if sizes else [None]
    ss = 2
    bg_hi = _render_hi(bg, h, w, ss)
    dim = 1.0 if plain else S.OBJ_DIM[bg["time"]]
    for p in S.POSITIONS:
        cx = S.POS_X[p]
        # candidates are painted only inside the band (the same pixels S.render would give there)
        y0, y1 = int(0.22 * h), max(int(0.86 * h), int(0.22 * h) + 1)
        x0, x1 = int((cx - 0.15) * w), max(int((cx + 0.15) * w), int((cx - 0.15) * w) + 1)
        yy = ((np.arange(y0 * ss, y1 * ss, dtype=np.float32) + 0.5) / ss)[:, None]
        xx = ((np.arange(x0 * ss, x1 * ss, dtype=np.float32) + 0.5) / ss)[None, :]
        crop = bg_hi[y0 * ss:y1 * ss, x0 * ss:x1 * ss]
        target = x[y0:y1, x0:x1]

        def err_of(img_hi):
            lo = img_hi.reshape(y1 - y0, ss, x1 - x0, ss, 3).mean(axis=(1, 3))
            return float(((lo - target) ** 2).sum(-1).mean())

        best, be = None, err_of(crop)
        for t in S.ALL_OBJECTS:
            for c in S.COLOR_NAMES:
                for z in size_opts:
                    o = {"type": t, "color": c, "pos": p, "size": z}
                    img_hi = crop.copy()
                    for mk, col in S.object_masks(o, xx, yy, h, w):
                        img_hi[np.broadcast_to(mk, img_hi.shape[:2])] = col * dim
                    e = err_of(img_hi)
                    if e < be:
                        best, be = o, e
        if best:
            objs.append(best)
    det["objects"] = objs
    return det


def _render_hi(scene, h, w, ss):
    """S.render at ss samples per pixel, before its downsampling (the checker paints candidates on it)."""
    big = S.render(scene, h * ss, w * ss, ss=1)
    return big


def score2(det, expected):
    """score() plus the v2 keys: "background" (colour), objects' "size", "count": [type, n] (exactly n of the type)."""
    res = score(det, {k: v for k, v in expected.items() if k not in ("background", "count")})
    if "background" in expected:
        res.append((f"background {expected['background']}", det.get("background") == expected["background"]))
    byp = {o["pos"]: o for o in det["objects"]}
    for o in expected.get("objects", []):
        if "size" in o:
            d = byp.get(o["pos"])
            res.append((f"{o['size'] or 'normal'} {o['type']}@{o['pos']}", bool(d and d.get("size") == o["size"])))
    if "count" in expected:  # [type, n] or [type, n, colour]: exactly n of the type (each of the colour)
        t, n = expected["count"][:2]
        found = [o for o in det["objects"] if o["type"] == t]
        res.append((f"{n} {t}", len(found) == n))
        if len(expected["count"]) > 2:
            c = expected["count"][2]
            res.append((f"{n} {c} {t}", len(found) == n and all(o["color"] == c for o in found)))
    return res


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


def selftest(n, seed=11, H=768, W=1024):
    """detect2 on v2 scenes drawn directly by the renderer: (attributes right, attributes checked, failures)."""
    rng = np.random.default_rng(seed)
    ok = tot = 0
    bad = []
    for _ in range(n):
        sc = S.random_scene2(rng, avoid_heldout=False, p_bg=0.3, p_count=0.2)
        det = detect2(S.render(sc, H, W))
        exp = {"objects": [dict(o, size=o.get("size")) for o in sc["objects"]],
               "absent": [p for p in S.POSITIONS if p not in [o["pos"] for o in sc["objects"]]]}
        if sc.get("background"):
            exp["background"] = sc["background"]
        else:
            exp.update(time=sc["time"], ground=sc["ground"])
        r = score2(det, exp)
        ok += sum(v for _, v in r)
        tot += len(r)
        bad += [k for k, v in r if not v]
    return ok, tot, bad


if __name__ == "__main__":
    if sys.argv[1:2] == ["--selftest"]:
        ok, tot, bad = selftest(int(sys.argv[2]) if len(sys.argv) > 2 else 12)
        print(json.dumps({"correct": ok, "checked": tot, "failures": bad}))
        sys.exit(0)
    from PIL import Image
    print(json.dumps(detect2(np.asarray(Image.open(sys.argv[1]).convert("RGB")))))
