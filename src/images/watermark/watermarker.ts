/** The Watermarker port implementation: key-derived tables built once, then embed/detect. */
import type { Watermarker, WatermarkDetection, WatermarkPayload } from '../../domain/ports.ts';
import type { RawImage } from '../../domain/types.ts';
import { codedLength, convolutionalEncode } from './convolutional-code.ts';
import { analyzeImage, buildDetectorTables, type Analysis, type DetectorTables } from './detect.ts';
import { embedChips } from './embed.ts';
import { DEFAULT_PARAMS, type WatermarkParams } from './params.ts';
import { encodePayload, MESSAGE_BITS } from './payload.ts';
import { buildTileLayout, tileChips, type TileLayout } from './tile-layout.ts';

export type WatermarkOptions = Partial<WatermarkParams>;

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
    const chips = tileChips(this.layout, convolutionalEncode(encodePayload(payload)));
    return embedChips(image, chips, this.params);
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
