import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RawImage } from '../../domain/types.ts';
import { FIELD_CHANNELS, flattenDrawing, renderEdgeField } from './edge-field.ts';

/** A gw×gh field whose every cell says f(i, j) (colours in 0..255 here, stored in [−1,1]). */
function field(gw: number, gh: number, f: (i: number, j: number) => { a: number; b: number; nx: number; ny: number; d: number }): Float32Array {
  const plane = gw * gh;
  const out = new Float32Array(FIELD_CHANNELS * plane);
  for (let j = 0; j < gh; j++) {
    for (let i = 0; i < gw; i++) {
      const c = f(i, j);
      const k = j * gw + i;
      for (let ch = 0; ch < 3; ch++) {
        out[ch * plane + k] = c.a / 127.5 - 1;
        out[(3 + ch) * plane + k] = c.b / 127.5 - 1;
      }
      out[6 * plane + k] = c.nx;
      out[7 * plane + k] = c.ny;
      out[8 * plane + k] = c.d;
    }
  }
  return out;
}
const at = (img: RawImage, x: number, y: number) => img.data[(y * img.width + x) * 3]!;

describe('edge-field renderer (the builtin decode)', () => {
  it('with a hand-over as wide as a cell, a field whose two colours agree is plain bilinear interpolation (half-pixel centres, edges clamped)', () => {
    const gw = 5;
    const gh = 4;
    const v = (i: number, j: number) => 10 + 40 * i + 7 * j;
    const img = renderEdgeField(field(gw, gh, (i, j) => ({ a: v(i, j), b: v(i, j), nx: 1, ny: 0, d: 0 })), gw, gh, 17, 11, 1, 1e9);
    for (let y = 0; y < 11; y++) {
      for (let x = 0; x < 17; x++) {
        const u = Math.min(gw - 1, Math.max(0, ((x + 0.5) * gw) / 17 - 0.5));
        const w = Math.min(gh - 1, Math.max(0, ((y + 0.5) * gh) / 11 - 0.5));
        // the colour is linear in i and j, so bilinear interpolation gives exactly v at the clamped position
        assert.ok(Math.abs(at(img, x, y) - v(u, w)) <= 1, `${x},${y}: ${at(img, x, y)} vs ${v(u, w)}`);
      }
    }
  });

  it('with the run-time one-pixel hand-over, each cell draws its own square and neighbours meet within a pixel', () => {
    const gw = 4;
    const gh = 3;
    const v = (i: number, j: number) => 20 + 60 * i + 10 * j;
    const W = 80; // 20 output pixels per cell
    const H = 60;
    const img = renderEdgeField(field(gw, gh, (i, j) => ({ a: v(i, j), b: v(i, j), nx: 1, ny: 0, d: 0 })), gw, gh, W, H);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const i = Math.floor(x / 20);
        const j = Math.floor(y / 20);
        const nearBorder = [x % 20, y % 20].some((p) => p === 0 || p === 19);
        if (!nearBorder) assert.equal(at(img, x, y), v(i, j), `${x},${y} is inside cell ${i},${j}`);
      }
    }
    // along a row the value goes cell to cell in one step of at most one in-between pixel
    const row = [...Array(W).keys()].map((x) => at(img, x, 30));
    const between = row.filter((p) => ![0, 1, 2, 3].some((i) => p === v(i, 1))).length;
    assert.ok(between <= 3, `${between} pixels between cell colours on a row crossing 3 borders`);
  });

  it('one straight edge stays one output pixel wide at any scale, at the position the field gives', () => {
    // a vertical edge at sub-grid x = 3.3 (cells at integer centres): every cell says "20 left of it, 220 right of it"
    const gw = 8;
    const gh = 6;
    const edgeU = 3.3;
    const f = field(gw, gh, (i) => ({ a: 220, b: 20, nx: 1, ny: 0, d: edgeU - i }));
    for (const W of [32, 75, 184, 1024]) {
      // the ramp is one pixel of the mean of the two scales, so keep the aspect as the engine does
      const H = Math.round((W * gh) / gw);
      const img = renderEdgeField(f, gw, gh, W, H);
      const row = [...Array(W).keys()].map((x) => at(img, x, H >> 1));
      const ramp = row.filter((p) => p > 20 && p < 220).length;
      assert.ok(ramp <= 1, `${W} px wide: ${ramp} pixels between the two colours`);
      // output pixel x sits at u = (x+½)·gw/W − ½, so the step is where u crosses 3.3
      const step = row.findIndex((p) => p >= 120);
      const expected = ((edgeU + 0.5) * W) / gw - 0.5;
      assert.ok(Math.abs(step - expected) <= 1, `${W} px wide: step at ${step}, expected ≈${expected.toFixed(2)}`);
      assert.ok(row.every((p) => p >= 20 && p <= 220), 'nothing outside the two colours');
    }
  });

  it('a diagonal edge puts each pixel on the side its centre is on', () => {
    const gw = 6;
    const gh = 6;
    // the line x + y = 6 (sub-grid units); n = (1,1)/√2, so d for the cell centre (i, j) is (6 − i − j)/√2
    const s = Math.SQRT1_2;
    const f = field(gw, gh, (i, j) => ({ a: 250, b: 0, nx: s, ny: s, d: (6 - i - j) * s }));
    const W = 60;
    const img = renderEdgeField(f, gw, gh, W, W);
    for (let y = 0; y < W; y++) {
      for (let x = 0; x < W; x++) {
        const u = ((x + 0.5) * gw) / W - 0.5;
        const v = ((y + 0.5) * gh) / W - 0.5;
        const dist = ((u + v - 6) * s * W) / gw; // signed distance to the line in output pixels
        if (dist > 0.6) assert.equal(at(img, x, y), 250, `${x},${y}`);
        if (dist < -0.6) assert.equal(at(img, x, y), 0, `${x},${y}`);
      }
    }
  });

  it('refuses a field of the wrong size', () => {
    assert.throws(() => renderEdgeField(new Float32Array(10), 2, 2, 8, 8), /expected 9·2·2/);
  });
});

describe('flattenDrawing', () => {
  const opts = { radius: 2, spatial_sigma: 1, range_sigma: 0.15 };
  /** planar [3, h, w] of one colour per pixel from `pick(x, y)` → [r, g, b]. */
  const drawing = (w: number, h: number, pick: (x: number, y: number) => [number, number, number]) => {
    const out = new Float32Array(3 * w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) pick(x, y).forEach((v, c) => (out[c * w * h + y * w + x] = v));
    return out;
  };
  it('leaves a flat drawing and a step between two distinct colours as they are', () => {
    const flat = drawing(6, 5, () => [0.2, -0.4, 0.6]);
    assert.ok(flattenDrawing(flat, 6, 5, opts).every((v, i) => Math.abs(v - flat[i]!) < 1e-6));
    const step = drawing(8, 4, (x) => (x < 4 ? [0.8, 0.1, -0.5] : [-0.6, -0.6, 0.9]));
    const out = flattenDrawing(step, 8, 4, opts);
    assert.ok(out.every((v, i) => Math.abs(v - step[i]!) < 1e-6), 'colours 1.4 apart do not mix');
  });
  it('pulls a faint blotch toward its surroundings and leaves a strong dot', () => {
    const faint = drawing(7, 7, (x, y) => (x === 3 && y === 3 ? [0.1, 0.1, 0.1] : [0, 0, 0]));
    assert.ok(flattenDrawing(faint, 7, 7, opts)[3 * 7 + 3]! < 0.05, 'a 0.1 blotch loses more than half its height');
    const star = drawing(7, 7, (x, y) => (x === 3 && y === 3 ? [1, 1, 1] : [-0.8, -0.8, -0.6]));
    assert.ok(flattenDrawing(star, 7, 7, opts)[3 * 7 + 3]! > 0.99, 'a star against the night stays');
  });
});
