/**
 * Every tunable of the mark in one place, with where its value comes from. The defaults were chosen
 * with bench/watermark.ts (numbers in docs/watermark.md); changing any geometry value makes marks
 * from the old value undetectable, so treat them as part of the format.
 */
export interface WatermarkParams {
  /** Seeds the pilot/chip/interleaver patterns. Marks made with one key are invisible to another. */
  key: string;
  /** Short side of the working grid, in working pixels; images are treated as if resized to it. */
  workingShortSide: number;
  /** Side of one mark cell on the working grid (working pixels). */
  cellPx: number;
  /** Cells per tile side; the tile period is cellPx × tileCells working pixels. */
  tileCells: number;
  /** Number of pilot cells per tile (multiple of 8). */
  pilotCells: number;
  /** Fold-grid samples per cell side in the detector. */
  binsPerCell: number;
  /** PSNR the embedder aims for (dB, over RGB, before 8-bit rounding). */
  targetPsnrDb: number;
  /** Mean |horizontal|+|vertical| luma difference (levels/pixel) where the mask gain is 1. */
  maskReferenceActivity: number;
  /** Added to activity before the square root so flat areas keep some mark (levels/pixel). */
  maskActivityOffset: number;
  maskMinGain: number;
  maskMaxGain: number;
  /** Radius (working pixels) of the box mean subtracted from luma to remove image content. */
  whitenRadius: number;
  /** Radius (working pixels) of the local |residual| mean used to normalise the residual. */
  normaliseRadius: number;
  /** Floor of that mean (levels), so flat areas are not amplified into pure noise. */
  normaliseFloor: number;
  /** Fold-spectrum whitening floor, as a multiple of the mean magnitude (smaller = closer to phase-only). */
  spectralFloor: number;
  /** Tile-period scale factors searched (1 = no crop; 1/√0.8 ≈ 1.118 = central 80%-area crop). */
  minScale: number;
  maxScale: number;
  /** Pilot-correlation z-score a candidate needs before its bits are decoded at all. */
  decodeMinZ: number;
  /** Pilot-correlation z-score above which the first try (scale 1) is trusted without a scale search. */
  fastPathZ: number;
  /** Pilot z-score required, together with a valid CRC, to report `detected`. */
  detectMinZ: number;
}

export const DEFAULT_PARAMS: Readonly<WatermarkParams> = {
  key: 'qwen-image-server/watermark/v1',
  workingShortSide: 384,
  cellPx: 4,
  tileCells: 32,
  pilotCells: 256,
  binsPerCell: 2,
  targetPsnrDb: 41,
  maskReferenceActivity: 4,
  maskActivityOffset: 1,
  maskMinGain: 0.5,
  maskMaxGain: 2,
  whitenRadius: 4,
  normaliseRadius: 4,
  normaliseFloor: 0.5,
  spectralFloor: 0.5,
  minScale: 0.9,
  maxScale: 1.7,
  decodeMinZ: 4.5,
  fastPathZ: 8,
  detectMinZ: 5,
};
