/**
 * Interfaces the pipeline talks to. Implementations live in their own rooms (images/, prompt/, store/,
 * blobs/, engines/) and are wired together in main.ts.
 */
import type { RawImage } from './types.ts';

// ---------------------------------------------------------------- prompt rewriting (enhance_prompt)
export interface EnhanceInput {
  requestId: string;
  model: string;
  prompt: string;
  seed: number;
  /** True when the request has image_urls (an edit): the rewrite is an edit instruction. */
  isEdit: boolean;
  signal?: AbortSignal;
}

export interface EnhanceResult {
  /** The prompt to draw with; becomes data[].revised_prompt. */
  prompt: string;
  /** Where it came from: an LLM call, the persistent cache, or the offline rewriter. */
  source: 'llm' | 'cache' | 'offline';
  /** Why the LLM was not used, when it was configured but we fell back. */
  fallbackReason?: string;
}

export interface PromptEnhancer {
  enhance(input: EnhanceInput): Promise<EnhanceResult>;
}

// ---------------------------------------------------------------- invisible watermark
export interface WatermarkPayload {
  /** Operator-configured issuer id (see WATERMARK_ISSUER_ID). */
  issuerId: number;
  /** Bits identifying the generation (derived from the request id). */
  generationId: number;
}

export interface WatermarkDetection {
  detected: boolean;
  /** 0..1 */
  confidence: number;
  payload: WatermarkPayload | null;
}

export interface Watermarker {
  /** Embeds in place or returns a new image of the same size; deterministic for the same input. */
  embed(image: RawImage, payload: WatermarkPayload): RawImage;
  detect(image: RawImage): WatermarkDetection;
}

// ---------------------------------------------------------------- usage ledger and API keys
export interface UsageEntry {
  keyId: string;
  requestId: string;
  model: string;
  width: number;
  height: number;
  seed: number;
  credits: number;
  usd: number;
  /** ms since epoch */
  createdAtMs: number;
}

export interface UsageTotals {
  keyId: string;
  generations: number;
  credits: number;
  usd: number;
  /** Per model, same fields. */
  byModel: Array<{ model: string; generations: number; credits: number; usd: number }>;
}

export interface UsageStore {
  record(entry: UsageEntry): Promise<void>;
  totals(keyId: string): Promise<UsageTotals>;
}

export interface ApiKeyRecord {
  id: string;
  name: string;
  /** First characters of the key, safe to show (e.g. `qis_ab12`). */
  prefix: string;
  createdAtMs: number;
  revokedAtMs: number | null;
  /** `env` for keys from API_KEYS, `cli` for keys made by the CLI. */
  source: 'env' | 'cli';
}

export interface KeyStore {
  /** Returns the record for a presented secret, or null (unknown or revoked). */
  verify(secret: string): Promise<ApiKeyRecord | null>;
  create(name: string, source: 'env' | 'cli', secret?: string): Promise<{ record: ApiKeyRecord; secret: string }>;
  list(): Promise<ApiKeyRecord[]>;
  revoke(idOrPrefix: string): Promise<boolean>;
}

// ---------------------------------------------------------------- generated images
export interface BlobStore {
  put(key: string, data: Buffer, contentType: string): Promise<void>;
  /** null when missing */
  get(key: string): Promise<{ data: Buffer; contentType: string } | null>;
}
