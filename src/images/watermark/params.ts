/**
 * Every tunable of the mark in one place, with where its value comes from. The defaults were chosen
 * with bench/watermark.ts (numbers in docs/watermark.md). Changing the key or any geometry value
 * (workingShortSide, cellPx, tileCells, pilotCells) makes marks made before undetectable: treat
 * them as part of the format.
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
  /** PSNR the embedder spends (dB over RGB, before 8-bit rounding); flat pictures stay above it. */
  targetPsnrDb: number;
  /** Peak mark amplitude (8-bit levels) allowed where the picture is flat. */
  flatPeakLevels: number;
  /** Extra peak amplitude per level/pixel of local luma activity above activityFloor (texture hides the mark). */
  texturePeakSlope: number;
  /**
   * Activity (mean |Δx|+|Δy| luma, levels/pixel) that does not count as texture: 8-bit rounding and
   * faint grain (σ ≈ 1 at full resolution) alone give about 0.7 to 1.5 on the working grid and hide nothing.
   */
  activityFloor: number;
  /** Upper bound of the peak amplitude anywhere (levels). */
  maxPeakLevels: number;
  /** Scale each coded bit's cells by how much the picture works against it (informed-coding.ts). */
  informedCoding: boolean;
  /** Bounds of those per-bit gains (1 = plain spread spectrum). */
  informedMinGain: number;
  informedMaxGain: number;
  /** Radius (working pixels) of the box mean subtracted from luma to remove image content. */
  whitenRadius: number;
  /** Radius (working pixels) of the local |residual| mean used to normalise the residual. */
  normaliseRadius: number;
  /** Floor of that mean (levels), so flat areas are not amplified into pure noise. */
  normaliseFloor: number;
  /** Fold-spectrum whitening floor, as a multiple of the mean magnitude (smaller = closer to phase-only). */
  spectralFloor: number;
  /** Tile-period scale factors searched (1 = no crop; 1/√0.8 ≈ 1.118 = central 80 %-area crop; 2 = 25 %). */
  minScale: number;
  maxScale: number;
  /** Pilot-correlation z-score above which the first try (scale 1) is decoded before any scale search. */
  fastPathZ: number;
  /** Pilot z-score required, together with a valid CRC, to report `detected`. */
  detectMinZ: number;
}

export const DEFAULT_PARAMS: Readonly<WatermarkParams> = {
  key: 'qwen-image-server/watermark/v1',
  // 1024×768 → a 512×384 grid, so a 0.5× downscale lands exactly on it; 8-pixel cells at 1024×768
  // sit at the scale JPEG/WebP keep and a 0.5× resize does not blur away.
  workingShortSide: 384,
  cellPx: 4,
  // 128-pixel tile: 12 copies in a 4:3 picture, one still whole in a 25 %-area crop.
  tileCells: 32,
  // 192 of 1024 cells: enough for the offset search (z ≈ 12 median), the rest carries data. 256
  // found the offset more often on the busiest textures but lost more bits after WebP on flat ones.
  pilotCells: 192,
  // 2 bins per cell: 4 per cell made no difference in detections and costs 4× in FFTs.
  binsPerCell: 2,
  // 1 dB above the 40 dB requirement for margin (8-bit rounding, clipping at 0 and 255).
  targetPsnrDb: 41,
  // ±1 level in flat sky is about the visibility threshold of an 8-pixel blotch pattern; 1.5
  // showed visible mottling on smooth gradients (docs/watermark.md).
  flatPeakLevels: 1,
  texturePeakSlope: 0.5,
  activityFloor: 1,
  maxPeakLevels: 10,
  // [0.7, 1.5]: wider bounds ([0.3, 3]) over-fit the unattacked picture and lost more after JPEG and crops.
  informedCoding: true,
  informedMinGain: 0.7,
  informedMaxGain: 1.5,
  // Radius 4 (a 9×9 mean) keeps most of the 4-pixel-cell pattern; radius 1 lost half the
  // detections on fine-grain textures.
  whitenRadius: 4,
  normaliseRadius: 4,
  normaliseFloor: 0.5,
  // 0.5: stripes and gratings no longer hide the mark; 0.1–3 all behaved about the same elsewhere.
  spectralFloor: 0.5,
  minScale: 0.9,
  maxScale: 2.4,
  fastPathZ: 8,
  // Unmarked images: median z 4.3, p99 5.1 over 1000 trials, and each CRC check still has to pass
  // 2^-16 (docs/watermark.md, false positives).
  detectMinZ: 5,
};
