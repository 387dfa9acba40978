/**
 * Signs a C2PA manifest into a generated image (c2pa-rs through @contentauth/c2pa-node 0.8.0, see
 * docs/provenance.md for why that exact version). The manifest says: created (c2pa.created) by a trained
 * model (IPTC digitalSourceType trainedAlgorithmicMedia), by this server and version (softwareAgent), with
 * which model and engine, when, and the SHA-256 of the prompt (the prompt itself only when the operator opts
 * in); plus, when the image carries the invisible mark, a soft binding naming the mark's payload.
 *
 * The hard binding (c2pa.hash.data over the file's bytes) is made by the library, so any change to the bytes
 * outside the manifest, a single pixel included, makes the manifest invalid.
 */
import crypto from 'node:crypto';
import { Builder, LocalSigner, Reader } from '@contentauth/c2pa-node';
import sharp from 'sharp';
import type { WatermarkPayload } from '../domain/ports.ts';
import { TRAINED_ALGORITHMIC_MEDIA } from '../images/png.ts';
import { parseCertificates, ProvenanceConfigError } from './pem.ts';
import { SOFT_BINDING_LABEL, watermarkSoftBinding } from './soft-binding.ts';

/** Formats the signer embeds into; c2pa-rs also handles others, these are the ones the server can encode. */
export const SIGNABLE_MIME_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
export type SignableMimeType = (typeof SIGNABLE_MIME_TYPES)[number];

/** What the manifest states about one generated image. */
export interface GenerationFacts {
  model: string;
  /** The backend that drew it: its id in the routing file (or the engine id when not routed). */
  engine: string;
  /** Its kind (`builtin`, `comfyui`, `openai`, `dashscope`) when the router says. */
  engineKind?: string | number | boolean;
  /** The caller's prompt, as sent. */
  prompt: string;
  /** The prompt the engine drew with (enhanced / adapted); equal to `prompt` when not rewritten. */
  drawnPrompt: string;
  createdAtMs: number;
  /** The invisible mark embedded in the pixels, when there is one. */
  watermark: WatermarkPayload | null;
}

export interface ContentCredentialsSigner {
  /** Subject of the signing certificate, for the startup line. */
  readonly subject: string;
  readonly validTo: string;
  /** The asset with a signed manifest embedded. */
  sign(asset: Buffer, mimeType: SignableMimeType, facts: GenerationFacts): Promise<Buffer>;
}

export interface SignerOptions {
  /** PEM: the signing certificate first, then any intermediates (a root may follow; verifiers ignore it). */
  certPem: string;
  /** PEM private key of the signing certificate: EC P-256 (ES256), PKCS#8 or SEC1. */
  keyPem: string;
  software: { name: string; version: string };
  /** Put the prompt itself (and the rewritten one) in the manifest, not only its hash. */
  includePrompt: boolean;
  /** Embed a thumbnail in the manifest (c2pa-rs default; off here: it roughly triples a PNG's size). */
  thumbnail: boolean;
}

export const sha256Hex = (text: string): string => crypto.createHash('sha256').update(text, 'utf8').digest('hex');

/** The manifest definition (c2pa-rs ManifestDefinition JSON) for one image. */
export function manifestDefinition(facts: GenerationFacts, mimeType: SignableMimeType, options: Pick<SignerOptions, 'software' | 'includePrompt'>): Record<string, unknown> {
  const parameters: Record<string, string> = {
    model: facts.model,
    engine: facts.engine,
    ...(facts.engineKind !== undefined ? { engine_kind: String(facts.engineKind) } : {}),
    prompt_sha256: sha256Hex(facts.prompt),
  };
  if (options.includePrompt) {
    parameters.prompt = facts.prompt;
    if (facts.drawnPrompt !== facts.prompt) parameters.revised_prompt = facts.drawnPrompt;
  }
  const assertions: Array<{ label: string; data: unknown }> = [
    {
      label: 'c2pa.actions.v2',
      data: {
        actions: [
          {
            action: 'c2pa.created',
            digitalSourceType: TRAINED_ALGORITHMIC_MEDIA,
            softwareAgent: { name: options.software.name, version: options.software.version },
            when: new Date(facts.createdAtMs).toISOString(),
            parameters,
          },
        ],
      },
    },
  ];
  if (facts.watermark) assertions.push({ label: SOFT_BINDING_LABEL, data: watermarkSoftBinding(facts.watermark) });
  return {
    claim_generator_info: [{ name: options.software.name, version: options.software.version }],
    format: mimeType,
    assertions,
  };
}

function checkKeyPair(certPem: string, keyPem: string): { certificate: crypto.X509Certificate; key: crypto.KeyObject } {
  const chain = parseCertificates('C2PA_CERT', certPem);
  const certificate = chain[0]!;
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch (err) {
    throw new ProvenanceConfigError(`C2PA_KEY is not a PEM private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new ProvenanceConfigError(
      `C2PA_KEY must be an EC P-256 key for ES256, got ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}`,
    );
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new ProvenanceConfigError(`C2PA_KEY does not belong to the first certificate of C2PA_CERT (${certificate.subject.replace(/\n/g, ', ')})`);
  }
  const now = Date.now();
  if (Date.parse(certificate.validTo) < now || Date.parse(certificate.validFrom) > now) {
    throw new ProvenanceConfigError(`C2PA_CERT is not valid now (valid ${certificate.validFrom} to ${certificate.validTo})`);
  }
  return { certificate, key };
}

/**
 * Checks the certificate and key (throws ProvenanceConfigError naming the setting), signs a probe image and
 * reads it back, then returns the signer.
 */
export async function createContentCredentialsSigner(options: SignerOptions): Promise<ContentCredentialsSigner> {
  const { certificate, key } = checkKeyPair(options.certPem, options.keyPem);
  // c2pa-node's LocalSigner reserves ~11.6 KB per file for a timestamp-authority response this offline server
  // never fetches (most of the ~13 KB a manifest adds). Its CallbackSigner takes a reserve size (the chain plus
  // 2 KiB gives ~4.3 KB added) and signs with node:crypto, but in 0.8.0 a process holding one does not exit when
  // its work is done, which a server that must stop on SIGTERM cannot have; see docs/provenance.md.
  const signer = LocalSigner.newSigner(Buffer.from(options.certPem), Buffer.from(key.export({ format: 'pem', type: 'pkcs8' }).toString()), 'es256');
  const settings = { builder: { thumbnail: { enabled: options.thumbnail } } };
  const sign = async (asset: Buffer, mimeType: SignableMimeType, facts: GenerationFacts): Promise<Buffer> => {
    const builder = Builder.withJson(manifestDefinition(facts, mimeType, options) as never, settings);
    const output: { buffer: Buffer | null } = { buffer: null };
    // Synchronous: c2pa-rs parses, hashes and signs on this thread (~5-8 ms at 1024x768, docs/performance.md).
    builder.sign(signer, { buffer: asset, mimeType }, output);
    if (!output.buffer) throw new Error('c2pa: signing produced no output');
    return output.buffer;
  };

  // A small PNG signed once at start, so a certificate c2pa-rs refuses fails the start, not the first request.
  const probePng = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toBuffer();
  const probe = await sign(probePng, 'image/png', { model: 'probe', engine: 'probe', prompt: '', drawnPrompt: '', createdAtMs: Date.now(), watermark: null });
  const reader = await Reader.fromAsset({ buffer: probe, mimeType: 'image/png' });
  const store = reader?.json() as { validation_state?: string; validation_status?: Array<{ code: string; explanation?: string }> } | undefined;
  const refusals = (store?.validation_status ?? []).filter((s) => s.code !== 'signingCredential.untrusted');
  if (!store || store.validation_state === 'Invalid' || refusals.length > 0) {
    const why = refusals.map((s) => `${s.code}${s.explanation ? ` (${s.explanation})` : ''}`).join('; ') || 'no manifest read back';
    throw new ProvenanceConfigError(`C2PA_CERT/C2PA_KEY: a probe image signed with them does not verify: ${why}`);
  }

  return { subject: certificate.subject.replace(/\n/g, ', '), validTo: certificate.validTo, sign };
}
