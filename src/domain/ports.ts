/**
 * Interfaces the pipeline talks to. Implementations live in their own rooms (images/, prompt/, store/,
 * blobs/, engines/) and are wired together in main.ts.
 */
import type { Readable } from 'node:stream';
import type { RawImage } from './types.ts';
import type { WebhookEvent } from './jobs.ts';
import type { KeyLimitSettings, KeyRole } from './key-limits.ts';

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
  /** Whole credits (domain/money.ts chargeFor). */
  credits: number;
  /** USD, a whole number of micro-USD: the stores keep it as micro-USD (usdToMicros). */
  usd: number;
  /** ms since epoch */
  createdAtMs: number;
  /** The invisible mark embedded in the image, kept so a mark found later traces back to this row. */
  watermark?: WatermarkPayload | null;
}

/** A ledger row a detected watermark points to (see MarkLedger). */
export interface MarkedGeneration {
  keyId: string;
  /** null for rows written before jobs existed */
  jobId: string | null;
  model: string;
  width: number;
  height: number;
  /** ms since epoch */
  createdAtMs: number;
}

export interface MarkLedger {
  /**
   * Ledger rows whose image carried this mark, newest first, at most `limit`. The generation id is a hash of
   * the request's parameters (the same request draws the same pixels, mark included), so several rows, even
   * of several keys, can share one.
   */
  findByMark(payload: WatermarkPayload, limit: number): Promise<MarkedGeneration[]>;
}

export interface UsageTotals {
  keyId: string;
  generations: number;
  /** Whole credits. */
  credits: number;
  /** USD, exact to the micro-dollar (summed as integers). */
  usd: number;
  /** Per model, same fields. */
  byModel: Array<{ model: string; generations: number; credits: number; usd: number }>;
}

export interface UsageStore {
  totals(keyId: string): Promise<UsageTotals>;
}

export interface ApiKeyRecord {
  id: string;
  name: string;
  /**
   * Safe to show: `qis_` and the next 4 characters of a generated key (24 of its 192 random bits), e.g.
   * `qis_ab12`; empty for any other key (API_KEYS secrets are operator-chosen, where 4–8 characters can be
   * most of a guessable secret). The id, not the prefix, is what names a key.
   */
  prefix: string;
  createdAtMs: number;
  revokedAtMs: number | null;
  /** Who revoked it: `cli` (the operator; permanent), `env` (it left API_KEYS; undone if listed again), or null. */
  revokedBy: 'cli' | 'env' | null;
  /** `env` for keys from API_KEYS, `cli` for keys made by the CLI. */
  source: 'env' | 'cli';
  /** `admin` keys may use /v1/admin/...; an env key's role follows ADMIN_API_KEYS at every start. */
  role: KeyRole;
  /** The key's own limit settings (each a number, null = none, or 'default' = the server's KEY_DEFAULT_*). */
  limits: KeyLimitSettings;
}

export interface NewKeyOptions {
  role?: KeyRole;
  limits?: Partial<KeyLimitSettings>;
}

export interface KeyUpdate {
  name?: string;
  role?: KeyRole;
  limits?: Partial<KeyLimitSettings>;
}

export interface KeyStore {
  /** Returns the record for a presented secret, or null (unknown or revoked). */
  verify(secret: string): Promise<ApiKeyRecord | null>;
  create(name: string, source: 'env' | 'cli', secret?: string, options?: NewKeyOptions): Promise<{ record: ApiKeyRecord; secret: string }>;
  list(): Promise<ApiKeyRecord[]>;
  /** The key with exactly this id (revoked or not); null when there is none. */
  get(id: string): Promise<ApiKeyRecord | null>;
  /**
   * Changes a key's name, role or limits (fields left out stay as they are); null when there is no such key.
   * An env key's role cannot be changed here (ADMIN_API_KEYS sets it at every start): that throws.
   */
  update(id: string, change: KeyUpdate): Promise<ApiKeyRecord | null>;
  /**
   * Revokes the key with exactly this id, for good (API_KEYS cannot bring it back). False when there is no such
   * key or the operator already revoked it. Never by prefix: a prefix can be shared by several keys.
   */
  revoke(id: string): Promise<boolean>;
  /** The key's default webhook (used when a job names none) and whether it has a signing secret. */
  webhookSettings(keyId: string): Promise<{
    /** null when the key has no default webhook */
    url: string | null;
    /** empty when url is null */
    events: WebhookEvent[];
    hasSecret: boolean;
  }>;
  /** Sets or (null) clears the key's default webhook. */
  setDefaultWebhook(keyId: string, webhook: { url: string; events: WebhookEvent[] } | null): Promise<void>;
  /** Stores a new `whsec_` signing secret, replacing the old one at once, and returns it. */
  rotateWebhookSecret(keyId: string): Promise<string>;
  /** The key's signing secret; null when it has none yet. */
  webhookSecret(keyId: string): Promise<string | null>;
  /** The key's signing secret, created first when it has none (safe under concurrent callers). */
  ensureWebhookSecret(keyId: string): Promise<string>;
}

// ---------------------------------------------------------------- generated images
/** A stored blob, opened for reading: the caller consumes or destroys `stream`. */
export interface BlobObject {
  stream: Readable;
  /** The type given to `put` (the S3 store keeps it with the object; the filesystem store derives it from the key's extension). */
  contentType: string;
  /** Length in bytes, when the store knows it before the body is read (both stores do). */
  sizeBytes?: number;
}

export interface BlobStore {
  put(key: string, data: Buffer, contentType: string): Promise<void>;
  /** null when missing (and for a key no blob can have, such as one with `..`). */
  get(key: string): Promise<BlobObject | null>;
  /** Removes the blob; no error when it is already gone. */
  delete(key: string): Promise<void>;
  /** Every key under a folder-like prefix ending in `/` (e.g. `generations/`), for the orphan sweep at start. */
  list(prefix: string): Promise<string[]>;
  /**
   * The URL a client downloads the blob from: `<publicBaseUrl>/files/<key>` (served by this server), or a
   * presigned GET URL of the bucket that expires (BLOB_URLS=presigned).
   */
  urlFor(key: string, publicBaseUrl: string): Promise<string>;
}
