/**
 * Finds the tiled mark: whiten the working-grid luma, try the embedded tile period (uncropped
 * images) and the periods the spectral search proposes (cropped ones), fold the residual modulo
 * each period into one tile, find the tile's offset by FFT correlation with the pilot cells, read the
 * data cells and run the Viterbi decoder. A valid CRC plus a strong pilot correlation is "detected".
 */
import type { RawImage } from '../../domain/types.ts';
import type { WatermarkDetection, WatermarkPayload } from '../../domain/ports.ts';
import { viterbiDecode } from './convolutional-code.ts';
import { cellResponses, correlate, foldSpectrum, workingResidual, type DetectorTables, type FoldSpectrum, type Residual } from './fold.ts';
import { decodePayload, MESSAGE_BITS, PAYLOAD_BITS } from './payload.ts';
import type { WatermarkParams } from './params.ts';
import { periodScaleCandidates } from './scale-search.ts';
import type { TileLayout } from './tile-layout.ts';

export interface Analysis {
  detection: WatermarkDetection;
  /** Best-guess payload bits (48) from the strongest candidate, even when not detected. */
  payloadBits: Uint8Array | null;
  /** Pilot correlation z-score of the strongest candidate. */
  syncZ: number;
  /** Tile-period scale of the strongest candidate (1 = as embedded, relative to the working grid). */
  scale: number;
  /** CRC checks made (each is one 2^-16 chance of a false match). */
  decodeAttempts: number;
  /** Fold-and-correlate evaluations made. */
  evaluations: number;
}

/** Scale steps tried around the two best spectral estimates (relative); measured estimate error ≈ 0.3 %. */
const REFINE_STEPS = [-0.006, -0.003, 0.003, 0.006] as const;
const REFINED_CANDIDATES = 2;
/** Strongest candidates whose bits are CRC-checked (scale 1 may add one). */
const CHECKED_CANDIDATES = 2;
/** Smallest short side (pixels) we try: the working grid must hold at least one tile. */
const MIN_SIDE_PX = 64;
/** z at which confidence reaches 1. */
const FULL_CONFIDENCE_Z = 12;
/** Median pilot z of unmarked images (bench/watermark.ts: the best of ~15 × 4096 near-Gaussian correlations). */
const NULL_Z = 4.1;

interface Evaluation {
  scale: number;
  z: number;
  shiftX: number;
  shiftY: number;
  spectrum: FoldSpectrum;
}

/** Folds the residual with tile period `scale` and finds the pilots' best cyclic offset. */
function evaluateScale(residual: Residual, scale: number, tables: DetectorTables, params: WatermarkParams): Evaluation {
  const spectrum = foldSpectrum(residual, scale, tables, params);
  const correlation = correlate(spectrum, tables.pilotRe, tables.pilotIm, tables);
  let best = 0;
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < correlation.length; i++) {
    const v = correlation[i]!;
    sum += v;
    sumSquares += v * v;
    if (v > correlation[best]!) best = i;
  }
  const n = correlation.length;
  const mean = sum / n;
  const std = Math.sqrt(Math.max(1e-30, sumSquares / n - mean * mean));
  return { scale, z: (correlation[best]! - mean) / std, shiftX: best % tables.bins, shiftY: Math.floor(best / tables.bins), spectrum };
}

/** Soft value of every coded bit: Σ chip × matched output over the bit's data cells (> 0 means 1). */
export function codedSoftValues(cells: Float64Array, layout: TileLayout): Float64Array {
  const soft = new Float64Array(layout.codedBits);
  for (let k = 0; k < layout.dataCells.length; k++) soft[layout.dataBits[k]!]! += layout.dataChips[k]! * cells[layout.dataCells[k]!]!;
  return soft;
}

/** The 64 message bits read at an evaluation's offset. */
function decodeEvaluation(evaluation: Evaluation, tables: DetectorTables, layout: TileLayout, params: WatermarkParams): Uint8Array {
  const cells = cellResponses(evaluation.spectrum, evaluation.shiftX, evaluation.shiftY, tables, params);
  return viterbiDecode(codedSoftValues(cells, layout), MESSAGE_BITS);
}

/** ≥ 0.5 exactly when detected; grows with the pilot z-score (see docs/watermark.md). */
function confidenceFor(z: number, detected: boolean, params: WatermarkParams): number {
  if (detected) return 0.5 + 0.5 * Math.min(1, Math.max(0, (z - params.detectMinZ) / (FULL_CONFIDENCE_Z - params.detectMinZ)));
  return 0.49 * Math.min(1, Math.max(0, (z - NULL_Z) / (params.detectMinZ - NULL_Z)));
}

export function analyzeImage(image: RawImage, layout: TileLayout, tables: DetectorTables, params: WatermarkParams): Analysis {
  if (Math.min(image.width, image.height) < MIN_SIDE_PX) {
    return { detection: { detected: false, confidence: 0, payload: null }, payloadBits: null, syncZ: 0, scale: 1, decodeAttempts: 0, evaluations: 0 };
  }
  const residual = workingResidual(image, params);
  const evaluations: Evaluation[] = [];
  const decoded = new Map<Evaluation, Uint8Array>();
  let decodeAttempts = 0;
  const messageOf = (evaluation: Evaluation): Uint8Array => {
    let bits = decoded.get(evaluation);
    if (!bits) {
      bits = decodeEvaluation(evaluation, tables, layout, params);
      decoded.set(evaluation, bits);
    }
    return bits;
  };
  const check = (evaluation: Evaluation): WatermarkPayload | null => {
    if (evaluation.z < params.detectMinZ) return null;
    decodeAttempts++;
    return decodePayload(messageOf(evaluation));
  };
  const result = (evaluation: Evaluation, payload: WatermarkPayload | null): Analysis => ({
    detection: { detected: payload !== null, confidence: confidenceFor(evaluation.z, payload !== null, params), payload },
    payloadBits: messageOf(evaluation).slice(0, PAYLOAD_BITS),
    syncZ: evaluation.z,
    scale: evaluation.scale,
    decodeAttempts,
    evaluations: evaluations.length,
  });

  // Fast path: an uncropped image (resized or not) has exactly the embedded period on the working grid.
  const unit = evaluateScale(residual, 1, tables, params);
  evaluations.push(unit);
  if (unit.z >= params.fastPathZ) {
    const payload = check(unit);
    if (payload) return result(unit, payload);
  }
  // Every spectral period estimate gets one look; the most promising are refined around their estimate.
  const coarse = periodScaleCandidates(residual, params).map((scale) => evaluateScale(residual, scale, tables, params));
  evaluations.push(...coarse);
  coarse.sort((a, b) => b.z - a.z);
  for (const candidate of coarse.slice(0, REFINED_CANDIDATES)) {
    for (const step of REFINE_STEPS) evaluations.push(evaluateScale(residual, candidate.scale * (1 + step), tables, params));
  }
  evaluations.sort((a, b) => b.z - a.z);
  // The strongest alignments, plus scale 1 (resized but not cropped, the common case) unless the
  // fast path already checked it.
  const checked = evaluations.slice(0, CHECKED_CANDIDATES);
  if (!checked.includes(unit) && unit.z < params.fastPathZ) checked.push(unit);
  for (const evaluation of checked) {
    const payload = check(evaluation);
    if (payload) return result(evaluation, payload);
  }
  return result(evaluations[0]!, null);
}
