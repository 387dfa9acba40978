/**
 * Reads and validates the C2PA manifest of an image (c2pa-rs through @contentauth/c2pa-node), and says it in
 * this API's words: `trusted` (valid, and the signing certificate chains to one of C2PA_TRUST_ANCHORS),
 * `valid` (intact and correctly signed, by a certificate nobody here vouches for), or `invalid` with the
 * failures c2pa-rs reported (e.g. `assertion.dataHash.mismatch` when a pixel was changed).
 */
import { Reader } from '@contentauth/c2pa-node';
import type { SignableMimeType } from './sign.ts';

export type ManifestState = 'trusted' | 'valid' | 'invalid';

export interface ValidationEntry {
  code: string;
  explanation: string | null;
  url: string | null;
}

export type ManifestReport =
  | { present: false }
  | {
      present: true;
      state: ManifestState;
      /** Why it is invalid (the first failure's code and explanation); null otherwise. */
      reason: string | null;
      /** Every failure c2pa-rs reported; for a `valid` one, `signingCredential.untrusted` at most. */
      failures: ValidationEntry[];
      label: string | null;
      claim_generator: unknown;
      signature: { issuer: string | null; common_name: string | null; alg: string | null; time: string | null } | null;
      assertions: Array<{ label: string; data: unknown }>;
    };

/** Sniffs the container from magic bytes: the Reader must be told. null: a format we do not read manifests from. */
export function sniffMimeType(bytes: Buffer): SignableMimeType | null {
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47 && bytes.readUInt32BE(4) === 0x0d0a1a0a) return 'image/png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  return null;
}

interface StoreJson {
  active_manifest?: string;
  manifests?: Record<string, ManifestJson>;
  validation_state?: string;
  validation_status?: Array<{ code: string; explanation?: string; url?: string }>;
}
interface ManifestJson {
  claim_generator_info?: unknown;
  assertions?: Array<{ label: string; data: unknown }>;
  signature_info?: { issuer?: string; common_name?: string; alg?: string; time?: string };
}

/** c2pa-rs reports a missing manifest as an error whose text names JUMBF or the manifest as not found. */
function isNoManifest(err: unknown): boolean {
  return /not found|no manifest|jumbf/i.test((err as Error)?.message ?? '');
}

export interface ManifestReaderOptions {
  /** PEM bundle of CA certificates to trust (C2PA_TRUST_ANCHORS); empty: nothing is `trusted`. */
  trustAnchorsPem: string | null;
}

export function createManifestReader(options: ManifestReaderOptions) {
  const settings = options.trustAnchorsPem
    ? { trust: { verify_trust_list: true, trust_anchors: options.trustAnchorsPem }, verify: { verify_trust: true } }
    : { verify: { verify_trust: true } };

  return async function readManifest(bytes: Buffer): Promise<ManifestReport> {
    const mimeType = sniffMimeType(bytes);
    if (!mimeType) return { present: false };
    let store: StoreJson;
    try {
      const reader = await Reader.fromAsset({ buffer: bytes, mimeType }, settings);
      if (!reader) return { present: false };
      store = reader.json() as StoreJson;
    } catch (err) {
      if (isNoManifest(err)) return { present: false };
      // A manifest is there but cannot be parsed (truncated, overwritten): that is an invalid one, not a 5xx.
      const explanation = (err as Error).message;
      return { present: true, state: 'invalid', reason: `manifest.unreadable: ${explanation}`, failures: [{ code: 'manifest.unreadable', explanation, url: null }], label: null, claim_generator: null, signature: null, assertions: [] };
    }
    const failures: ValidationEntry[] = (store.validation_status ?? []).map((s) => ({ code: s.code, explanation: s.explanation ?? null, url: s.url ?? null }));
    const state: ManifestState = store.validation_state === 'Trusted' ? 'trusted' : store.validation_state === 'Valid' ? 'valid' : 'invalid';
    const first = failures.find((f) => f.code !== 'signingCredential.untrusted') ?? failures[0];
    const active = store.active_manifest ? store.manifests?.[store.active_manifest] : undefined;
    const sig = active?.signature_info;
    return {
      present: true,
      state,
      reason: state === 'invalid' && first ? `${first.code}${first.explanation ? `: ${first.explanation}` : ''}` : null,
      failures,
      label: store.active_manifest ?? null,
      claim_generator: active?.claim_generator_info ?? null,
      signature: sig ? { issuer: sig.issuer ?? null, common_name: sig.common_name ?? null, alg: sig.alg ?? null, time: sig.time ?? null } : null,
      assertions: (active?.assertions ?? []).map((a) => ({ label: a.label, data: a.data })),
    };
  };
}

export type ReadManifest = ReturnType<typeof createManifestReader>;
