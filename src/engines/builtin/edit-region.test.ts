import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { accumulatePull, editRegion, growMask, pruneIslands, keepSource, measureSteps, pasteSource, regionTokens, resizeMask, type EditKeepConfig } from './edit-region.ts';
import { patchifyRgb } from './patches.ts';

const KEEP: EditKeepConfig = { share: 0.3, lo: 0.1, hi: 0.2, grow: 1, global_share: 0.6 };

describe('edit region (edits keep the rest)', () => {
  test('measureSteps: round(share·steps), at least one, and off when it would take every step', () => {
    assert.equal(measureSteps(KEEP, 20), 6);
    assert.equal(measureSteps(KEEP, 1), 0);
    assert.equal(measureSteps({ ...KEEP, share: 0.25 }, 2), 1); // 0.5 rounds half up, as model/sampler.py does
    assert.equal(measureSteps(undefined, 20), 0);
  });

  test('accumulatePull reads the velocity tokens in patchify order: one changed pixel lands on that pixel', () => {
    const rows = 2;
    const cols = 3;
    const P = 2;
    const w = cols * P;
    const h = rows * P;
    // a planar-style difference: pixel (x=3, y=2) changes by 0.6 in every colour
    const img = { width: w, height: h, data: new Uint8Array(w * h * 3).fill(128) };
    const moved = { width: w, height: h, data: img.data.slice() };
    for (let c = 0; c < 3; c++) moved.data[(2 * w + 3) * 3 + c] = 128 + 76; // 76/127.5 ≈ 0.596
    const a = patchifyRgb(img, rows, cols, P);
    const b = patchifyRgb(moved, rows, cols, P);
    const acc = new Float32Array(w * h);
    accumulatePull(acc, b, a, 0.5, rows, cols, P);
    const hot = [...acc.keys()].filter((i) => acc[i]! > 0);
    assert.deepEqual(hot, [2 * w + 3]);
    assert.ok(Math.abs(acc[2 * w + 3]! - 0.5 * (76 / 127.5)) < 1e-6);
  });

  test('a local pull gives a grown, soft mask that is 1 inside, 0 far away; a pull everywhere is a global edit (null)', () => {
    const w = 12;
    const h = 8;
    const pull = new Float32Array(w * h);
    pull[3 * w + 5] = 0.5; // one strongly pulled pixel
    pull[0] = 0.15; // half-way between lo and hi
    const m = editRegion(pull, w, h, KEEP)!;
    assert.ok(m, 'a local edit has a region');
    assert.equal(m[3 * w + 5], 1, 'a pixel whose 3×3 box lies inside the grown square is fully editable');
    assert.ok(m[3 * w + 7]! > 0 && m[3 * w + 7]! < 1, 'the grown border is soft');
    assert.equal(m[7 * w + 11], 0, 'far from every pull nothing may change');
    assert.equal(editRegion(new Float32Array(w * h).fill(1), w, h, KEEP), null);
  });

  test('growMask is a max filter then a 3×3 box, edges clamped', () => {
    const m = new Float32Array(5 * 5);
    m[12] = 1; // centre
    const g0 = growMask(m, 5, 5, 0);
    assert.ok(Math.abs(g0[12]! - 1 / 9) < 1e-7 && Math.abs(g0[6]! - 1 / 9) < 1e-7 && g0[0] === 0);
    const g1 = growMask(m, 5, 5, 1);
    assert.equal(g1[12], 1);
    // the grown square is rows and columns 1..3; the corner's clamped window (0, 0, 1)² meets it only at (1, 1)
    assert.ok(Math.abs(g1[0]! - 1 / 9) < 1e-7 && Math.abs(g1[1]! - 2 / 9) < 1e-7);
  });

  test('keepSource puts the latent on the source path outside the mask and leaves it inside; at σ = 0 it is the source', () => {
    const x = Float32Array.from([5, 5, 5]);
    const mask = Float32Array.from([1, 0, 0.5]);
    const src = Float32Array.from([0.2, 0.4, 0.6]);
    const eps = Float32Array.from([1, -1, 0]);
    keepSource(x, mask, src, eps, 0.25);
    assert.equal(x[0], 5);
    assert.ok(Math.abs(x[1]! - (0.75 * 0.4 - 0.25)) < 1e-6);
    assert.ok(Math.abs(x[2]! - (0.5 * 5 + 0.5 * 0.75 * 0.6)) < 1e-6);
    const y = Float32Array.from([9, 9, 9]);
    keepSource(y, Float32Array.from([0, 0, 0]), src, eps, 0);
    assert.deepEqual([...y], [...src]);
  });

  test('regionTokens repeats a pixel\'s value over its three colours in patchify order', () => {
    const rows = 1;
    const cols = 2;
    const P = 2;
    const region = Float32Array.from([0, 0.25, 0.5, 0.75, 1, 0.1, 0.2, 0.3]); // 4×2 pixels
    const t = regionTokens(region, rows, cols, P);
    // token 1 covers x = 2..3: pixels (2,0) = 0.5, (3,0) = 0.75, (2,1) = 0.2, (3,1) = 0.3
    for (let c = 0; c < 3; c++) assert.deepEqual([...t.subarray(12 + c * 4, 12 + c * 4 + 4)].map((v) => +v.toFixed(2)), [0.5, 0.75, 0.2, 0.3]);
  });

  test('pasteSource blends by the mask, and resizeMask keeps constants and interpolates between pixel centres', () => {
    const out = { width: 2, height: 1, data: Uint8Array.from([200, 200, 200, 200, 200, 200]) };
    const src = { width: 2, height: 1, data: Uint8Array.from([0, 0, 0, 100, 100, 100]) };
    const r = pasteSource(out, src, Float32Array.from([1, 0.5]));
    assert.deepEqual([...r.data], [200, 200, 200, 150, 150, 150]);
    assert.ok(resizeMask(new Float32Array(6).fill(0.5), 3, 2, 30, 20).every((v) => Math.abs(v - 0.5) < 1e-7));
    const ramp = resizeMask(Float32Array.from([0, 1]), 2, 1, 4, 1);
    assert.deepEqual([...ramp].map((v) => +v.toFixed(3)), [0, 0.25, 0.75, 1]);
  });
});

describe('pruneIslands', () => {
  test('drops the parts of a mask that never reach 1 and keeps every part that does, whole', () => {
    const w = 6;
    const h = 4;
    // A part reaching 1 (with a soft rim, joined diagonally), and a faint island that stays below 1.
    const m = new Float32Array([
      0, 0, 0, 0, 0.4, 0.6,
      0.3, 1, 0, 0, 0.9, 0,
      0, 0.5, 0, 0, 0, 0,
      0, 0, 0.7, 0, 0, 0,
    ]);
    const out = pruneIslands(m, w, h);
    assert.deepEqual([...out], [
      0, 0, 0, 0, 0, 0,
      0.3, 1, 0, 0, 0, 0,
      0, 0.5, 0, 0, 0, 0,
      0, 0, 0.7, 0, 0, 0,
    ].map(Math.fround));
    assert.deepEqual([...m].slice(4, 6), [0.4, 0.6].map(Math.fround), 'the input is left as it was');
  });
  test('editRegion prunes only local edits, after the global test on the whole pull', () => {
    const w = 8;
    const h = 8;
    const pull = new Float32Array(w * h).fill(0.07); // faint pull everywhere: half way from lo to hi
    pull[9] = 0.2;
    const keep = { share: 0.3, lo: 0.06, hi: 0.12, grow: 1, global_share: 0.5 };
    const plain = editRegion(pull, w, h, keep)!;
    const pruned = editRegion(pull, w, h, { ...keep, prune: true })!;
    assert.ok(plain.every((v) => v > 0), 'without pruning the faint pull is part of the mask');
    // The faint pull is one part with the strong pixel (all above lo, 8-connected), so it stays; a separate island does not.
    assert.deepEqual([...pruned], [...plain]);
    const apart = new Float32Array(w * h);
    apart[9] = 0.2;
    apart[w * h - 1] = 0.08;
    const region = editRegion(apart, w, h, { ...keep, prune: true })!;
    assert.equal(region[w * h - 1], 0, 'the lone faint island is gone');
    assert.ok(region[9]! > 0.99);
  });
});
