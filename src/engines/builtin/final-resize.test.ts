import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RawImage } from '../../domain/types.ts';
import { DEFAULT_FINAL_RESIZE, resizeFinal, snapEdges } from './final-resize.ts';

/** w×h grey image from a per-pixel value function. */
function grey(w: number, h: number, f: (x: number, y: number) => number): RawImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.fill(f(x, y), (y * w + x) * 3, (y * w + x) * 3 + 3);
  return { width: w, height: h, data };
}
const at = (img: RawImage, x: number, y: number) => img.data[(y * img.width + x) * 3]!;

describe('final resize of the builtin engine', () => {
  it('snapEdges turns a ramp between two flat colours into a step at its midpoint', () => {
    // 20 → 220 over x = 8..12 (a 5-px ramp: 53, 86, 119, 152, 185); 119 is just under the midpoint 120
    const ramp = grey(24, 4, (x) => (x < 8 ? 20 : x > 12 ? 220 : 20 + (x - 7) * 33));
    const out = snapEdges(ramp, { radius: 3, threshold: 64 });
    assert.deepEqual([...Array(24).keys()].map((x) => at(out, x, 1)), [...Array(24).keys()].map((x) => (x <= 10 ? 20 : 220)));
  });

  it('snapEdges never leaves the input\'s local range (no new halos) and keeps smooth gradients smooth', () => {
    const img = grey(32, 32, (x, y) => (x * 7 + y * 13) % 256);
    const out = snapEdges(img, { radius: 2, threshold: 64 });
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        let lo = 255;
        let hi = 0;
        for (let v = Math.max(0, y - 2); v <= Math.min(31, y + 2); v++) {
          for (let u = Math.max(0, x - 2); u <= Math.min(31, x + 2); u++) {
            lo = Math.min(lo, at(img, u, v));
            hi = Math.max(hi, at(img, u, v));
          }
        }
        assert.ok(at(out, x, y) >= lo && at(out, x, y) <= hi, `${x},${y}`);
      }
    }
    const sky = grey(40, 40, (_x, y) => 60 + y); // 1 level per pixel, like the sky's vertical gradient
    assert.deepEqual(snapEdges(sky, { radius: 2, threshold: 64 }).data, sky.data);
  });

  it('ends at exactly the requested size; the default sharpens an upscale and leaves a near-1× resize alone', async () => {
    const src = grey(16, 12, (x) => (x < 8 ? 30 : 200));
    const big = await resizeFinal(src, 80, 60);
    assert.deepEqual([big.width, big.height, big.data.length], [80, 60, 80 * 60 * 3]);
    const plain = await resizeFinal(src, 80, 60, 'linear');
    const steepest = (img: RawImage) => Math.max(...[...Array(79).keys()].map((x) => Math.abs(at(img, x + 1, 30) - at(img, x, 30))));
    assert.equal(DEFAULT_FINAL_RESIZE, 'linear+snap');
    assert.ok(steepest(big) > steepest(plain), `${steepest(big)} > ${steepest(plain)}`);
    const near = await resizeFinal(src, 20, 15);
    assert.deepEqual(near.data, (await resizeFinal(src, 20, 15, 'linear')).data);
  });
});
