/**
 * Adds the tiled mark to an image. The mark is the tile's ±1 cell values, bilinearly interpolated
 * between cell centres (a smooth pattern with no block edges), laid on the working grid and mapped
 * back to full resolution, scaled by a texture mask and added equally to R, G and B (luma only,
 * which JPEG/WebP chroma subsampling leaves alone).
 */
import type { RawImage } from '../../domain/types.ts';
import type { WatermarkParams } from './params.ts';
import { LUMA_B, LUMA_G, LUMA_R, workingSize } from './working-luma.ts';

/**
 * Mean square of the bilinear interpolation of a periodic grid, exactly: over one cell the integral
 * of (Σ c·w)² is cᵀ(G⊗G)c with the 1-D Gram matrix G = [[1/3, 1/6], [1/6, 1/3]].
 */
function bilinearMeanSquare(chips: Float32Array, cells: number): number {
  let total = 0;
  for (let row = 0; row < cells; row++) {
    const row1 = (row + 1) % cells;
    for (let col = 0; col < cells; col++) {
      const col1 = (col + 1) % cells;
      const c = [chips[row * cells + col]!, chips[row * cells + col1]!, chips[row1 * cells + col]!, chips[row1 * cells + col1]!];
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 4; b++) {
          const gx = (a & 1) === (b & 1) ? 1 / 3 : 1 / 6;
          const gy = a >> 1 === b >> 1 ? 1 / 3 : 1 / 6;
          total += c[a]! * c[b]! * gx * gy;
        }
      }
    }
  }
  return total / (cells * cells);
}

/** Per-column (or per-row) bilinear lookup: lower index, upper index, weight of the upper one. */
interface Lerp {
  lo: Int32Array;
  hi: Int32Array;
  t: Float32Array;
}

/** Cell coordinate of pixel centres: pixel p sits at working position (p + 0.5)·scale. */
function periodicLerp(length: number, scale: number, cellPx: number, cells: number): Lerp {
  const lo = new Int32Array(length);
  const hi = new Int32Array(length);
  const t = new Float32Array(length);
  for (let p = 0; p < length; p++) {
    const u = ((p + 0.5) * scale) / cellPx - 0.5;
    const base = Math.floor(u);
    lo[p] = ((base % cells) + cells) % cells;
    hi[p] = (lo[p]! + 1) % cells;
    t[p] = u - base;
  }
  return { lo, hi, t };
}

/** Lookup between block centres, clamped at the image border. */
function clampedLerp(length: number, blockPx: number, blocks: number): Lerp {
  const lo = new Int32Array(length);
  const hi = new Int32Array(length);
  const t = new Float32Array(length);
  for (let p = 0; p < length; p++) {
    const u = Math.min(Math.max((p + 0.5) / blockPx - 0.5, 0), blocks - 1);
    const base = Math.min(Math.floor(u), blocks - 1);
    lo[p] = base;
    hi[p] = Math.min(base + 1, blocks - 1);
    t[p] = u - base;
  }
  return { lo, hi, t };
}

/**
 * Texture mask per block: gain = clamp(sqrt((activity + offset) / reference), min, max), where
 * activity is the mean absolute luma difference to the left and upper neighbours. Busy areas hide
 * a stronger mark; flat sky gets less (a square root keeps the range moderate).
 */
function blockMask(image: RawImage, blockPx: number, params: WatermarkParams): { gains: Float32Array; cols: number; rows: number } {
  const { width, height, data } = image;
  const cols = Math.ceil(width / blockPx);
  const rows = Math.ceil(height / blockPx);
  const activity = new Float64Array(cols * rows);
  const counts = new Float64Array(cols * rows);
  let previous = new Float32Array(width);
  let current = new Float32Array(width);
  for (let y = 0; y < height; y++) {
    let p = y * width * 3;
    for (let x = 0; x < width; x++, p += 3) current[x] = LUMA_R * data[p]! + LUMA_G * data[p + 1]! + LUMA_B * data[p + 2]!;
    const blockRow = Math.floor(y / blockPx) * cols;
    for (let x = 1; x < width; x++) {
      const v = current[x]!;
      const d = Math.abs(v - current[x - 1]!) + (y > 0 ? Math.abs(v - previous[x]!) : 0);
      const b = blockRow + Math.floor(x / blockPx);
      activity[b]! += d;
      counts[b]! += 1;
    }
    const swap = previous;
    previous = current;
    current = swap;
  }
  const gains = new Float32Array(cols * rows);
  for (let b = 0; b < gains.length; b++) {
    const a = counts[b]! > 0 ? activity[b]! / counts[b]! : 0;
    const gain = Math.sqrt((a + params.maskActivityOffset) / params.maskReferenceActivity);
    gains[b] = Math.min(params.maskMaxGain, Math.max(params.maskMinGain, gain));
  }
  return { gains, cols, rows };
}

/** Returns a new image with the mark for `chips` (tileCells² values of ±1) added. */
export function embedChips(image: RawImage, chips: Float32Array, params: WatermarkParams): RawImage {
  const { width, height, data } = image;
  const cells = params.tileCells;
  const working = workingSize(width, height, params.workingShortSide);
  const scaleX = working.width / width;
  const scaleY = working.height / height;
  const blockPx = Math.max(2, Math.round(params.cellPx / Math.max(scaleX, scaleY)));
  const mask = blockMask(image, blockPx, params);

  let maskSquare = 0;
  for (const g of mask.gains) maskSquare += g * g;
  maskSquare /= mask.gains.length;
  // PSNR = 10·log10(255² / MSE); the same delta on all three channels makes the RGB MSE equal to the luma MSE.
  const targetRms = 255 / Math.pow(10, params.targetPsnrDb / 20);
  const amplitude = targetRms / Math.sqrt(maskSquare * bilinearMeanSquare(chips, cells));

  const cellX = periodicLerp(width, scaleX, params.cellPx, cells);
  const cellY = periodicLerp(height, scaleY, params.cellPx, cells);
  const blockX = clampedLerp(width, blockPx, mask.cols);
  const blockY = clampedLerp(height, blockPx, mask.rows);
  const patternRow = new Float32Array(cells);
  const maskRow = new Float32Array(mask.cols);
  const out = new Uint8Array(data.length);
  // Uint8ClampedArray stores round-half-to-even of the clamped value: the 8-bit rounding we want.
  const clamped = new Uint8ClampedArray(out.buffer, out.byteOffset, out.length);

  for (let y = 0; y < height; y++) {
    const rowLo = cellY.lo[y]! * cells;
    const rowHi = cellY.hi[y]! * cells;
    const ty = cellY.t[y]!;
    for (let c = 0; c < cells; c++) patternRow[c] = amplitude * (chips[rowLo + c]! + ty * (chips[rowHi + c]! - chips[rowLo + c]!));
    const mLo = blockY.lo[y]! * mask.cols;
    const mHi = blockY.hi[y]! * mask.cols;
    const my = blockY.t[y]!;
    for (let c = 0; c < mask.cols; c++) maskRow[c] = mask.gains[mLo + c]! + my * (mask.gains[mHi + c]! - mask.gains[mLo + c]!);
    let p = y * width * 3;
    for (let x = 0; x < width; x++, p += 3) {
      const a = patternRow[cellX.lo[x]!]!;
      const pattern = a + cellX.t[x]! * (patternRow[cellX.hi[x]!]! - a);
      const b = maskRow[blockX.lo[x]!]!;
      const delta = pattern * (b + blockX.t[x]! * (maskRow[blockX.hi[x]!]! - b));
      clamped[p] = data[p]! + delta;
      clamped[p + 1] = data[p + 1]! + delta;
      clamped[p + 2] = data[p + 2]! + delta;
    }
  }
  return { width, height, data: out };
}
