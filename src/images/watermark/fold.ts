/**
 * The detector's signal path, shared with the embedder's informed coding: working-grid residual,
 * fold of the residual modulo the tile period into one tile, whitened fold spectrum, and the matched
 * filter output for every cell.
 */
import type { RawImage } from '../../domain/types.ts';
import { Fft2d } from './fft.ts';
import type { WatermarkParams } from './params.ts';
import { boxMean, cyclicBoxMean } from './planes.ts';
import type { TileLayout } from './tile-layout.ts';
import { resampleLuma, workingSize, type LumaPlane } from './working-luma.ts';

/** Key-derived spectra, built once per watermarker. */
export interface DetectorTables {
  fft: Fft2d;
  /** Fold-grid side = tileCells × binsPerCell. */
  bins: number;
  /** Conjugate spectrum of the whitened pilot pattern. */
  pilotRe: Float64Array;
  pilotIm: Float64Array;
  /** Conjugate spectrum of one whitened cell bump anchored at bin (0, 0). */
  bumpRe: Float64Array;
  bumpIm: Float64Array;
  /** 1 where a frequency is zeroed: DC and everything that repeats every two cells (JPEG grid). */
  notch: Uint8Array;
}

export function buildDetectorTables(layout: TileLayout, params: WatermarkParams): DetectorTables {
  const cells = params.tileCells;
  const bins = cells * params.binsPerCell;
  const period = cells * params.cellPx;
  const binPx = params.cellPx / params.binsPerCell;
  if (!Number.isInteger(binPx)) throw new RangeError('cellPx must be a multiple of binsPerCell');
  // One cell bump (bilinear interpolation kernel) at working resolution, whitened like the detector does.
  const bump = new Float64Array(period * period);
  const tri = new Float64Array(period);
  for (let p = 0; p < period; p++) {
    let d = (p + 0.5) / params.cellPx - 0.5;
    d -= Math.round(d / cells) * cells;
    tri[p] = Math.max(0, 1 - Math.abs(d));
  }
  for (let y = 0; y < period; y++) for (let x = 0; x < period; x++) bump[y * period + x] = tri[x]! * tri[y]!;
  const smooth = cyclicBoxMean(bump, period, params.whitenRadius);
  const bumpBins = new Float64Array(bins * bins);
  for (let y = 0; y < period; y++) {
    for (let x = 0; x < period; x++) {
      bumpBins[Math.floor(y / binPx) * bins + Math.floor(x / binPx)]! += (bump[y * period + x]! - smooth[y * period + x]!) / (binPx * binPx);
    }
  }
  const fft = new Fft2d(bins);
  const bumpRe = bumpBins;
  const bumpIm = new Float64Array(bins * bins);
  fft.forward(bumpRe, bumpIm);
  const pilotRe = new Float64Array(bins * bins);
  const pilotIm = new Float64Array(bins * bins);
  for (let k = 0; k < layout.pilotCells.length; k++) {
    const cell = layout.pilotCells[k]!;
    const row = Math.floor(cell / cells);
    const col = cell % cells;
    pilotRe[row * params.binsPerCell * bins + col * params.binsPerCell] = layout.pilotChips[k]!;
  }
  fft.forward(pilotRe, pilotIm);
  for (let i = 0; i < bins * bins; i++) {
    const re = pilotRe[i]! * bumpRe[i]! - pilotIm[i]! * bumpIm[i]!;
    const im = pilotRe[i]! * bumpIm[i]! + pilotIm[i]! * bumpRe[i]!;
    pilotRe[i] = re;
    pilotIm[i] = -im;
    bumpIm[i] = -bumpIm[i]!;
  }
  const notch = new Uint8Array(bins * bins);
  const twoCells = bins / (2 * params.binsPerCell);
  for (let ky = 0; ky < bins; ky += twoCells) for (let kx = 0; kx < bins; kx += twoCells) notch[ky * bins + kx] = 1;
  return { fft, bins, pilotRe, pilotIm, bumpRe, bumpIm, notch };
}

/** Whitened, locally normalised residual on the working grid. */
export interface Residual {
  width: number;
  height: number;
  data: Float32Array;
  /** The divisor each residual sample was normalised by (levels): local mean |residual| + floor. */
  divisor: Float32Array;
}

/**
 * Luma minus its local mean (removes the picture's smooth content), divided by the local mean
 * absolute residual (so that busy areas, where the picture itself dominates, weigh less).
 */
export function residualFromLuma(luma: LumaPlane, params: WatermarkParams): Residual {
  const { width, height } = luma;
  const mean = boxMean(luma.data, width, height, params.whitenRadius);
  const data = new Float32Array(width * height);
  const magnitude = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) {
    const r = luma.data[i]! - mean[i]!;
    data[i] = r;
    magnitude[i] = Math.abs(r);
  }
  const divisor = boxMean(magnitude, width, height, params.normaliseRadius);
  for (let i = 0; i < data.length; i++) {
    divisor[i]! += params.normaliseFloor;
    data[i]! /= divisor[i]!;
  }
  return { width, height, data, divisor };
}

export function workingResidual(image: RawImage, params: WatermarkParams): Residual {
  const size = workingSize(image.width, image.height, params.workingShortSide);
  return residualFromLuma(resampleLuma(image, size.width, size.height), params);
}

function foldBins(length: number, period: number, bins: number): { index: Int32Array; counts: Float64Array } {
  const index = new Int32Array(length);
  const counts = new Float64Array(bins);
  for (let p = 0; p < length; p++) {
    const t = (p + 0.5) / period;
    const b = Math.min(bins - 1, Math.floor((t - Math.floor(t)) * bins));
    index[p] = b;
    counts[b]! += 1;
  }
  return { index, counts };
}

export interface FoldSpectrum {
  re: Float64Array;
  im: Float64Array;
  /** Per-frequency whitening gains that were applied. */
  weights: Float64Array;
}

/**
 * Averages the residual over all tile copies (tile period `scale`·cellPx·tileCells working pixels),
 * then returns the fold's spectrum with the JPEG-grid frequencies notched out and partially
 * whitened. `weights` reuses another fold's whitening (the embedder's linearised mark response).
 */
export function foldSpectrum(
  plane: { width: number; height: number; data: Float32Array },
  scale: number,
  tables: DetectorTables,
  params: WatermarkParams,
  weights?: Float64Array,
): FoldSpectrum {
  const { bins, fft } = tables;
  const n = bins * bins;
  const period = params.cellPx * params.tileCells * scale;
  const { width, height, data } = plane;
  const bx = foldBins(width, period, bins);
  const by = foldBins(height, period, bins);
  const sums = new Float64Array(n);
  for (let y = 0; y < height; y++) {
    const row = by.index[y]! * bins;
    const base = y * width;
    for (let x = 0; x < width; x++) sums[row + bx.index[x]!]! += data[base + x]!;
  }
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  for (let y = 0; y < bins; y++) {
    for (let x = 0; x < bins; x++) {
      const count = by.counts[y]! * bx.counts[x]!;
      re[y * bins + x] = count > 0 ? sums[y * bins + x]! / count : 0;
    }
  }
  fft.forward(re, im);
  for (let i = 0; i < n; i++) {
    if (tables.notch[i]) {
      re[i] = 0;
      im[i] = 0;
    }
  }
  // Partial spectral whitening: a strong periodic texture (stripes, fabric) piles its energy into a
  // few frequencies of the fold; dividing by the magnitude flattens it while the mark, spread evenly
  // over all frequencies, keeps its phase. The floor stops near-empty bins from being amplified.
  let gains = weights;
  if (!gains) {
    gains = new Float64Array(n);
    let meanMagnitude = 0;
    for (let i = 0; i < n; i++) meanMagnitude += Math.hypot(re[i]!, im[i]!);
    const floor = (params.spectralFloor * meanMagnitude) / n;
    for (let i = 0; i < n; i++) gains[i] = 1 / (Math.hypot(re[i]!, im[i]!) + floor);
  }
  for (let i = 0; i < n; i++) {
    re[i]! *= gains[i]!;
    im[i]! *= gains[i]!;
  }
  return { re, im, weights: gains };
}

/** Cross-correlation of the fold with a template spectrum (already conjugated): one value per cyclic shift. */
export function correlate(spectrum: FoldSpectrum, templateRe: Float64Array, templateIm: Float64Array, tables: DetectorTables): Float64Array {
  const n = tables.bins * tables.bins;
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    re[i] = spectrum.re[i]! * templateRe[i]! - spectrum.im[i]! * templateIm[i]!;
    im[i] = spectrum.re[i]! * templateIm[i]! + spectrum.im[i]! * templateRe[i]!;
  }
  tables.fft.inverse(re, im);
  return re;
}

/** Matched-filter output of every tile cell (row-major, tileCells²) when the tile sits at (shiftX, shiftY) bins. */
export function cellResponses(spectrum: FoldSpectrum, shiftX: number, shiftY: number, tables: DetectorTables, params: WatermarkParams): Float64Array {
  const matched = correlate(spectrum, tables.bumpRe, tables.bumpIm, tables);
  const { bins } = tables;
  const cells = params.tileCells;
  const step = params.binsPerCell;
  const out = new Float64Array(cells * cells);
  for (let row = 0; row < cells; row++) {
    const y = (row * step + shiftY) % bins;
    for (let col = 0; col < cells; col++) out[row * cells + col] = matched[y * bins + ((col * step + shiftX) % bins)]!;
  }
  return out;
}
