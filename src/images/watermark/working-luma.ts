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
 * Area-coverage weights between `source` samples and `target` samples, as compressed rows:
 * for source index s, entries start[s]..start[s+1]-1 give (target index, overlap length).
 */
interface Coverage {
  start: Int32Array;
  target: Int32Array;
  weight: Float32Array;
  /** Sum of weights landing on each target sample (to normalise). */
  total: Float32Array;
}

function areaCoverage(source: number, target: number): Coverage {
  const ratio = target / source;
  const start = new Int32Array(source + 1);
  const targets: number[] = [];
  const weights: number[] = [];
  const total = new Float32Array(target);
  for (let s = 0; s < source; s++) {
    start[s] = targets.length;
    const lo = s * ratio;
    const hi = (s + 1) * ratio;
    for (let t = Math.floor(lo); t < Math.min(target, Math.ceil(hi)); t++) {
      const overlap = Math.min(hi, t + 1) - Math.max(lo, t);
      if (overlap > 1e-9) {
        targets.push(t);
        weights.push(overlap);
        total[t]! += overlap;
      }
    }
  }
  start[source] = targets.length;
  return { start, target: Int32Array.from(targets), weight: Float32Array.from(weights), total };
}

/** Box-filtered (area-averaging) luma of `image` resized to `width`×`height`. */
export function resampleLuma(image: RawImage, width: number, height: number): LumaPlane {
  const { width: w, height: h, data } = image;
  const cx = areaCoverage(w, width);
  const cy = areaCoverage(h, height);
  const rowLuma = new Float32Array(w);
  const rowOut = new Float32Array(width);
  const out = new Float32Array(width * height);
  for (let y = 0; y < h; y++) {
    let p = y * w * 3;
    for (let x = 0; x < w; x++, p += 3) rowLuma[x] = LUMA_R * data[p]! + LUMA_G * data[p + 1]! + LUMA_B * data[p + 2]!;
    rowOut.fill(0);
    for (let x = 0; x < w; x++) {
      const v = rowLuma[x]!;
      for (let k = cx.start[x]!; k < cx.start[x + 1]!; k++) rowOut[cx.target[k]!]! += v * cx.weight[k]!;
    }
    for (let k = cy.start[y]!; k < cy.start[y + 1]!; k++) {
      const base = cy.target[k]! * width;
      const wy = cy.weight[k]!;
      for (let x = 0; x < width; x++) out[base + x]! += rowOut[x]! * wy;
    }
  }
  for (let y = 0; y < height; y++) {
    const base = y * width;
    const ny = cy.total[y]!;
    for (let x = 0; x < width; x++) out[base + x]! /= ny * cx.total[x]!;
  }
  return { width, height, data: out };
}
