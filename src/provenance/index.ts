/**
 * Content credentials (C2PA) bound to the invisible watermark. Operator's guide: docs/provenance.md.
 * main.ts calls `loadContentCredentials` once; the pipeline calls the signer right after encoding.
 */
import type { C2paConfig } from '../config/config.ts';
import { readPemSetting } from './pem.ts';
import { createContentCredentialsSigner, type ContentCredentialsSigner } from './sign.ts';

export { createContentCredentialsSigner, manifestDefinition, sha256Hex, SIGNABLE_MIME_TYPES, type ContentCredentialsSigner, type GenerationFacts, type SignableMimeType } from './sign.ts';
export { createManifestReader, sniffMimeType, type ManifestReport, type ReadManifest } from './read.ts';
export { createVerifyImage, type VerifyImage, type VerifyReport } from './verify-image.ts';
export { traceMark, type MarkTrace, type TraceScope } from './trace-mark.ts';
export { createDevCertificateChain, type DevCertificateChain } from './dev-certificate.ts';
export { ProvenanceConfigError, readPemSetting } from './pem.ts';
export { WATERMARK_SOFT_BINDING_ALG, SOFT_BINDING_LABEL } from './soft-binding.ts';

export interface LoadedContentCredentials {
  /** null: nothing is signed. */
  signer: ContentCredentialsSigner | null;
  /** The PEM of C2PA_TRUST_ANCHORS, null when unset. */
  trustAnchorsPem: string | null;
  /** The startup line: what is signed, with which certificate, or why nothing is. */
  message: string;
}

export async function loadContentCredentials(config: C2paConfig, software: { name: string; version: string }): Promise<LoadedContentCredentials> {
  const trustAnchorsPem = config.trustAnchors ? readPemSetting('C2PA_TRUST_ANCHORS', config.trustAnchors) : null;
  if (!config.cert || !config.key) {
    return {
      signer: null,
      trustAnchorsPem,
      message:
        'content credentials: OFF, generated images carry no C2PA manifest (set C2PA_CERT and C2PA_KEY; `npm run cli -- provenance dev-cert` makes a development pair)',
    };
  }
  const signer = await createContentCredentialsSigner({
    certPem: readPemSetting('C2PA_CERT', config.cert),
    keyPem: readPemSetting('C2PA_KEY', config.key),
    software,
    includePrompt: config.includePrompt,
    thumbnail: config.thumbnail,
  });
  return {
    signer,
    trustAnchorsPem,
    message: `content credentials: ON, every generated image carries a C2PA manifest signed by "${signer.subject}" (certificate valid to ${signer.validTo}; prompt ${config.includePrompt ? 'included' : 'as SHA-256 only'}; thumbnail ${config.thumbnail ? 'on' : 'off'})`,
  };
}
