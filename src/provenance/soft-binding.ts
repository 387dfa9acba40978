/**
 * The C2PA soft-binding assertion (C2PA 2.x §"Soft Binding", label `c2pa.soft-binding`) for this server's
 * invisible watermark: it names the algorithm and the 48 payload bits the mark carries, so a verifier that
 * finds the mark in a stripped copy knows which manifest (and here, which generation) it points back to.
 *
 * The algorithm is not on the C2PA soft-binding algorithm list; its name is ours, versioned so a future change
 * of the mark's layout gets a new name. The block value is the payload as 12 lowercase hex digits: issuer id
 * (16 bits) then generation id (32 bits), the layout of images/watermark/payload.ts without its CRC.
 */
import type { WatermarkPayload } from '../domain/ports.ts';

export const SOFT_BINDING_LABEL = 'c2pa.soft-binding';
export const WATERMARK_SOFT_BINDING_ALG = 'org.qwen-image-server.watermark.tiled-ss.1';

export interface SoftBindingAssertion {
  alg: string;
  name: string;
  alg_params: string;
  blocks: Array<{ scope: Record<string, never>; value: string }>;
  pad: number[];
}

export function softBindingValue(payload: WatermarkPayload): string {
  return payload.issuerId.toString(16).padStart(4, '0') + payload.generationId.toString(16).padStart(8, '0');
}

export function watermarkSoftBinding(payload: WatermarkPayload): SoftBindingAssertion {
  return {
    alg: WATERMARK_SOFT_BINDING_ALG,
    name: 'invisible watermark over the whole image',
    alg_params: 'value = hex(issuer_id:16 bits, generation_id:32 bits); detection needs the issuing server\'s WATERMARK_KEY',
    // An empty scope: the mark covers the whole image (it is tiled over it).
    blocks: [{ scope: {}, value: softBindingValue(payload) }],
    pad: [],
  };
}

/** The payload named by a soft-binding assertion of our algorithm, or null (another algorithm, or malformed). */
export function payloadOfSoftBinding(data: unknown): WatermarkPayload | null {
  const d = data as Partial<SoftBindingAssertion> | null;
  if (!d || d.alg !== WATERMARK_SOFT_BINDING_ALG || !Array.isArray(d.blocks)) return null;
  const value = d.blocks[0]?.value;
  if (typeof value !== 'string' || !/^[0-9a-f]{12}$/.test(value)) return null;
  return { issuerId: parseInt(value.slice(0, 4), 16), generationId: parseInt(value.slice(4), 16) };
}
