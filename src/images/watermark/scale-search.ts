/**
 * Tile-period (scale) estimation for cropped images. A mark repeated every T pixels puts a comb of
 * lines at multiples of 1/T into the power spectrum of every row and every column of the residual.
 */
import { Fft2d } from './fft.ts';
import type { Residual } from './fold.ts';
import type { WatermarkParams } from './params.ts';

/** Spectral period estimates followed up (each costs one fold evaluation). */
const SCALE_CANDIDATES = 6;

/**
 * Candidate tile-period scales. A mark repeated every T pixels puts a comb of lines at multiples of
 * 1/T into the power spectrum of every row and every column of the residual. We average the row
 * spectra (and the column spectra), whiten them by their running median so that a picture's own
 * stripes or gratings (single strong lines) cannot dominate, and read the autocorrelation off the
 * whitened spectrum: its peaks are the periods present in both directions. Computed on a 2×2-averaged
 * residual for speed.
 */
export function periodScaleCandidates(residual: Pick<Residual, 'width' | 'height' | 'data'>, params: WatermarkParams): number[] {
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

