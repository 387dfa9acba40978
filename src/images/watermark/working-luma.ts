/**
 * Luma at the detector's working resolution. Resizing every input so that its short side is a
 * fixed number of pixels is what makes the mark scale-invariant: an image downscaled by any
 * factor lands on the same working grid as the original.
 */
import type { RawImage } from '../../domain/types.ts';

export interface LumaPlane {
  width: number;
  height: number;
  data: Float32Array;
}

/** ITU-R BT.601 luma weights; the mark is added equally to R, G and B, i.e. to luma only. */
export const LUMA_R = 0.299;
export const LUMA_G = 0.587;
export const LUMA_B = 0.114;

/** Working-grid size for an image: short side becomes `shortSide`, aspect ratio kept. */
export function workingSize(width: number, height: number, shortSide: number): { width: number; height: number; scale: number } {
  const scale = shortSide / Math.min(width, height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)), scale };
}

/**
 * Area-coverage weights from `source` samples onto `target` samples, as a fixed number of taps per
 * target sample (unused taps have weight 0): target t covers source interval [t/r, (t+1)/r), r = target/source.
 * Weights of each target sum to 1.
 */
interface Taps {
  count: number;
  index: Int32Array;
  weight: Float32Array;
}

function areaTaps(source: number, target: number): Taps {
  const span = source / target;
  // Most target samples overlap ceil(span) sources, some one more; an exact integer span never does.
  const count = Number.isInteger(span) ? span : Math.ceil(span) + 1;
  const index = new Int32Array(target * count);
  const weight = new Float32Array(target * count);
  for (let t = 0; t < target; t++) {
    const lo = t * span;
    const hi = Math.min(source, (t + 1) * span);
    let total = 0;
    let k = 0;
    for (let s = Math.floor(lo); s < Math.ceil(hi) && k < count; s++, k++) {
      const overlap = Math.min(hi, s + 1) - Math.max(lo, s);
      index[t * count + k] = Math.min(s, source - 1);
      weight[t * count + k] = Math.max(0, overlap);
      total += Math.max(0, overlap);
    }
    for (let j = 0; j < count; j++) {
      if (j >= k) index[t * count + j] = index[t * count]!;
      weight[t * count + j] = total > 0 ? weight[t * count + j]! / total : 0;
    }
  }
  return { count, index, weight };
}

/** Box-filtered (area-averaging) luma of `image` resized to `width`×`height`. */
export function resampleLuma(image: RawImage, width: number, height: number): LumaPlane {
  const { width: w, height: h, data } = image;
  const factor = w / width;
  if (Number.isInteger(factor) && factor === h / height) return integerReduce(image, factor);
  const tx = areaTaps(w, width);
  const ty = areaTaps(h, height);
  const rowLuma = new Float32Array(w);
  const columns = new Float32Array(width * ty.count);
  const out = new Float32Array(width * height);
  for (let oy = 0; oy < height; oy++) {
    // Horizontal pass for every source row this output row covers, then the weighted vertical sum.
    for (let k = 0; k < ty.count; k++) {
      const wy = ty.weight[oy * ty.count + k]!;
      const dst = k * width;
      if (wy === 0) {
        columns.fill(0, dst, dst + width);
        continue;
      }
      let p = ty.index[oy * ty.count + k]! * w * 3;
      for (let x = 0; x < w; x++, p += 3) rowLuma[x] = LUMA_R * data[p]! + LUMA_G * data[p + 1]! + LUMA_B * data[p + 2]!;
      for (let ox = 0, tap = 0; ox < width; ox++) {
        let sum = 0;
        for (let j = 0; j < tx.count; j++, tap++) sum += rowLuma[tx.index[tap]!]! * tx.weight[tap]!;
        columns[dst + ox] = sum * wy;
      }
    }
    const base = oy * width;
    for (let ox = 0; ox < width; ox++) {
      let sum = 0;
      for (let k = 0; k < ty.count; k++) sum += columns[k * width + ox]!;
      out[base + ox] = sum;
    }
  }
  return { width, height, data: out };
}

/**
 * Fast path for an exact integer reduction (1024×768 → 512×384): sums R, G and B over each
 * factor×factor block, then one luma per output pixel (luma is linear, so the order does not matter).
 */
function integerReduce(image: RawImage, factor: number): LumaPlane {
  const { width: w, data } = image;
  const width = w / factor;
  const height = image.height / factor;
  const sums = new Float64Array(width * 3);
  const out = new Float32Array(width * height);
  const norm = 1 / (factor * factor);
  for (let oy = 0; oy < height; oy++) {
    sums.fill(0);
    for (let r = 0; r < factor; r++) {
      let p = (oy * factor + r) * w * 3;
      for (let ox = 0, q = 0; ox < width; ox++, q += 3) {
        let red = 0;
        let green = 0;
        let blue = 0;
        for (let j = 0; j < factor; j++, p += 3) {
          red += data[p]!;
          green += data[p + 1]!;
          blue += data[p + 2]!;
        }
        sums[q]! += red;
        sums[q + 1]! += green;
        sums[q + 2]! += blue;
      }
    }
    const base = oy * width;
    for (let ox = 0, q = 0; ox < width; ox++, q += 3) out[base + ox] = (LUMA_R * sums[q]! + LUMA_G * sums[q + 1]! + LUMA_B * sums[q + 2]!) * norm;
  }
  return { width, height, data: out };
}
