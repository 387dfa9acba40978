"""Procedural scene generator for the bundled qwen-image-mini model.

Everything here is deterministic given a numpy Generator / seed.  A *scene* is a plain dict:

    {"time": "day"|"sunset"|"night", "ground": "grass"|"sea"|"desert"|"snow",
     "sun": bool, "moon": bool, "stars": bool, "clouds": bool,
     "objects": [{"type": "house", "color": "red", "pos": "left"}, ...],   # at most one per position
     "seed": int}                                                        # star layout

`render(scene, H, W)` draws it (3x3 supersampled, anti-aliased) as float32 [H, W, 3] in 0..255.
`caption(scene, rng)` writes a caption in one of several phrasings (full / partial / single object / empty).
`make_edit(scene, rng)` returns (target_scene, instruction, info) for single-image edits and
`make_multi(rng)` builds two-image "put X from image 2 into image 1" samples.
"""
from __future__ import annotations

import copy
import re

import numpy as np

from scene_patches import patchify, unpatchify  # noqa: F401  (S.patchify, as before)
from scene_shapes import _disk, _ell, _poly, _rect, _tri, new_object_masks  # noqa: F401
from scene_tables import *  # noqa: F401,F403  (colours, things, phrasings and edit templates)

# ----------------------------------------------------------------------------------------------
# held-out colour x object x position combinations (never rendered in training data)
_ALL_TRIPLES = [(c, o, p) for c in COLOR_NAMES for o in OBJECTS for p in POSITIONS]
_hr = np.random.default_rng(20240601)
HELDOUT = set(tuple(_ALL_TRIPLES[i]) for i in _hr.choice(len(_ALL_TRIPLES), 20, replace=False))


def has_heldout(scene) -> bool:
    return any((o["color"], o["type"], o["pos"]) in HELDOUT for o in scene["objects"])


# v2 held-out combinations: colour x new thing x position, size x thing, count x thing, background x thing
_NEW_TRIPLES = [(c, o, p) for c in COLOR_NAMES for o in NEW_OBJECTS for p in POSITIONS]
_hr2 = np.random.default_rng(20261201)
HELDOUT2 = set(tuple(_NEW_TRIPLES[i]) for i in _hr2.choice(len(_NEW_TRIPLES), 16, replace=False))
HELDOUT_SIZE = {("big", "tree"), ("small", "house"), ("big", "car"), ("small", "heart")}
HELDOUT_COUNT = {(2, "tree"), (3, "circle"), (2, "car")}
HELDOUT_BG = {("blue", "house"), ("yellow", "tree"), ("pink", "star")}


def object_heldout2(o) -> bool:
    return ((o["color"], o["type"], o["pos"]) in HELDOUT or (o["color"], o["type"], o["pos"]) in HELDOUT2
            or (o.get("size"), o["type"]) in HELDOUT_SIZE)


def has_heldout2(scene) -> bool:
    if any(object_heldout2(o) for o in scene["objects"]):
        return True
    if scene.get("count") and (scene["count"], scene["objects"][0]["type"]) in HELDOUT_COUNT:
        return True
    bg = scene.get("background")
    return bool(bg) and any((bg, o["type"]) in HELDOUT_BG for o in scene["objects"])


# ----------------------------------------------------------------------------------------------
# scene sampling

def random_object(rng, pos, avoid_heldout=True):
    while True:
        o = {"type": OBJECTS[rng.integers(len(OBJECTS))], "color": COLOR_NAMES[rng.integers(len(COLOR_NAMES))], "pos": pos}
        if not avoid_heldout or (o["color"], o["type"], o["pos"]) not in HELDOUT:
            return o


def fix_sky(scene):
    if scene["time"] == "night":
        scene["sun"] = False
    else:
        scene["moon"] = False
        scene["stars"] = False
    return scene


def random_scene(rng, avoid_heldout=True, n_objects=None):
    t = TIMES[rng.integers(3)]
    s = {"time": t, "ground": GROUNDS[rng.integers(4)],
         "sun": bool(t != "night" and rng.random() < 0.85),
         "moon": bool(t == "night" and rng.random() < 0.85),
         "stars": bool(t == "night" and rng.random() < 0.6),
         "clouds": bool(rng.random() < 0.35),
         "objects": [], "seed": int(rng.integers(1 << 30))}
    if n_objects is None:
        n_objects = int(rng.choice(4, p=[0.08, 0.34, 0.36, 0.22]))
    poss = list(rng.permutation(POSITIONS))[:n_objects]
    for p in sorted(poss, key=POSITIONS.index):
        s["objects"].append(random_object(rng, p, avoid_heldout))
    return s


def random_object2(rng, pos, avoid_heldout=True, p_new=0.5, p_size=0.35, new_objects=None):
    """v2: a v1 thing or (p_new) one of the new ones, sometimes small or big."""
    news = new_objects if new_objects is not None else NEW_OBJECTS
    while True:
        t = news[rng.integers(len(news))] if (news and rng.random() < p_new) else OBJECTS[rng.integers(len(OBJECTS))]
        o = {"type": t, "color": COLOR_NAMES[rng.integers(len(COLOR_NAMES))], "pos": pos}
        if rng.random() < p_size:
            o["size"] = SIZES[rng.integers(2)]
        if not avoid_heldout or not object_heldout2(o):
            return o


def random_scene2(rng, avoid_heldout=True, n_objects=None, p_bg=0.2, p_count=0.15, new_objects=None):
    """v2 scenes: v1 scenes with the new things and sizes, plus plain backgrounds (p_bg) and groups of two or
    three identical things (p_count, scene["count"] = n)."""
    for _ in range(100):
        s = random_scene(rng, avoid_heldout, n_objects=0)
        if n_objects is None:
            n = int(rng.choice(4, p=[0.08, 0.34, 0.36, 0.22]))
        else:
            n = n_objects
        count = None
        if n_objects is None and rng.random() < p_count:
            count = int(rng.integers(2, 4))
            proto = random_object2(rng, "left", avoid_heldout, new_objects=new_objects)
            while proto["type"] == "star":  # "stars" is the night sky
                proto = random_object2(rng, "left", avoid_heldout, new_objects=new_objects)
            poss = sorted(list(rng.permutation(POSITIONS))[:count], key=POSITIONS.index)
            s["objects"] = [dict(proto, pos=p) for p in poss]
            s["count"] = count
        else:
            poss = sorted(list(rng.permutation(POSITIONS))[:n], key=POSITIONS.index)
            s["objects"] = [random_object2(rng, p, avoid_heldout, new_objects=new_objects) for p in poss]
        if rng.random() < p_bg:
            if not s["objects"]:
                s["objects"] = [random_object2(rng, POSITIONS[rng.integers(3)], avoid_heldout, new_objects=new_objects)]
            used = {o["color"] for o in s["objects"]}
            s["background"] = _pick([c for c in COLOR_NAMES if c not in used], rng)
            s.update(time="day", ground="grass", sun=False, moon=False, stars=False, clouds=False)
        if not avoid_heldout or not has_heldout2(s):
            return s
    raise RuntimeError("no v2 scene outside the held-out set")


# ----------------------------------------------------------------------------------------------
# rendering

def obj_scale(H, W):
    return min(0.34 * H, 0.26 * W)


SIZE_SCALE = {"small": 0.6, "big": 1.4}


def object_masks(o, xx, yy, H, W):
    """list of (mask, rgb) layers for one object (colours before time dimming)."""
    s = obj_scale(H, W) * SIZE_SCALE.get(o.get("size"), 1.0)
    cx = POS_X[o["pos"]] * W
    base = BASE * H
    col = np.array(COLORS[o["color"]], np.float32)
    t = o["type"]
    if t == "mountain":
        return [(_tri(xx, yy, cx, base - 1.15 * s, base, 0.7 * s), col)]
    if t == "tree":
        trunk = _rect(xx, yy, cx - 0.08 * s, base - 0.45 * s, cx + 0.08 * s, base)
        canopy = _disk(xx, yy, cx, base - 0.62 * s, 0.33 * s)
        return [(trunk, np.array((95, 60, 30), np.float32)), (canopy, col)]
    if t == "house":
        body = _rect(xx, yy, cx - 0.36 * s, base - 0.55 * s, cx + 0.36 * s, base)
        roof = _tri(xx, yy, cx, base - 0.98 * s, base - 0.55 * s, 0.46 * s)
        door = _rect(xx, yy, cx - 0.08 * s, base - 0.28 * s, cx + 0.08 * s, base)
        roofc = np.array((150, 50, 40), np.float32) if o["color"] not in ("red", "brown", "orange", "pink") else np.array((70, 70, 80), np.float32)
        doorc = np.array((60, 40, 25), np.float32) if o["color"] not in ("black", "brown") else np.array((230, 230, 230), np.float32)
        return [(body, col), (roof, roofc), (door, doorc)]
    if t == "circle":
        return [(_disk(xx, yy, cx, base - 0.4 * s, 0.36 * s), col)]
    if t == "square":
        return [(_rect(xx, yy, cx - 0.34 * s, base - 0.72 * s, cx + 0.34 * s, base - 0.04 * s), col)]
    if t == "triangle":
        return [(_tri(xx, yy, cx, base - 0.8 * s, base - 0.04 * s, 0.42 * s), col)]
    if t in NEW_OBJECTS:
        return new_object_masks(t, o["color"], col, xx, yy, cx, base, s)
    raise ValueError(t)


SUN_XY = (0.84, 0.17)


def render(scene, H, W, ss=3):
    Hs, Ws = H * ss, W * ss
    yy = ((np.arange(Hs, dtype=np.float32) + 0.5) / ss)[:, None]
    xx = ((np.arange(Ws, dtype=np.float32) + 0.5) / ss)[None, :]
    t = scene["time"]
    m = min(H, W)

    def paint(mask, rgb):
        img[mask] = rgb

    if scene.get("background"):  # a plain background: no sky, no ground, objects undimmed
        img = np.broadcast_to(np.array(BG_RGB[scene["background"]], np.float32), (Hs, Ws, 3)).copy()
        for o in sorted(scene["objects"], key=lambda o: 0 if o["type"] == "mountain" else 1):
            for mk, c in object_masks(o, xx, yy, H, W):
                paint(mk, c)
        return np.clip(img.reshape(H, ss, W, ss, 3).mean(axis=(1, 3)), 0, 255).astype(np.float32)
    top, hor = (np.array(c, np.float32) for c in SKY[t])
    f = np.clip(yy / (HORIZON * H), 0, 1)[..., None]
    img = np.broadcast_to(top * (1 - f) + hor * f, (Hs, Ws, 3)).copy()

    if scene.get("stars"):
        r = np.random.default_rng(scene.get("seed", 0))
        n = 18
        for _ in range(n):
            sx, sy = r.random() * W, r.random() * HORIZON * H * 0.85
            if abs(sx - SUN_XY[0] * W) < 0.15 * m and abs(sy - SUN_XY[1] * H) < 0.15 * m:
                continue
            paint(_disk(xx, yy, sx, sy, max(0.012 * m, 0.55)), np.array((250, 250, 235), np.float32))
    sx, sy = SUN_XY[0] * W, SUN_XY[1] * H
    if scene.get("sun"):
        col = (255, 228, 70) if t == "day" else (255, 175, 60)
        paint(_disk(xx, yy, sx, sy, 0.1 * m), np.array(col, np.float32))
    if scene.get("moon"):
        moon = _disk(xx, yy, sx, sy, 0.09 * m) & ~_disk(xx, yy, sx + 0.045 * m, sy - 0.02 * m, 0.075 * m)
        paint(moon, np.array((240, 240, 215), np.float32))
    if scene.get("clouds"):
        cc = {"day": (250, 250, 252), "sunset": (240, 190, 190), "night": (90, 95, 110)}[t]
        cc = np.array(cc, np.float32)
        for cxf, cyf in ((0.22, 0.16), (0.55, 0.26)):
            cx, cy = cxf * W, cyf * H
            mk = (_ell(xx, yy, cx, cy, 0.12 * m, 0.045 * m) | _ell(xx, yy, cx - 0.05 * m, cy - 0.02 * m, 0.06 * m, 0.04 * m)
                  | _ell(xx, yy, cx + 0.04 * m, cy - 0.03 * m, 0.065 * m, 0.05 * m))
            paint(mk, cc)
    g = np.array(GROUND_RGB[scene["ground"]], np.float32) * GROUND_DIM[t]
    gy = np.clip((yy - HORIZON * H) / ((1 - HORIZON) * H), 0, 1)[..., None]
    gmask = np.broadcast_to(yy >= HORIZON * H, (Hs, Ws))
    gimg = np.broadcast_to(g * (0.85 + 0.15 * gy), (Hs, Ws, 3))
    img[gmask] = gimg[gmask]
    if scene["ground"] == "sea":  # a few lighter wave lines
        for k in range(3):
            wy = (HORIZON + (k + 0.5) * (1 - HORIZON) / 3.2) * H
            wave = (np.abs(yy - wy - 0.01 * m * np.sin(xx / (0.05 * m + 1e-6))) < max(0.008 * m, 0.35)) & gmask
            paint(wave, g * 1.35)
    od = OBJ_DIM[t]
    objs = sorted(scene["objects"], key=lambda o: 0 if o["type"] == "mountain" else 1)
    for o in objs:
        for mk, c in object_masks(o, xx, yy, H, W):
            paint(mk, c * od)
    out = img.reshape(H, ss, W, ss, 3).mean(axis=(1, 3))
    return np.clip(out, 0, 255).astype(np.float32)


def to_unit(img255):
    """[H,W,3] 0..255 → [3,H,W] in [-1,1]"""
    return (np.asarray(img255, np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


# ----------------------------------------------------------------------------------------------
# captions (phrasings in scene_tables.py)

def _cname(c, rng):
    syn = COLOR_SYN.get(c)
    return syn[rng.integers(len(syn))] if syn else c


def _pick(lst, rng):
    return lst[rng.integers(len(lst))]


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def object_phrase(o, rng, with_color=True, with_pos=True):
    name = _pick(OBJ_SYN[o["type"]], rng)
    if with_color:
        c = _cname(o["color"], rng)
        core = f"{_article(c)} {c} {name}" if rng.random() < 0.85 else f"{_article(name)} {name} colored {c}"
    else:
        core = f"{_article(name)} {name}"
    if with_pos:
        pp = _pick(POS_PHRASE[o["pos"]], rng)
        core = f"{core} {pp}" if rng.random() < 0.8 else f"{pp} {core}"
    return core


def _join(parts, rng):
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    sep = _pick([", ", " and ", ", ", " with "], rng)
    if sep == ", " and rng.random() < 0.5:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return sep.join(parts)


def _caption_tail(scene, rng, full, obj_parts):
    """a caption from its object phrases: a prefix, then ground and time, and the sky before or after"""
    sky = [k for k in ("sun", "moon", "stars", "clouds") if scene.get(k)]
    sky_parts = [_pick(SKY_PHRASE[k], rng) for k in sky if full or rng.random() < 0.35]
    use_ground = full or rng.random() < 0.5
    use_time = full or rng.random() < 0.6
    if not (obj_parts or sky_parts or use_ground or use_time):
        use_time = True
    s = _pick(PREFIX, rng) + _join(obj_parts, rng)
    tail = []
    if use_ground:
        tail.append(_pick(GROUND_PHRASE[scene["ground"]], rng))
    if use_time:
        tail.append(_pick(TIME_PHRASE[scene["time"]], rng))
    if rng.random() < 0.5:
        tail = tail[::-1]
    for tp in tail:
        s = (s + " " + tp) if s.strip() else tp
    if sky_parts:
        s = (s + (", with " if s.strip() else "") + _join(sky_parts, rng)) if rng.random() < 0.7 else (
            _join(sky_parts, rng) + (", " + s if s.strip() else ""))
    return s.strip(" ,")


def caption(scene, rng, mode=None):
    """returns a caption string; mode in full | partial | single | empty (random if None)."""
    if mode is None:
        mode = rng.choice(["full", "partial", "single", "empty"], p=[0.42, 0.36, 0.12, 0.10])
    if mode == "empty":
        return ""
    sky = [k for k in ("sun", "moon", "stars", "clouds") if scene.get(k)]
    objs = list(scene["objects"])
    if mode == "single":
        cands = [("obj", o) for o in objs] + [("sky", k) for k in sky] + [("ground", None), ("time", None)]
        kind, v = cands[rng.integers(len(cands))]
        if kind == "obj":
            return object_phrase(v, rng, with_color=rng.random() < 0.5, with_pos=rng.random() < 0.3)
        if kind == "sky":
            return _pick(SKY_PHRASE[v], rng)
        if kind == "ground":
            return _pick(GROUND_PHRASE[scene["ground"]], rng)
        return _pick(TIME_PHRASE[scene["time"]], rng)
    full = mode == "full"
    if not full and rng.random() < 0.5:
        rng.shuffle(objs)
    obj_parts = []
    for o in objs:
        if full or rng.random() < 0.65:
            obj_parts.append(object_phrase(o, rng, with_color=full or rng.random() < 0.8, with_pos=full or rng.random() < 0.75))
    return _caption_tail(scene, rng, full, obj_parts)


# ---------------------------------------------------------------------------------------------- v2 captions

def object_phrase2(o, rng, with_color=True, with_pos=True, with_size=True):
    name = _pick(OBJ_SYN2[o["type"]], rng)
    adj = []
    if with_size and o.get("size"):
        adj.append(_pick(SIZE_WORD[o["size"]], rng))
    if with_color:
        adj.append(_cname(o["color"], rng))
    if with_color and len(adj) == 1 and rng.random() < 0.15:
        core = f"{_article(name)} {name} colored {adj[0]}"
    else:
        words = adj + [name]
        core = f"{_article(words[0])} {' '.join(words)}"
    if with_pos:
        pp = _pick(POS_PHRASE[o["pos"]], rng)
        core = f"{core} {pp}" if rng.random() < 0.8 else f"{pp} {core}"
    return core


def group_phrase(scene, rng, with_color=True):
    o = scene["objects"][0]
    adj = [_pick(SIZE_WORD[o["size"]], rng)] if o.get("size") else []
    if with_color:
        adj.append(_cname(o["color"], rng))
    return " ".join([COUNTS[scene["count"]]] + adj + [PLURAL[o["type"]]])


def caption2(scene, rng, mode=None):
    """captions for v2 scenes: sizes, groups ("two red trees"), plain backgrounds ("on a white background")."""
    if mode is None:
        mode = rng.choice(["full", "partial", "single", "empty"], p=[0.42, 0.36, 0.12, 0.10])
    if mode == "empty":
        return ""
    full = mode == "full"
    bg = scene.get("background")
    if scene.get("count"):
        obj_parts = [group_phrase(scene, rng, with_color=full or rng.random() < 0.85)]
    else:
        objs = list(scene["objects"])
        if mode == "single" and objs:
            objs = [objs[rng.integers(len(objs))]]
        elif not full and rng.random() < 0.5:
            rng.shuffle(objs)
        obj_parts = []
        for o in objs:
            if full or mode == "single" or rng.random() < 0.65:
                obj_parts.append(object_phrase2(o, rng, with_color=full or rng.random() < 0.8,
                                                with_pos=full or rng.random() < 0.75, with_size=full or rng.random() < 0.85))
    if bg:
        s = _pick(PREFIX, rng) + _join(obj_parts, rng)
        if full or rng.random() < 0.85 or not obj_parts:
            s = (s + " " + re.sub(r"\ba (?=[aeiou])", "an ", _pick(BG_PHRASE, rng).format(c=_cname(bg, rng)))).strip()
        return s.strip(" ,")
    if mode == "single":
        return obj_parts[0] if obj_parts else caption(scene, rng, mode="single")
    return _caption_tail(scene, rng, full, obj_parts)


# ----------------------------------------------------------------------------------------------
# edits (instruction templates in scene_tables.py)

def _set_time(s, t):
    had_sun, had_moon = s["sun"], s["moon"]
    s["time"] = t
    if t == "night":
        s["moon"] = bool(had_sun or had_moon)
        s["sun"] = False
    else:
        s["sun"] = bool(had_sun or had_moon)
        s["moon"] = False
        s["stars"] = False
    return s


EDIT_OPS = ["time", "recolor", "remove", "add_obj", "add_sky", "remove_sky", "ground"]


def make_edit(src, rng, op=None, op_p=None, v2=False):
    """single-image edit: returns (target_scene, instruction, info) with info["local"] True when the edit only
    touches part of the image (PSNR outside the changed region is meaningful). op_p: probabilities over EDIT_OPS;
    v2: added things come from the v2 set (and a background scene only gets object edits)."""
    ops = EDIT_OPS
    for _ in range(50):
        k = op or (ops[rng.choice(len(ops), p=op_p)] if op_p is not None else ops[rng.integers(len(ops))])
        if src.get("background") and k in ("time", "add_sky", "remove_sky", "ground"):
            if op:
                raise RuntimeError(f"{op} does not apply to a plain background")
            continue
        s = copy.deepcopy(src)
        s.pop("count", None)
        if k == "time":
            t = _pick([x for x in TIMES if x != s["time"]], rng)
            _set_time(s, t)
            return s, _pick(TIME_EDIT, rng).format(t=_pick(TIME_WORD[t], rng)), {"op": k, "local": False, "time": t}
        if k == "recolor" and s["objects"]:
            o = s["objects"][rng.integers(len(s["objects"]))]
            c = _pick([x for x in COLOR_NAMES if x != o["color"] and x != s.get("background")], rng)
            if (c, o["type"], o["pos"]) in HELDOUT or (v2 and object_heldout2(dict(o, color=c))):
                continue
            dup = sum(1 for x in s["objects"] if x["type"] == o["type"]) > 1
            oname = f"{o['type']} {_pick(POS_PHRASE[o['pos']], rng)}" if dup else o["type"]
            o["color"] = c
            return s, _pick(RECOLOR, rng).format(o=oname, c=_cname(c, rng)), {"op": k, "local": True, "obj": dict(o)}
        if k == "remove" and s["objects"]:
            i = int(rng.integers(len(s["objects"])))
            o = s["objects"].pop(i)
            dup = sum(1 for x in src["objects"] if x["type"] == o["type"]) > 1
            oname = f"{o['type']} {_pick(POS_PHRASE[o['pos']], rng)}" if dup else o["type"]
            return s, _pick(REMOVE, rng).format(o=oname), {"op": k, "local": True, "obj": dict(o)}
        if k == "add_obj" and len(s["objects"]) < 3:
            free = [p for p in POSITIONS if p not in [o["pos"] for o in s["objects"]]]
            p = free[rng.integers(len(free))]
            o = random_object2(rng, p) if v2 else random_object(rng, p)
            if s.get("background") == o["color"]:
                continue
            s["objects"].append(o)
            s["objects"].sort(key=lambda x: POSITIONS.index(x["pos"]))
            template = _pick(ADD, rng)
            phrase = object_phrase2(o, rng) if v2 else object_phrase(o, rng)
            return s, template.format(x=phrase), {"op": k, "local": True, "obj": dict(o)}
        if k == "add_sky":
            cands = [x for x in (["sun", "clouds"] if s["time"] != "night" else ["moon", "stars", "clouds"]) if not s[x]]
            if not cands:
                continue
            x = _pick(cands, rng)
            s[x] = True
            return s, _pick(ADD, rng).format(x=_pick(SKY_PHRASE[x], rng)), {"op": k, "local": True, "sky": x}
        if k == "remove_sky":
            cands = [x for x in ("sun", "moon", "stars", "clouds") if s[x]]
            if not cands:
                continue
            x = _pick(cands, rng)
            s[x] = False
            word = {"sun": "the sun", "moon": "the moon", "stars": "the stars", "clouds": "the clouds"}[x]
            return s, _pick(REMOVE, rng).format(o=word[4:]), {"op": k, "local": True, "sky": x}
        if k == "ground":
            g = _pick([x for x in GROUNDS if x != s["ground"]], rng)
            s["ground"] = g
            return s, _pick(GROUND_EDIT, rng).format(g=_pick(GROUND_WORD[g], rng)), {"op": k, "local": False, "ground": g}
    raise RuntimeError("no edit possible")


def make_multi(rng, v2=False):
    """two-image sample: image 1 (base), image 2 (donor with an object); target = image 1 + that object."""
    scene = (lambda n: random_scene2(rng, n_objects=n, p_bg=0.0)) if v2 else (lambda n: random_scene(rng, n_objects=n))
    while True:
        a = scene(int(rng.integers(0, 3)))
        free = [p for p in POSITIONS if p not in [o["pos"] for o in a["objects"]]]
        b = scene(int(rng.integers(1, 4)))
        cand = [o for o in b["objects"] if o["pos"] in free]
        if not cand:
            continue
        o = cand[rng.integers(len(cand))]
        types_b = [x["type"] for x in b["objects"]]
        if types_b.count(o["type"]) > 1:
            continue
        t = copy.deepcopy(a)
        t["objects"].append(dict(o))
        t["objects"].sort(key=lambda x: POSITIONS.index(x["pos"]))
        return a, b, t, _pick(MULTI, rng).format(o=o["type"]), {"op": "multi", "local": True, "obj": dict(o)}


# ----------------------------------------------------------------------------------------------
# tokenizer + vocabulary

def tokenize_words(s: str):
    return [w for w in re.split(r"[^a-z0-9]+", s.lower()) if w]


def build_vocab():
    words = set()
    texts = []
    for d in (POS_PHRASE, TIME_PHRASE, GROUND_PHRASE, SKY_PHRASE, TIME_WORD, GROUND_WORD, COLOR_SYN, OBJ_SYN):
        for v in d.values():
            texts += list(v)
    texts += PREFIX + TIME_EDIT + RECOLOR + REMOVE + ADD + GROUND_EDIT + MULTI + COLOR_NAMES + OBJECTS + POSITIONS
    texts += ["a an the and with colored of image 1 2 3 no without"]
    for t in texts:
        words.update(tokenize_words(t.replace("{", " ").replace("}", " ")))
    for k in ("t", "o", "c", "x", "g"):
        words.discard(k)
    return ["<pad>", "<unk>"] + sorted(words)


VOCAB = build_vocab()
WORD2ID = {w: i for i, w in enumerate(VOCAB)}
# v2: the v1 ids unchanged, the new words appended (so a v1 model can be widened and warm-started)
_V2_TEXTS = OBJ_SYN2["star"] + NEW_OBJECTS + list(PLURAL.values()) + sum(SIZE_WORD.values(), []) + list(COUNTS.values()) + BG_PHRASE
VOCAB2 = VOCAB + sorted({w for t in _V2_TEXTS for w in tokenize_words(t.replace("{c}", " "))} - set(VOCAB))
# a new word's embedding starts from a related v1 word (train.py --init widens the table)
V2_EMBED_FROM = {"star": "stars", **{pl: sg for sg, pl in PLURAL.items() if pl != sg and sg in WORD2ID}}


_W2I_CACHE = {}


def tokenize(s: str, T: int, vocab=None):
    if vocab is None:
        w2i = WORD2ID
    else:
        key = tuple(vocab)
        w2i = _W2I_CACHE.get(key) or _W2I_CACHE.setdefault(key, {w: i for i, w in enumerate(vocab)})
    ids = [w2i.get(w, 1) for w in tokenize_words(s)][:T]
    return ids + [0] * (T - len(ids))


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    print(len(VOCAB), "words")
    for _ in range(8):
        s = random_scene(rng)
        print(caption(s, rng), "|", make_edit(s, rng)[1])
