/** The Watermarker port implementation: key-derived tables built once, then embed/detect. */
import type { Watermarker, WatermarkDetection, WatermarkPayload } from '../../domain/ports.ts';
import type { RawImage } from '../../domain/types.ts';
import { codedLength, convolutionalEncode } from './convolutional-code.ts';
import { analyzeImage, type Analysis } from './detect.ts';
import { buildDetectorTables, type DetectorTables } from './fold.ts';
import { embedChips } from './embed.ts';
import { informedChips } from './informed-coding.ts';
import { DEFAULT_PARAMS, type WatermarkParams } from './params.ts';
import { encodePayload, MESSAGE_BITS } from './payload.ts';
import { buildTileLayout, tileChips, type TileLayout } from './tile-layout.ts';
import { resampleLuma, workingSize } from './working-luma.ts';

export type WatermarkOptions = Partial<WatermarkParams>;

/** Below this short side (pixels) the picture holds too little to predict its interference. */
const MIN_INFORMED_SIDE_PX = 64;

/** A Watermarker that can also explain a detection (for the benchmark and the CLI). */
export interface AnalysingWatermarker extends Watermarker {
  readonly params: Readonly<WatermarkParams>;
  analyze(image: RawImage): Analysis;
}

class TiledWatermarker implements AnalysingWatermarker {
  readonly params: Readonly<WatermarkParams>;
  private readonly layout: TileLayout;
  private readonly tables: DetectorTables;

  constructor(params: WatermarkParams) {
    this.params = Object.freeze({ ...params });
    this.layout = buildTileLayout(params.key, params.tileCells, params.pilotCells, codedLength(MESSAGE_BITS));
    this.tables = buildDetectorTables(this.layout, this.params);
  }

  embed(image: RawImage, payload: WatermarkPayload): RawImage {
    if (image.data.length !== image.width * image.height * 3) throw new RangeError('watermark: RawImage data length mismatch');
    const coded = convolutionalEncode(encodePayload(payload));
    const size = workingSize(image.width, image.height, this.params.workingShortSide);
    const luma = resampleLuma(image, size.width, size.height);
    let chips = tileChips(this.layout, coded);
    if (this.params.informedCoding && Math.min(image.width, image.height) >= MIN_INFORMED_SIDE_PX) {
      chips = informedChips(luma, chips, coded, this.layout, this.tables, this.params);
    }
    return embedChips(image, chips, luma, this.params);
  }

  detect(image: RawImage): WatermarkDetection {
    return this.analyze(image).detection;
  }

  analyze(image: RawImage): Analysis {
    if (image.data.length !== image.width * image.height * 3) throw new RangeError('watermark: RawImage data length mismatch');
    return analyzeImage(image, this.layout, this.tables, this.params);
  }
}

export function createWatermarker(options: WatermarkOptions = {}): AnalysingWatermarker {
  return new TiledWatermarker({ ...DEFAULT_PARAMS, ...options });
}
