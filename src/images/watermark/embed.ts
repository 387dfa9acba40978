/**
 * Adds the tiled mark to an image. The mark is the tile's ±1 cell values, bilinearly interpolated
 * between cell centres (a smooth pattern with no block edges), laid on the working grid and mapped
 * back to full resolution, scaled by a per-block amplitude (texture masking under a PSNR budget)
 * and added equally to R, G and B (luma only, which JPEG/WebP chroma subsampling leaves alone).
 */
import type { RawImage } from '../../domain/types.ts';
import type { WatermarkParams } from './params.ts';
import type { LumaPlane } from './working-luma.ts';

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
 * Luma activity per block of the working grid (one block = one cell): the mean absolute difference
 * to the left and upper neighbours, in levels per working pixel. Measured after the working-grid
 * reduction so that pixel-level grain, which hides little of a mark this coarse, counts less than
 * texture at the mark's own scale. Smooth sky with faint grain ≈ 0.7, foliage or gravel 10 to 40.
 */
function blockActivity(luma: LumaPlane, blockPx: number): { activity: Float32Array; cols: number; rows: number } {
  const { width, height, data } = luma;
  const cols = Math.ceil(width / blockPx);
  const rows = Math.ceil(height / blockPx);
  const sums = new Float64Array(cols * rows);
  const counts = new Float64Array(cols * rows);
  for (let y = 1; y < height; y++) {
    const blockRow = Math.floor(y / blockPx) * cols;
    const base = y * width;
    for (let x = 1; x < width; x++) {
      const v = data[base + x]!;
      const b = blockRow + Math.floor(x / blockPx);
      sums[b]! += Math.abs(v - data[base + x - 1]!) + Math.abs(v - data[base + x - width]!);
      counts[b]! += 1;
    }
  }
  const activity = new Float32Array(cols * rows);
  for (let b = 0; b < activity.length; b++) activity[b] = counts[b]! > 0 ? sums[b]! / counts[b]! : 0;
  return { activity, cols, rows };
}

/**
 * Peak mark amplitude (levels, for a unit cell value) per block: one global level, but never above
 * what the block's texture hides, cap = flatPeak + slope·max(0, activity − floor), ≤ maxPeak. The
 * level is found by bisection so that the whole image lands on the target PSNR; when even the
 * largest level stays under that budget (a mostly flat picture), every block sits at its cap and the
 * PSNR comes out above the target. Informed-coding gains (≤ informedMaxGain) multiply on top.
 */
function blockAmplitudes(blocks: { activity: Float32Array; cols: number; rows: number }, patternMeanSquare: number, params: WatermarkParams): Float32Array {
  const { activity, cols, rows } = blocks;
  const raw = new Float32Array(activity.length);
  for (let b = 0; b < raw.length; b++) {
    raw[b] = Math.min(params.maxPeakLevels, params.flatPeakLevels + params.texturePeakSlope * Math.max(0, activity[b]! - params.activityFloor));
  }
  // Each block takes the smallest cap of its 3×3 neighbourhood, so that the amplitude interpolated
  // between block centres never carries a textured block's strength into the flat area next to it.
  const caps = new Float32Array(raw.length);
  for (let by = 0; by < rows; by++) {
    for (let bx = 0; bx < cols; bx++) {
      let m = raw[by * cols + bx]!;
      for (let dy = Math.max(0, by - 1); dy <= Math.min(rows - 1, by + 1); dy++) {
        for (let dx = Math.max(0, bx - 1); dx <= Math.min(cols - 1, bx + 1); dx++) m = Math.min(m, raw[dy * cols + dx]!);
      }
      caps[by * cols + bx] = m;
    }
  }
  // PSNR = 10·log10(255² / MSE); the same delta on R, G and B makes the RGB MSE equal to the luma MSE.
  const targetMse = (255 * 255) / Math.pow(10, params.targetPsnrDb / 10);
  const mseAt = (level: number): number => {
    let sum = 0;
    for (let b = 0; b < caps.length; b++) {
      const a = Math.min(level, caps[b]!);
      sum += a * a;
    }
    return (sum / caps.length) * patternMeanSquare;
  };
  let level = params.maxPeakLevels;
  if (mseAt(level) > targetMse) {
    let lo = 0;
    for (let i = 0; i < 40; i++) {
      const mid = (lo + level) / 2;
      if (mseAt(mid) > targetMse) level = mid;
      else lo = mid;
    }
    level = lo;
  }
  const amplitudes = new Float32Array(caps.length);
  for (let b = 0; b < caps.length; b++) amplitudes[b] = Math.min(level, caps[b]!);
  return amplitudes;
}

/**
 * Returns a new image with the mark for `chips` (tileCells² cell values, ±1 or informed gains)
 * added. `luma` is the image's working-grid luma (working-luma.ts), which fixes the geometry.
 */
export function embedChips(image: RawImage, chips: Float32Array, luma: LumaPlane, params: WatermarkParams): RawImage {
  const { width, height, data } = image;
  const cells = params.tileCells;
  const scaleX = luma.width / width;
  const scaleY = luma.height / height;
  const blocks = blockActivity(luma, params.cellPx);
  const amplitudes = blockAmplitudes(blocks, bilinearMeanSquare(chips, cells), params);

  const cellX = periodicLerp(width, scaleX, params.cellPx, cells);
  const cellY = periodicLerp(height, scaleY, params.cellPx, cells);
  const blockX = clampedLerp(width, params.cellPx / scaleX, blocks.cols);
  const blockY = clampedLerp(height, params.cellPx / scaleY, blocks.rows);
  const patternRow = new Float32Array(cells);
  const amplitudeRow = new Float32Array(blocks.cols);
  const out = new Uint8Array(data.length);
  // Uint8ClampedArray stores round-half-to-even of the clamped value: the 8-bit rounding we want.
  const clamped = new Uint8ClampedArray(out.buffer, out.byteOffset, out.length);

  for (let y = 0; y < height; y++) {
    const rowLo = cellY.lo[y]! * cells;
    const rowHi = cellY.hi[y]! * cells;
    const ty = cellY.t[y]!;
    for (let c = 0; c < cells; c++) patternRow[c] = chips[rowLo + c]! + ty * (chips[rowHi + c]! - chips[rowLo + c]!);
    const mLo = blockY.lo[y]! * blocks.cols;
    const mHi = blockY.hi[y]! * blocks.cols;
    const my = blockY.t[y]!;
    for (let c = 0; c < blocks.cols; c++) amplitudeRow[c] = amplitudes[mLo + c]! + my * (amplitudes[mHi + c]! - amplitudes[mLo + c]!);
    let p = y * width * 3;
    for (let x = 0; x < width; x++, p += 3) {
      const a = patternRow[cellX.lo[x]!]!;
      const pattern = a + cellX.t[x]! * (patternRow[cellX.hi[x]!]! - a);
      const b = amplitudeRow[blockX.lo[x]!]!;
      const delta = pattern * (b + blockX.t[x]! * (amplitudeRow[blockX.hi[x]!]! - b));
      clamped[p] = data[p]! + delta;
      clamped[p + 1] = data[p + 1]! + delta;
      clamped[p + 2] = data[p + 2]! + delta;
    }
  }
  return { width, height, data: out };
}
