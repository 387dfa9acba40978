/**
 * Finds the tiled mark: whiten the working-grid luma, estimate the tile period (scale) from the
 * residual's autocorrelation, fold the residual modulo that period into one tile, find the tile's
 * offset (translation) by FFT correlation with the pilot pattern, then read the data cells and run
 * the Viterbi decoder. A valid CRC plus a strong pilot correlation means "detected".
 */
import type { RawImage } from '../../domain/types.ts';
import type { WatermarkDetection, WatermarkPayload } from '../../domain/ports.ts';
import { viterbiDecode } from './convolutional-code.ts';
import { Fft2d } from './fft.ts';
import { decodePayload, MESSAGE_BITS, PAYLOAD_BITS } from './payload.ts';
import type { WatermarkParams } from './params.ts';
import { boxMean, cyclicBoxMean } from './planes.ts';
import type { TileLayout } from './tile-layout.ts';
import { resampleLuma, workingSize } from './working-luma.ts';

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

export interface Analysis {
  detection: WatermarkDetection;
  /** Best-guess payload bits (48) from the strongest candidate, even when not detected. */
  payloadBits: Uint8Array | null;
  /** Pilot correlation z-score of the strongest candidate. */
  syncZ: number;
  /** Tile-period scale of the strongest candidate (1 = as embedded, relative to the working grid). */
  scale: number;
  /** Candidates whose bits were decoded (each is one chance for a false CRC match). */
  decodeAttempts: number;
  /** Fold-and-correlate evaluations made. */
  evaluations: number;
}

/** Scale steps tried around each autocorrelation estimate (relative). */
const REFINE_STEPS = [-0.006, -0.003, 0.003, 0.006] as const;
/** Autocorrelation peaks looked at. */
const SCALE_CANDIDATES = 6;
/** Of those, how many are refined. */
const REFINED_CANDIDATES = 2;
/** z at which confidence reaches 1. */
const FULL_CONFIDENCE_Z = 12;
/** Pilot z typical of unmarked images (max of ~4096 near-Gaussian correlations). */
const NULL_Z = 3.5;

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
export function workingResidual(image: RawImage, params: WatermarkParams): { width: number; height: number; data: Float32Array } {
  const size = workingSize(image.width, image.height, params.workingShortSide);
  const luma = resampleLuma(image, size.width, size.height);
  const { width, height } = luma;
  const mean = boxMean(luma.data, width, height, params.whitenRadius);
  const residual = new Float32Array(width * height);
  const magnitude = new Float32Array(width * height);
  for (let i = 0; i < residual.length; i++) {
    const r = luma.data[i]! - mean[i]!;
    residual[i] = r;
    magnitude[i] = Math.abs(r);
  }
  const spread = boxMean(magnitude, width, height, params.normaliseRadius);
  const clip = (params as unknown as { clip?: number }).clip ?? 1e9;
  for (let i = 0; i < residual.length; i++) {
    const v = residual[i]! / (spread[i]! + params.normaliseFloor);
    residual[i] = v > clip ? clip : v < -clip ? -clip : v;
  }
  return { width, height, data: residual };
}

interface Evaluation {
  scale: number;
  z: number;
  shiftX: number;
  shiftY: number;
  /** Notched spectrum of the fold, kept for decoding. */
  foldRe: Float64Array;
  foldIm: Float64Array;
}

interface Residual {
  width: number;
  height: number;
  data: Float32Array;
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

/** Folds the residual with tile period `scale`·period and correlates with the pilots. */
export function evaluateScale(residual: Residual, scale: number, tables: DetectorTables, params: WatermarkParams): Evaluation {
  const { bins, fft } = tables;
  const period = params.cellPx * params.tileCells * scale;
  const { width, height, data } = residual;
  const bx = foldBins(width, period, bins);
  const by = foldBins(height, period, bins);
  const sums = new Float64Array(bins * bins);
  for (let y = 0; y < height; y++) {
    const row = by.index[y]! * bins;
    const base = y * width;
    for (let x = 0; x < width; x++) sums[row + bx.index[x]!]! += data[base + x]!;
  }
  const foldRe = new Float64Array(bins * bins);
  const foldIm = new Float64Array(bins * bins);
  for (let y = 0; y < bins; y++) {
    for (let x = 0; x < bins; x++) {
      const count = by.counts[y]! * bx.counts[x]!;
      foldRe[y * bins + x] = count > 0 ? sums[y * bins + x]! / count : 0;
    }
  }
  fft.forward(foldRe, foldIm);
  let meanMagnitude = 0;
  for (let i = 0; i < bins * bins; i++) {
    if (tables.notch[i]) {
      foldRe[i] = 0;
      foldIm[i] = 0;
    }
    meanMagnitude += Math.hypot(foldRe[i]!, foldIm[i]!);
  }
  meanMagnitude /= bins * bins;
  // Partial spectral whitening: a strong periodic texture (stripes, fabric) piles its energy into a
  // few frequencies of the fold; dividing by the magnitude flattens it while the mark, spread
  // evenly over all frequencies, keeps its phase. The floor stops near-empty bins from being amplified.
  {
    const floor = params.spectralFloor * meanMagnitude;
    for (let i = 0; i < bins * bins; i++) {
      const g = 1 / (Math.hypot(foldRe[i]!, foldIm[i]!) + floor);
      foldRe[i]! *= g;
      foldIm[i]! *= g;
    }
  }
  const re = new Float64Array(bins * bins);
  const im = new Float64Array(bins * bins);
  for (let i = 0; i < bins * bins; i++) {
    re[i] = foldRe[i]! * tables.pilotRe[i]! - foldIm[i]! * tables.pilotIm[i]!;
    im[i] = foldRe[i]! * tables.pilotIm[i]! + foldIm[i]! * tables.pilotRe[i]!;
  }
  fft.inverse(re, im);
  let best = 0;
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < bins * bins; i++) {
    const v = re[i]!;
    sum += v;
    sumSquares += v * v;
    if (v > re[best]!) best = i;
  }
  const n = bins * bins;
  const mean = sum / n;
  const std = Math.sqrt(Math.max(1e-30, sumSquares / n - mean * mean));
  return { scale, z: (re[best]! - mean) / std, shiftX: best % bins, shiftY: Math.floor(best / bins), foldRe, foldIm };
}

/** Soft values of the coded bits at an evaluation's offset, then Viterbi. Returns the 64 message bits. */
function decodeEvaluation(evaluation: Evaluation, tables: DetectorTables, layout: TileLayout, params: WatermarkParams): Uint8Array {
  const { bins, fft } = tables;
  const re = new Float64Array(bins * bins);
  const im = new Float64Array(bins * bins);
  for (let i = 0; i < bins * bins; i++) {
    re[i] = evaluation.foldRe[i]! * tables.bumpRe[i]! - evaluation.foldIm[i]! * tables.bumpIm[i]!;
    im[i] = evaluation.foldRe[i]! * tables.bumpIm[i]! + evaluation.foldIm[i]! * tables.bumpRe[i]!;
  }
  fft.inverse(re, im);
  const soft = new Float64Array(layout.codedBits);
  const cells = params.tileCells;
  const step = params.binsPerCell;
  for (let k = 0; k < layout.dataCells.length; k++) {
    const cell = layout.dataCells[k]!;
    const y = (Math.floor(cell / cells) * step + evaluation.shiftY) % bins;
    const x = ((cell % cells) * step + evaluation.shiftX) % bins;
    soft[layout.dataBits[k]!]! += layout.dataChips[k]! * re[y * bins + x]!;
  }
  return viterbiDecode(soft, MESSAGE_BITS);
}

/**
 * Candidate tile-period scales. A mark repeated every T pixels puts a comb of lines at multiples of
 * 1/T into the power spectrum of every row and every column of the residual. We average the row
 * spectra (and the column spectra), whiten them by their running median so that a picture's own
 * stripes or gratings (single strong lines) cannot dominate, and read the autocorrelation off the
 * whitened spectrum: its peaks are the periods present in both directions. Computed on a 2×2-averaged
 * residual for speed.
 */
export function autocorrelationScales(residual: Residual, params: WatermarkParams): number[] {
  const w = Math.floor(residual.width / 2);
  const h = Math.floor(residual.height / 2);
  const src = residual.data;
  const sw = residual.width;
  const half = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 2 * y * sw + 2 * x;
      half[y * w + x] = (src[i]! + src[i + 1]! + src[i + sw]! + src[i + sw + 1]!) / 4;
    }
  }
  const period = (params.cellPx * params.tileCells) / 2;
  const lagMin = Math.floor(params.minScale * period) - 1;
  const lagMax = Math.ceil(params.maxScale * period) + 1;
  if (lagMax + 8 > Math.min(w, h)) return [];
  const scoreX = whitenedAutocorrelation(half, w, h, 1, w, lagMin, lagMax);
  const scoreY = whitenedAutocorrelation(half, h, w, w, 1, lagMin, lagMax);
  const score = new Float64Array(lagMax + 1);
  for (let lag = lagMin; lag <= lagMax; lag++) score[lag] = scoreX[lag]! + scoreY[lag]!;
  const peaks: Array<{ lag: number; height: number }> = [];
  for (let lag = lagMin + 1; lag < lagMax; lag++) {
    const s = score[lag]!;
    const left = score[lag - 1]!;
    const right = score[lag + 1]!;
    if (!(s > left && s >= right)) continue;
    const curvature = left - 2 * s + right;
    const offset = curvature < 0 ? (0.5 * (left - right)) / curvature : 0;
    const refined = lag + Math.max(-0.5, Math.min(0.5, offset));
    const scale = refined / period;
    if (scale >= params.minScale && scale <= params.maxScale) peaks.push({ lag: refined, height: s });
  }
  peaks.sort((a, b) => b.height - a.height);
  return peaks.slice(0, SCALE_CANDIDATES).map((p) => p.lag / period);
}

/** Running-median window (frequency bins each side) and clip for the spectrum whitening. */
const MEDIAN_HALF_WINDOW = 12;
const WHITENED_CLIP = 4;

/**
 * Autocorrelation at lags lagMin..lagMax of `count` sequences of `length` samples (sample i of
 * sequence j at data[j * seqStride + i * step]), from their median-whitened mean power spectrum.
 */
function whitenedAutocorrelation(
  data: Float64Array,
  length: number,
  count: number,
  step: number,
  seqStride: number,
  lagMin: number,
  lagMax: number,
): Float64Array {
  let n = 1;
  while (n < 2 * length) n <<= 1;
  const fft = new Fft2d(n);
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  const power = new Float64Array(n / 2 + 1);
  // Two real sequences per complex FFT: Σ|A(k)|² + |B(k)|² = (|Z(k)|² + |Z(n-k)|²) / 2 for Z = A + iB.
  for (let j = 0; j < count; j += 2) {
    re.fill(0);
    im.fill(0);
    for (let i = 0; i < length; i++) {
      re[i] = data[j * seqStride + i * step]!;
      if (j + 1 < count) im[i] = data[(j + 1) * seqStride + i * step]!;
    }
    fft.forward1d(re, im);
    for (let k = 0; k <= n / 2; k++) {
      const m = (n - k) % n;
      power[k]! += (re[k]! * re[k]! + im[k]! * im[k]! + re[m]! * re[m]! + im[m]! * im[m]!) / 2;
    }
  }
  const bins = n / 2 + 1;
  const whitened = new Float64Array(bins);
  const window: number[] = [];
  let mean = 0;
  for (let k = 1; k < bins; k++) {
    window.length = 0;
    for (let d = Math.max(1, k - MEDIAN_HALF_WINDOW); d <= Math.min(bins - 1, k + MEDIAN_HALF_WINDOW); d++) window.push(power[d]!);
    window.sort((a, b) => a - b);
    const median = window[window.length >> 1]!;
    whitened[k] = median > 0 ? Math.min(WHITENED_CLIP, power[k]! / median) : 0;
    mean += whitened[k]!;
  }
  mean /= bins - 1;
  const out = new Float64Array(lagMax + 1);
  for (let lag = lagMin; lag <= lagMax; lag++) {
    let sum = 0;
    for (let k = 1; k < bins; k++) sum += (whitened[k]! - mean) * Math.cos((2 * Math.PI * k * lag) / n);
    out[lag] = sum;
  }
  return out;
}

function confidenceFor(z: number, detected: boolean, params: WatermarkParams): number {
  if (detected) return 0.5 + 0.5 * Math.min(1, Math.max(0, (z - params.detectMinZ) / (FULL_CONFIDENCE_Z - params.detectMinZ)));
  return 0.49 * Math.min(1, Math.max(0, (z - NULL_Z) / (params.detectMinZ - NULL_Z)));
}

export function analyzeImage(image: RawImage, layout: TileLayout, tables: DetectorTables, params: WatermarkParams): Analysis {
  const empty: Analysis = {
    detection: { detected: false, confidence: 0, payload: null },
    payloadBits: null,
    syncZ: 0,
    scale: 1,
    decodeAttempts: 0,
    evaluations: 0,
  };
  // Below one tile on the working grid's short side there is nothing to fold.
  if (Math.min(image.width, image.height) < 32) return empty;
  const residual = workingResidual(image, params);
  const evaluations: Evaluation[] = [];
  let decodeAttempts = 0;
  let bestBits: Uint8Array | null = null;

  const tryDecode = (evaluation: Evaluation): WatermarkPayload | null => {
    decodeAttempts++;
    const bits = decodeEvaluation(evaluation, tables, layout, params);
    if (bestBits === null) bestBits = bits.slice(0, PAYLOAD_BITS);
    return evaluation.z >= params.detectMinZ ? decodePayload(bits) : null;
  };
  const finish = (evaluation: Evaluation, payload: WatermarkPayload | null): Analysis => ({
    detection: { detected: payload !== null, confidence: confidenceFor(evaluation.z, payload !== null, params), payload },
    payloadBits: payload !== null ? decodeBitsOf(evaluation) : bestBits,
    syncZ: evaluation.z,
    scale: evaluation.scale,
    decodeAttempts,
    evaluations: evaluations.length,
  });
  const decodeBitsOf = (evaluation: Evaluation): Uint8Array =>
    decodeEvaluation(evaluation, tables, layout, params).slice(0, PAYLOAD_BITS);

  // Fast path: no crop means the period is exactly the embedded one.
  const unit = evaluateScale(residual, 1, tables, params);
  evaluations.push(unit);
  if (unit.z >= params.fastPathZ) {
    const payload = tryDecode(unit);
    if (payload) return finish(unit, payload);
  }
  // Every autocorrelation peak gets one look; the two most promising are refined around their estimate.
  const coarse = autocorrelationScales(residual, params).map((scale) => evaluateScale(residual, scale, tables, params));
  evaluations.push(...coarse);
  coarse.sort((a, b) => b.z - a.z);
  for (const candidate of coarse.slice(0, REFINED_CANDIDATES)) {
    for (const step of REFINE_STEPS) evaluations.push(evaluateScale(residual, candidate.scale * (1 + step), tables, params));
  }
  evaluations.sort((a, b) => b.z - a.z);
  const best = evaluations[0]!;
  bestBits = null;
  for (const evaluation of evaluations.slice(0, 2)) {
    if (evaluation !== best && evaluation.z < params.decodeMinZ) break;
    if (evaluation === unit && unit.z >= params.fastPathZ) continue;
    const payload = tryDecode(evaluation);
    if (payload) return finish(evaluation, payload);
  }
  return finish(best, null);
}
