"""Evaluate qwen-image-mini through the running server (or directly in PyTorch with --direct).

  /usr/bin/python3 model/eval.py --base-url http://127.0.0.1:8080 --key KEY [--sample K]
  /usr/bin/python3 model/eval.py --direct [--ckpt model/checkpoints/main/ckpt.pt] [--sample K]

Prints a markdown table: held-out caption attribute accuracy, the same on held-out captions phrased with words
outside the model's vocabulary that people type (through the server: mapped by src/prompt/vocabulary.ts, and raw),
negative-prompt removal rate, edit success, PSNR outside the edited region, edge sharpness against the direct render
(model/sharpness.py), seed determinism.  Exit status 1 if determinism fails.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checker as K  # noqa: E402
import scenes as S  # noqa: E402
import sharpness as Q  # noqa: E402

MODEL = "alibaba/qwen-image-2-0"
W, H = 1024, 768  # landscape_4_3
PSNR_RES = (224, 168)  # PSNR computed after area-downsampling both images to this size (model content, not SR sharpness)


def png_bytes(img):
    from PIL import Image
    b = io.BytesIO()
    Image.fromarray(np.asarray(img, np.uint8)).save(b, format="PNG")
    return b.getvalue()


def png_decode(b):
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))


class ServerGen:
    def __init__(self, base, key, timeout=120, enhance=False):
        self.base, self.key, self.timeout, self.enhance = base.rstrip("/"), key, timeout, enhance

    def __call__(self, prompt, seed, negative=None, refs=None, enhance=None):
        body = {"model": MODEL, "prompt": prompt, "enhance_prompt": self.enhance if enhance is None else enhance,
                "seed": int(seed),
                "image_size": "landscape_4_3", "response_format": "b64_json"}
        if negative:
            body["negative_prompt"] = negative
        if refs:
            body["image_urls"] = ["data:image/png;base64," + base64.b64encode(png_bytes(r)).decode() for r in refs]
        req = urllib.request.Request(self.base + "/v1/images/generations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "Bearer " + self.key}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                res = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"HTTP {e.code}: {e.read()[:500]!r}") from None
        return png_decode(base64.b64decode(res["data"][0]["b64_json"]))


class DirectGen:
    def __init__(self, ckpt, sr_ckpt, cfg_scale=None, up_ckpt=None):
        from sampler import Pipeline
        self.pipe = Pipeline.from_checkpoint(ckpt, sr_ckpt, up_ckpt)
        self.cfg_scale = cfg_scale

    def __call__(self, prompt, seed, negative=None, refs=None, enhance=None):
        # the server path sends PNGs through image_urls; refs here are the same uint8 arrays
        return self.pipe.generate(prompt, seed, W, H, negative_prompt=negative, refs=refs, cfg_scale=self.cfg_scale)


def psnr(a, b, mask=None):
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is not None:
        d = d[mask]
    mse = d.mean()
    return 99.0 if mse <= 1e-10 else 10 * np.log10(255.0 ** 2 / mse)


def dilate(m, r):
    out = m.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(m, dy, 0), dx, 1)
    return out


def small(img, size=PSNR_RES):
    from PIL import Image
    return np.asarray(Image.fromarray(np.asarray(img, np.uint8)).resize(size, Image.BOX), np.float32)


# ------------------------------------------------------------------------------------------------ eval sets

def heldout_cases(n, rng):
    trip = sorted(S.HELDOUT)
    cases = []
    for i in range(n):
        c, o, p = trip[i % len(trip)]
        s = S.random_scene(rng, n_objects=0)
        s["objects"] = [{"type": o, "color": c, "pos": p}]
        if rng.random() < 0.5:  # a second (training-seen) object elsewhere
            q = [x for x in S.POSITIONS if x != p][rng.integers(2)]
            s["objects"].append(S.random_object(rng, q))
            s["objects"].sort(key=lambda x: S.POSITIONS.index(x["pos"]))
        s["clouds"] = False
        s["stars"] = False
        cap = S.caption(s, rng, mode="full")
        exp = {"time": s["time"], "ground": s["ground"], "objects": s["objects"]}
        if s["sun"]:
            exp["sun"] = True
        if s["moon"]:
            exp["moon"] = True
        cases.append((cap, exp, 1000 + i))
    return cases


# Words people type instead of the model's own (none is in the tokenizer's vocabulary; src/prompt/vocabulary.ts maps
# them when the builtin engine draws with enhance_prompt on). Each attribute keeps its meaning.
TYPED_COLOR = {"red": ["crimson", "scarlet", "cherry red", "burgundy"], "orange": ["amber", "tangerine", "copper"],
               "yellow": ["golden", "mustard", "sunflower yellow"], "green": ["emerald", "jade", "forest green"],
               "blue": ["navy", "azure", "cerulean", "sky blue"], "purple": ["violet", "lavender", "mauve"],
               "pink": ["fuchsia", "rosy", "hot pink"], "white": ["ivory", "cream", "snow white"],
               "black": ["ebony", "onyx", "jet black"], "gray": ["charcoal", "silver", "slate"],
               "brown": ["khaki", "tan", "chocolate brown"]}
TYPED_OBJ = {"house": ["cabin", "barn", "chalet", "villa"], "tree": ["pine tree", "fir", "palm tree", "oak"],
             "mountain": ["peak", "volcano", "summit"], "circle": ["sphere", "orb", "globe"],
             "square": ["cube", "crate", "rectangle"], "triangle": ["pyramid"]}
TYPED_POS = {"left": ["on the left", "leftmost"], "center": ["centered", "central"], "right": ["on the right", "rightmost"]}
TYPED_GROUND = {"grass": ["on a lawn", "on a prairie", "in a pasture"], "sea": ["on a lake", "by the seaside", "over the waves"],
                "desert": ["in the sahara", "on sandy dunes"], "snow": ["in winter", "on icy ground"]}
TYPED_TIME = {"day": ["in the morning", "at midday", "in the afternoon"], "sunset": ["at golden hour", "at twilight", "at dawn"],
              "night": ["at nightfall", "at midnight", "tonight"]}
TYPED_SKY = {"sun": ["with sunshine", "in the sunlight"], "moon": ["with a full moon", "in the moonlight"]}


def typed_cases(n, rng):
    """held-out colour x object x position combinations, captioned with the TYPED_* words"""
    trip = sorted(S.HELDOUT)
    cases = []
    for i in range(n):
        c, o, p = trip[(7 * i + 3) % len(trip)]
        s = S.random_scene(rng, n_objects=0)
        s["objects"] = [{"type": o, "color": c, "pos": p}]
        s["clouds"] = s["stars"] = False
        parts = []
        for ob in s["objects"]:
            cw, ow = S._pick(TYPED_COLOR[ob["color"]], rng), S._pick(TYPED_OBJ[ob["type"]], rng)
            pw = S._pick(TYPED_POS[ob["pos"]], rng)
            parts.append(f"{S._article(cw)} {cw} {ow} {pw}" if " " in pw else f"{S._article(pw)} {pw} {cw} {ow}")
        cap = " ".join(parts + [S._pick(TYPED_GROUND[s["ground"]], rng), S._pick(TYPED_TIME[s["time"]], rng)])
        exp = {"time": s["time"], "ground": s["ground"], "objects": s["objects"]}
        for k in ("sun", "moon"):
            if s[k]:
                cap += " " + S._pick(TYPED_SKY[k], rng)
                exp[k] = True
        cases.append((cap, exp, 4000 + i))
    return cases


def is_new_attribute(key):
    """score2's attribute names that only the wider vocabulary can satisfy"""
    words = key.replace("@", " ").split()
    return (any(w in S.NEW_OBJECTS or w in S.SIZES or w == "normal" for w in words) or key.startswith("background")
            or words[0].isdigit())


def vocab2_cases(n, rng):
    """the wider vocabulary (scenes.py v2) on held-out combinations: new things (scenes.HELDOUT2), sizes
    (HELDOUT_SIZE), counts (HELDOUT_COUNT) and plain backgrounds (HELDOUT_BG), in turn; full v2 captions."""
    things, sizes = sorted(S.HELDOUT2), sorted(S.HELDOUT_SIZE)
    counts, bgs = sorted(S.HELDOUT_COUNT), sorted(S.HELDOUT_BG)
    cases = []
    for i in range(n):
        kind = ["thing", "size", "count", "background"][i % 4]
        j = i // 4
        s = S.random_scene(rng, n_objects=0)
        s["clouds"] = s["stars"] = False
        if kind == "thing":
            c, t, p = things[j % len(things)]
            s["objects"] = [{"type": t, "color": c, "pos": p}]
        elif kind == "size":
            z, t = sizes[j % len(sizes)]
            while True:
                o = {"type": t, "color": S._pick(S.COLOR_NAMES, rng), "pos": S._pick(S.POSITIONS, rng), "size": z}
                if (o["color"], t, o["pos"]) not in S.HELDOUT:
                    break
            s["objects"] = [o]
        elif kind == "count":
            k, t = counts[j % len(counts)]
            c = S._pick(S.COLOR_NAMES, rng)
            poss = sorted(list(rng.permutation(S.POSITIONS))[:k], key=S.POSITIONS.index)
            s["objects"] = [{"type": t, "color": c, "pos": p} for p in poss]
            s["count"] = k
        else:
            bgc, t = bgs[j % len(bgs)]
            c = S._pick([x for x in S.COLOR_NAMES if x != bgc], rng)
            s["objects"] = [{"type": t, "color": c, "pos": S._pick(S.POSITIONS, rng)}]
            s.update(background=bgc, time="day", ground="grass", sun=False, moon=False)
        cap = S.caption2(s, rng, mode="full")
        exp = {"objects": [dict(o, size=o.get("size")) if kind == "size" else dict(o) for o in s["objects"]]}
        if kind == "count":
            # a count leaves the positions to the model: exactly n of the thing, each of the colour
            exp = {"count": [s["objects"][0]["type"], s["count"], s["objects"][0]["color"]]}
        if kind == "background":
            exp["background"] = s["background"]
        else:
            exp.update(time=s["time"], ground=s["ground"])
        cases.append((kind, cap, exp, 6000 + i))
    return cases


NEG_PROMPTS = [  # (prompt, sky object expected to appear unprompted, negative prompt)
    ("a red house on the left during the day", "sun", "the sun"),
    ("a blue square in the middle in the daytime", "sun", "sun"),
    ("a white tree on the right at night", "moon", "the moon"),
    ("a yellow triangle on the left at night", "moon", "a moon"),
    ("an orange mountain in the center at sunset", "sun", "the sun"),
]


def edit_cases(n, rng):
    cases = []
    ops = ["recolor", "remove", "add_obj", "add_sky", "remove_sky", "time", "ground", "multi"]
    for i in range(n):
        op = ops[i % len(ops)]
        if op == "multi":
            a, b, tsc, instr, info = S.make_multi(rng)
            refs_sc = [a, b]
        else:
            while True:
                src = S.random_scene(rng, n_objects=int(rng.integers(1, 4)) if op != "add_obj" else int(rng.integers(0, 3)))
                try:
                    tsc, instr, info = S.make_edit(src, rng, op=op)
                    break
                except RuntimeError:
                    continue
            refs_sc = [src]
        cases.append((instr, refs_sc, tsc, info, 2000 + i))
    return cases


def edit_expect(tsc, info):
    exp = {}
    op = info["op"]
    if op in ("time",):
        exp["time"] = tsc["time"]
    if op == "ground":
        exp["ground"] = tsc["ground"]
    if op in ("recolor", "add_obj", "multi"):
        exp["objects"] = [info["obj"]]
    if op == "remove":
        exp["absent"] = [info["obj"]["pos"]]
    if op in ("add_sky", "remove_sky") and info["sky"] in ("sun", "moon", "clouds"):
        exp[info["sky"]] = bool(tsc[info["sky"]])
    return exp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url")
    ap.add_argument("--key", default=os.environ.get("API_KEY", ""))
    ap.add_argument("--direct", action="store_true")
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints/main/ckpt.pt"))
    ap.add_argument("--sr-ckpt", default=os.path.join(HERE, "checkpoints/main/sr.pt"))
    ap.add_argument("--up-ckpt", default=os.path.join(HERE, "weights/torch/up.pt"), help="--direct only: edge-field upsampler")
    ap.add_argument("--cfg", type=float, default=None, help="--direct only: override true_cfg_scale (default 4.0)")
    ap.add_argument("--sample", type=int, default=24, help="held-out captions and edits to run")
    ap.add_argument("--neg-seeds", type=int, default=5)
    ap.add_argument("--typed-sample", type=int, default=None, help="typed-word captions (default: --sample)")
    ap.add_argument("--vocab2-sample", type=int, default=None, help="captions for the new-vocabulary row (default: --sample)")
    ap.add_argument("--sharp-sample", type=int, default=6, help="scenes for the sharpness row")
    ap.add_argument("--only", default=None, help="comma list of sections to run: heldout,vocab2,typed,negative,edits,sharpness,determinism")
    ap.add_argument("--save-dir", default=None, help="write every generated image here")
    ap.add_argument("--enhance-prompt", action="store_true", help="server only: send enhance_prompt true (the API default)")
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    a = ap.parse_args()
    if a.direct:
        import torch
        torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
        gen = DirectGen(a.ckpt, a.sr_ckpt, a.cfg, a.up_ckpt)
    elif a.base_url:
        gen = ServerGen(a.base_url, a.key, enhance=a.enhance_prompt)
    else:
        ap.error("--base-url or --direct")
    if a.save_dir:
        os.makedirs(a.save_dir, exist_ok=True)
    from PIL import Image
    t0 = time.time()
    rng = np.random.default_rng(777)
    ncalls = [0]

    def G(name, *args, **kw):
        img = gen(*args, **kw)
        ncalls[0] += 1
        if a.save_dir:
            Image.fromarray(img).save(os.path.join(a.save_dir, name + ".png"))
        return img

    rows = []
    sections = set((a.only or "heldout,vocab2,typed,negative,edits,sharpness,determinism").split(","))
    same = diff = True
    if "heldout" in sections:
        # 1. held-out captions
        attr = []
        per_kind = {}
        for i, (cap, exp, seed) in enumerate(heldout_cases(a.sample, rng)):
            det = K.detect(G(f"heldout_{i}", cap, seed))
            r = K.score(det, exp)
            attr += r
            for k, v in r:
                kk = "object" if "@" in k and " " not in k else ("object colour" if "@" in k else k)
                per_kind.setdefault(kk, []).append(v)
            print(f"[heldout] {cap!r}: {sum(v for _, v in r)}/{len(r)} {[k for k, v in r if not v]}", flush=True)
        acc = float(np.mean([v for _, v in attr]))
        rows.append(("held-out caption attribute accuracy", f"{acc*100:.1f}% ({sum(v for _, v in attr)}/{len(attr)})",
                     "≥80%", acc >= 0.8))
        for k, v in sorted(per_kind.items()):
            rows.append((f"  · {k}", f"{np.mean(v)*100:.1f}% ({sum(v)}/{len(v)})", "", None))
    if "negative" in sections:
        # 2. negative prompts
        elig, removed, tried = 0, 0, 0
        for j, (p, sky, neg) in enumerate(NEG_PROMPTS):
            seeds = range(300 + 10 * j, 300 + 10 * j + a.neg_seeds)
            shown = [K.detect(G(f"neg{j}_plain_{s}", p, s))[sky] for s in seeds]
            rate = float(np.mean(shown))
            if rate >= 0.8:
                elig += 1
                gone = [not K.detect(G(f"neg{j}_neg_{s}", p, s, negative=neg))[sky] for s in seeds]
                removed += sum(gone)
                tried += len(gone)
                print(f"[negative] {p!r} {sky} shown {rate:.0%}; with negative {neg!r} removed {np.mean(gone):.0%}", flush=True)
            else:
                print(f"[negative] {p!r} {sky} shown only {rate:.0%}: not eligible", flush=True)
        rem = removed / tried if tried else float("nan")
        rows.append(("negative-prompt removal rate", f"{rem*100:.1f}% ({removed}/{tried}; {elig}/{len(NEG_PROMPTS)} prompts eligible)",
                     "≥80%", bool(tried and rem >= 0.8)))
    if "edits" in sections:
        # 3. edits
        ok_all, psnrs, psnrs_full, by_op = [], [], [], {}
        for i, (instr, refs_sc, tsc, info, seed) in enumerate(edit_cases(a.sample, rng)):
            refs = [S.render(s, H, W, ss=1).round().astype(np.uint8) for s in refs_sc]
            out = G(f"edit_{i}", instr, seed, refs=refs)
            det = K.detect(out)
            r = K.score(det, edit_expect(tsc, info))
            # other objects of the source must survive (type at position)
            keep = [o for o in tsc["objects"] if not (info.get("obj") and o["pos"] == info["obj"]["pos"])]
            r += K.score(det, {"objects": [{"type": o["type"], "pos": o["pos"]} for o in keep]})
            ok = all(v for _, v in r)
            ok_all.append(ok)
            by_op.setdefault(info["op"], []).append(ok)
            msg = ""
            if info["local"]:
                src_s = small(S.render(refs_sc[0], H, W, ss=1))
                tgt_s = small(S.render(tsc, H, W, ss=1))
                diff = np.abs(src_s - tgt_s).sum(-1) > 6
                mask = ~dilate(diff, 3)
                p = psnr(small(out), src_s, mask)
                psnrs.append(p)
                # the same region at the output size, against the source scene drawn directly at 1024x768
                from PIL import Image
                mask_full = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((W, H), Image.NEAREST)) > 0
                pf = psnr(np.asarray(out, np.float32), S.render(refs_sc[0], H, W), mask_full)
                psnrs_full.append(pf)
                msg = f" psnr_outside={p:.1f}dB ({pf:.1f}dB at {W}x{H})"
            print(f"[edit] {info['op']} {instr!r}: {'ok' if ok else 'FAIL ' + str([k for k, v in r if not v])}{msg}", flush=True)
        es = float(np.mean(ok_all))
        rows.append(("edit success", f"{es*100:.1f}% ({sum(ok_all)}/{len(ok_all)})", "≥70%", es >= 0.7))
        for k, v in sorted(by_op.items()):
            rows.append((f"  · {k}", f"{np.mean(v)*100:.0f}% ({sum(v)}/{len(v)})", "", None))
        mp = float(np.mean(psnrs)) if psnrs else float("nan")
        rows.append(("PSNR outside edited region (mean, local edits)", f"{mp:.1f} dB (min {min(psnrs):.1f})", "≥25 dB", mp >= 25))
        mf = float(np.mean(psnrs_full)) if psnrs_full else float("nan")
        rows.append((f"  · the same at the output size ({W}x{H}, against the direct render)",
                     f"{mf:.1f} dB (min {min(psnrs_full):.1f})" if psnrs_full else "n/a", "≥28 dB", mf >= 28))
    # 1b. the wider vocabulary on held-out combinations (own rng)
    if "vocab2" in sections:
        res, new_res, kinds = [], [], {}
        for i, (kind, cap, exp, seed) in enumerate(vocab2_cases(a.vocab2_sample or a.sample, np.random.default_rng(6161))):
            det = K.detect2(G(f"vocab2_{i}", cap, seed))
            r = K.score2(det, exp)
            res += r
            # the attributes the new words carry: a new thing's type and colour, a size, a count, a background
            rn = [(k, v) for k, v in r if is_new_attribute(k)]
            new_res += rn
            kinds.setdefault(kind, []).extend(v for _, v in rn)
            print(f"[vocab2 {kind}] {cap!r}: {sum(v for _, v in r)}/{len(r)} {[k for k, v in r if not v]}", flush=True)
        acc2 = float(np.mean([v for _, v in new_res]))
        rows.append(("new-vocabulary attributes on held-out captions (things, sizes, counts, backgrounds)",
                     f"{acc2*100:.1f}% ({sum(v for _, v in new_res)}/{len(new_res)})", "≥80%", acc2 >= 0.8))
        for k, v in sorted(kinds.items()):
            rows.append((f"  · {k}", f"{np.mean(v)*100:.1f}% ({sum(v)}/{len(v)})", "", None))
        acc_all = float(np.mean([v for _, v in res]))
        rows.append(("  · every attribute of those captions (with time, ground, sky)",
                     f"{acc_all*100:.1f}% ({sum(v for _, v in res)}/{len(res)})", "", None))
    # 5. captions phrased with words people type (own rng: the sections above draw the same cases as before)
    if "typed" in sections:
        modes = [("mapped", True)] + ([("raw", False)] if not a.direct else [])
        for label, enh in modes:
            res, kinds = [], {}
            for i, (cap, exp, seed) in enumerate(typed_cases(a.typed_sample or a.sample, np.random.default_rng(4242))):
                det = K.detect(G(f"typed_{label}_{i}", cap, seed, **({} if a.direct else {"enhance": enh})))
                r = K.score(det, exp)
                res += r
                for k, v in r:
                    kk = "object" if "@" in k and " " not in k else ("object colour" if "@" in k else k)
                    kinds.setdefault(kk, []).append(v)
                print(f"[typed {label}] {cap!r}: {sum(v for _, v in r)}/{len(r)} {[k for k, v in r if not v]}", flush=True)
            acc_t = float(np.mean([v for _, v in res]))
            what = "vocabulary mapping on (enhance_prompt true)" if enh else "raw (enhance_prompt false: no mapping)"
            rows.append((f"typed-word held-out captions, {what}", f"{acc_t*100:.1f}% ({sum(v for _, v in res)}/{len(res)})",
                         "≥80%" if enh else "", (acc_t >= 0.8) if enh else None))
            for k, v in sorted(kinds.items()):
                rows.append((f"  · {k}", f"{np.mean(v)*100:.1f}% ({sum(v)}/{len(v)})", "", None))
    # 6. sharpness of what comes back at 1024x768 against the same scene rendered directly at that size
    if "sharpness" in sections:
        srng = np.random.default_rng(5151)
        figs = []
        for i, sc in enumerate(Q.sharp_scenes(a.sharp_sample, 5150)):
            sc = dict(sc, clouds=False, stars=False)  # what a full caption can pin down exactly
            cap = S.caption(sc, srng, mode="full")
            out = G(f"sharp_{i}", cap, 5000 + i)
            f = Q.figures(out, S.render(sc, H, W).round().astype(np.uint8))
            figs.append(f)
            print(f"[sharpness] {cap!r}: {Q.fmt(f)}", flush=True)
        mf = Q.mean_figures(figs)
        rows.append(("edge sharpness vs direct render (alignment-free; generated edges can sit px off)",
                     f"{mf['sharp_top']:.3f} (aligned {mf['sharp']:.3f})", "≥0.8", mf["sharp_top"] >= 0.8))
        rows.append(("halo: overshoot beyond the direct render's local range near edges",
                     f"{mf['halo']:.2f} levels ({mf['halo_frac']*100:.1f}% of band > {Q.HALO_VISIBLE:.0f})", "", None))
        rows.append(("PSNR vs direct render (includes the model's own drawing error)", f"{mf['psnr']:.2f} dB", "", None))
        rows.append(("edge direction error vs direct render (staircase; 0 = the render's own)", f"{mf['direction']:.1f}°", "", None))
    if "determinism" in sections:
        # 4. determinism
        p = "a green tree on the left and a red house on the right at sunset"
        x1, x2, x3 = G("det_a", p, 42), G("det_b", p, 42), G("det_c", p, 43)
        same = bool(np.array_equal(x1, x2))
        diff = not np.array_equal(x1, x3)
        rows.append(("seed determinism (same request → same pixels)", str(same), "True", same))
        rows.append(("different seeds → different images", str(diff), "True", diff))
    print()
    print("| metric | value | target | pass |")
    print("|---|---|---|---|")
    for name, val, tgt, ok in rows:
        print(f"| {name} | {val} | {tgt} | {'' if ok is None else ('yes' if ok else 'NO')} |")
    print(f"\n{ncalls[0]} images in {time.time()-t0:.0f} s ({'direct PyTorch' if a.direct else a.base_url})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"metric": n, "value": v, "target": t, "pass": o} for n, v, t, o in rows], f, indent=1)
    # the exit status follows the determinism rows (the other rows are floors for CI to read), when they were run
    sys.exit(0 if all(ok for name, _, _, ok in rows if name.startswith(("seed determinism", "different seeds"))) else 1)


if __name__ == "__main__":
    main()
