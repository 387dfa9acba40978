/**
 * Informed coding: the embedder knows the picture, so it can predict how the picture itself will
 * push each coded bit's soft value at the detector (host interference, the main noise on busy
 * images), and spend more of the fixed energy budget on the bits the picture works against and less
 * on those it already helps. Same idea as "improved spread spectrum" (Malvar & Florêncio, IEEE
 * Trans. Signal Processing 51(4), 2003), done per coded bit with a water-filling gain.
 *
 * The prediction runs the detector's signal path at the embedded geometry (scale 1, offset 0) on the
 * unmarked picture, and on the mark alone through the same, now linear, path (the picture's
 * normaliser and spectral whitening held fixed).
 */
import { codedSoftValues } from './detect.ts';
import { cellResponses, foldSpectrum, residualFromLuma, type DetectorTables } from './fold.ts';
import type { WatermarkParams } from './params.ts';
import { boxMean } from './planes.ts';
import type { TileLayout } from './tile-layout.ts';
import type { LumaPlane } from './working-luma.ts';

/** The bilinear cell pattern at working-pixel centres, exactly as the embedder lays it (embed.ts). */
function renderWorkingMark(chips: Float32Array, width: number, height: number, params: WatermarkParams): Float32Array {
  const cells = params.tileCells;
  const out = new Float32Array(width * height);
  const lo = new Int32Array(width);
  const hi = new Int32Array(width);
  const t = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const u = (x + 0.5) / params.cellPx - 0.5;
    const base = Math.floor(u);
    lo[x] = ((base % cells) + cells) % cells;
    hi[x] = (lo[x]! + 1) % cells;
    t[x] = u - base;
  }
  const row = new Float32Array(cells);
  for (let y = 0; y < height; y++) {
    const v = (y + 0.5) / params.cellPx - 0.5;
    const base = Math.floor(v);
    const r0 = (((base % cells) + cells) % cells) * cells;
    const r1 = ((((base + 1) % cells) + cells) % cells) * cells;
    const ty = v - base;
    for (let c = 0; c < cells; c++) row[c] = chips[r0 + c]! + ty * (chips[r1 + c]! - chips[r0 + c]!);
    for (let x = 0; x < width; x++) out[y * width + x] = row[lo[x]!]! + t[x]! * (row[hi[x]!]! - row[lo[x]!]!);
  }
  return out;
}

/**
 * Gain per coded bit, gain_q ∈ [min, max], with Σ cells_q·gain_q² = Σ cells_q (same energy as all
 * ones), maximising the smallest predicted margin gain_q·mark_q + host_q (water-filling on a level
 * found by bisection).
 */
export function waterFill(markMargin: Float64Array, hostMargin: Float64Array, cellsPerBit: Float64Array, minGain: number, maxGain: number): Float64Array {
  const bits = markMargin.length;
  let budget = 0;
  for (let q = 0; q < bits; q++) budget += cellsPerBit[q]!;
  const gains = new Float64Array(bits);
  const fill = (level: number): number => {
    let energy = 0;
    for (let q = 0; q < bits; q++) {
      const g = markMargin[q]! > 0 ? (level - hostMargin[q]!) / markMargin[q]! : maxGain;
      gains[q] = Math.min(maxGain, Math.max(minGain, g));
      energy += cellsPerBit[q]! * gains[q]! * gains[q]!;
    }
    return energy;
  };
  let lo = Infinity;
  let hi = -Infinity;
  for (let q = 0; q < bits; q++) {
    lo = Math.min(lo, minGain * markMargin[q]! + hostMargin[q]!);
    hi = Math.max(hi, maxGain * markMargin[q]! + hostMargin[q]!);
  }
  if (!(hi > lo)) return gains.fill(1);
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (fill(mid) > budget) hi = mid;
    else lo = mid;
  }
  fill(lo);
  return gains;
}

/** The tile chips with every data cell scaled by its coded bit's informed gain. */
export function informedChips(
  luma: LumaPlane,
  chips: Float32Array,
  coded: Uint8Array,
  layout: TileLayout,
  tables: DetectorTables,
  params: WatermarkParams,
): Float32Array {
  const size = luma;
  const host = residualFromLuma(luma, params);
  const hostSpectrum = foldSpectrum(host, 1, tables, params);
  const hostCells = cellResponses(hostSpectrum, 0, 0, tables, params);

  // The mark alone through the detector's path with the picture's normaliser and whitening fixed.
  const mark = renderWorkingMark(chips, size.width, size.height, params);
  const smooth = boxMean(mark, size.width, size.height, params.whitenRadius);
  for (let i = 0; i < mark.length; i++) mark[i] = (mark[i]! - smooth[i]!) / host.divisor[i]!;
  const markSpectrum = foldSpectrum({ width: size.width, height: size.height, data: mark }, 1, tables, params, hostSpectrum.weights);
  const markCells = cellResponses(markSpectrum, 0, 0, tables, params);

  const hostSoft = codedSoftValues(hostCells, layout);
  const markSoft = codedSoftValues(markCells, layout);
  const cellsPerBit = new Float64Array(layout.codedBits);
  for (let k = 0; k < layout.dataBits.length; k++) cellsPerBit[layout.dataBits[k]!]! += 1;
  // Margins in the direction of the bit being sent: positive helps.
  const sign = (q: number) => (coded[q] ? 1 : -1);
  const markMargin = markSoft.map((v, q) => v * sign(q));
  const hostMargin = hostSoft.map((v, q) => v * sign(q));
  const gains = waterFill(markMargin, hostMargin, cellsPerBit, params.informedMinGain, params.informedMaxGain);

  const out = chips.slice();
  for (let k = 0; k < layout.dataCells.length; k++) out[layout.dataCells[k]!]! *= gains[layout.dataBits[k]!]!;
  return out;
}
