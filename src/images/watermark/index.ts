/** Invisible, crop- and resize-robust image watermark. Design and numbers: docs/watermark.md. */
export { createWatermarker, type AnalysingWatermarker, type WatermarkOptions } from './watermarker.ts';
export { DEFAULT_PARAMS, type WatermarkParams } from './params.ts';
export type { Analysis } from './detect.ts';
export type { Watermarker, WatermarkDetection, WatermarkPayload } from '../../domain/ports.ts';
export {
  PAYLOAD_BITS,
  MESSAGE_BITS,
  ISSUER_ID_BITS,
  GENERATION_ID_BITS,
  payloadBits,
  encodePayload,
  decodePayload,
  generationIdFromRequestId,
} from './payload.ts';
