/**
 * What POST /v1/images/verify and `cli provenance verify` answer about one image: its C2PA manifest (state,
 * assertions), the invisible mark, whether the two agree (the manifest's soft binding names the mark found in
 * the pixels), and, when a mark is found, the generation it points to (scoped, see trace-mark.ts). The mark is
 * what still speaks when a platform has stripped the manifest.
 */
import type { MarkLedger, Watermarker, WatermarkPayload } from '../domain/ports.ts';
import type { RawImage } from '../domain/types.ts';
import type { ManifestReport, ReadManifest } from './read.ts';
import { payloadOfSoftBinding, SOFT_BINDING_LABEL } from './soft-binding.ts';
import { traceMark, type MarkTrace, type TraceScope } from './trace-mark.ts';

type PayloadView = { issuer_id: number; generation_id: number };

export interface VerifyReport {
  manifest: ManifestReport;
  watermark: { detected: boolean; confidence: number; payload: PayloadView | null };
  /** The mark the manifest's soft-binding assertion names, and whether the pixels carry that very mark. */
  soft_binding: { payload: PayloadView | null; matches_watermark: boolean | null };
  /** null when no mark was found. */
  trace: MarkTrace | null;
}

export interface VerifyImageDeps {
  readManifest: ReadManifest;
  watermarker: Watermarker;
  /** null: no ledger to trace against (the CLI away from the server's DATA_DIR). */
  ledger: MarkLedger | null;
  /** This server's WATERMARK_ISSUER_ID. */
  issuerId: number;
}

const viewOf = (p: WatermarkPayload | null): PayloadView | null => (p ? { issuer_id: p.issuerId, generation_id: p.generationId } : null);

export function createVerifyImage(deps: VerifyImageDeps) {
  /** `bytes` as received (the manifest is read from them), `image` the same decoded to RGB (the mark is found in it). */
  return async function verifyImage(bytes: Buffer, image: RawImage, scope: TraceScope): Promise<VerifyReport> {
    const manifest = await deps.readManifest(bytes);
    const detection = deps.watermarker.detect(image);
    const mark = detection.detected ? detection.payload : null;
    const binding = manifest.present ? manifest.assertions.filter((a) => a.label === SOFT_BINDING_LABEL).map((a) => payloadOfSoftBinding(a.data)).find((p) => p !== null) ?? null : null;
    return {
      manifest,
      watermark: { detected: detection.detected, confidence: detection.confidence, payload: viewOf(detection.payload) },
      soft_binding: {
        payload: viewOf(binding),
        matches_watermark: binding ? mark !== null && mark.issuerId === binding.issuerId && mark.generationId === binding.generationId : null,
      },
      trace: mark && deps.ledger ? await traceMark(deps.ledger, mark, deps.issuerId, scope) : null,
    };
  };
}

export type VerifyImage = ReturnType<typeof createVerifyImage>;
