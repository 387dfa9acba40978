/**
 * The submit half of a generation: from a validated request to a durable queued job.
 * model and price → webhook target → idempotency → the key's limits and budgets (429/402) → admission
 * (503 when full) → references fetched, decoded and stored as blobs → the job written (with its
 * idempotency record) → enqueued.
 *
 * Everything that can reject the input happens before anything is stored, so a bad request leaves
 * nothing behind; the seed is chosen here so that a job run again after a crash draws the same pixels.
 */
import crypto from 'node:crypto';
import { ApiError } from '../domain/errors.ts';
import type { JobRecord, JobWebhook } from '../domain/jobs.ts';
import type { BlobStore, KeyStore } from '../domain/ports.ts';
import type { GenerationParams } from '../contracts/validate-generation.ts';
import type { ImageFetcher } from '../images/fetch-image.ts';
import { decodeImage, type DecodeLimits } from '../images/decode-image.ts';
import type { WorkGate } from '../images/work-gate.ts';
import { fetchReferences } from './fetch-references.ts';
import type { IdempotencyClaim, JobQueue, JobStore } from '../jobs/ports.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { KeyLimiter } from '../limits/ports.ts';
import { validateWebhookUrl } from '../jobs/webhooks/dispatcher.ts';
import { encodeReference, referenceKey } from './reference-blobs.ts';

export interface SubmitDeps {
  store: JobStore;
  queue: JobQueue;
  runner: Pick<JobRunner, 'admit' | 'pump'>;
  keys: Pick<KeyStore, 'webhookSettings'>;
  blobs: BlobStore;
  fetcher: ImageFetcher;
  decodeLimits: DecodeLimits;
  /** Admission for decoding references (shared with watermark detection). */
  imageGate: WorkGate;
  /** Models served here. */
  models: ReadonlySet<string>;
  pricesUsd: Record<string, number>;
  allowPrivateWebhooks: boolean;
  /** Per-key limits and budgets; absent: none. */
  limiter?: Pick<KeyLimiter, 'admit'>;
  now?: () => number;
  randomSeed?: () => number;
}

export interface SubmitContext {
  keyId: string;
  requestId: string;
  /** The raw JSON body: what an Idempotency-Key is compared against. */
  body: unknown;
  idempotencyKey: string | null;
  /** Fires when the client goes away while references are fetched. */
  signal: AbortSignal;
}

export interface SubmitOutcome {
  job: JobRecord;
  /** false: an earlier request with the same Idempotency-Key made this job. */
  created: boolean;
}

/** Seeds are 0..2^31−1, as in the seed's schema. */
const MAX_SEED = 2147483647;

/** JSON with object keys sorted, so that key order does not make two equal bodies differ. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function hashRequestBody(body: unknown): string {
  return crypto.createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function idempotencyConflict(key: string): ApiError {
  return new ApiError('idempotency_key_reused', `Idempotency-Key "${key}" was already used with a different request body`, {
    param: 'Idempotency-Key',
  });
}

export function createSubmitGeneration(deps: SubmitDeps) {
  const now = deps.now ?? Date.now;
  const randomSeed = deps.randomSeed ?? (() => crypto.randomInt(0, MAX_SEED + 1));

  async function webhookFor(params: GenerationParams, keyId: string): Promise<JobWebhook | null> {
    if (params.webhook) {
      validateWebhookUrl(params.webhook.url, deps.allowPrivateWebhooks, 'webhook.url');
      return params.webhook;
    }
    const defaults = await deps.keys.webhookSettings(keyId);
    return defaults.url ? { url: defaults.url, events: defaults.events } : null;
  }

  return async function submitGeneration(params: GenerationParams, ctx: SubmitContext): Promise<SubmitOutcome> {
    if (!deps.models.has(params.model)) throw new ApiError('model_not_found', `model "${params.model}" is not served here`, { param: 'model' });
    if (deps.pricesUsd[params.model] === undefined) throw new ApiError('model_not_found', `model "${params.model}" has no price configured`, { param: 'model' });
    const webhook = await webhookFor(params, ctx.keyId);

    const idempotency = ctx.idempotencyKey === null ? undefined : { keyId: ctx.keyId, key: ctx.idempotencyKey, bodyHash: hashRequestBody(ctx.body) };
    if (idempotency) {
      const seen = await deps.store.findIdempotent(idempotency.keyId, idempotency.key);
      if (seen && seen.bodyHash !== idempotency.bodyHash) throw idempotencyConflict(idempotency.key);
      const existing = seen ? await deps.store.get(seen.jobId) : null;
      if (existing) return { job: existing, created: false };
    }

    // Before anything is fetched or stored; an idempotent replay above is neither limited nor charged again.
    const hold = deps.limiter ? await deps.limiter.admit({ keyId: ctx.keyId, model: params.model }) : null;
    try {
      return await createJob(params, ctx, webhook, idempotency);
    } finally {
      // Once the job is written the store counts it; on failure nothing stays held.
      hold?.release();
    }
  };

  async function createJob(
    params: GenerationParams,
    ctx: SubmitContext,
    webhook: JobWebhook | null,
    idempotency: IdempotencyClaim | undefined,
  ): Promise<SubmitOutcome> {
    await deps.runner.admit(params.model);

    // Fetched references (image_urls) or uploaded files (POST /v1/images/edits): an edit has one kind or the other,
    // and both are decoded under the same gate and limits.
    const [fetched, uploaded] = await Promise.all([
      fetchReferences(params.imageUrls, { fetcher: deps.fetcher, decodeLimits: deps.decodeLimits, gate: deps.imageGate }, ctx.signal),
      Promise.all(
        params.imageFiles.map((bytes, i) =>
          deps.imageGate.run(() => decodeImage(bytes, deps.decodeLimits, params.imageFiles.length === 1 ? 'image' : `image[${i}]`), ctx.signal),
        ),
      ),
    ]);
    const references = [...fetched, ...uploaded];
    ctx.signal.throwIfAborted();

    const jobId = `job_${crypto.randomUUID()}`;
    const referenceKeys = references.map((_, i) => referenceKey(jobId, i));
    const deleteReferences = () => Promise.all(referenceKeys.map((k) => deps.blobs.delete(k)));
    await Promise.all(references.map((image, i) => deps.blobs.put(referenceKeys[i]!, encodeReference(image), 'application/octet-stream')));

    let outcome;
    try {
      outcome = await deps.store.create(
        {
          id: jobId,
          keyId: ctx.keyId,
          requestId: ctx.requestId,
          createdAtMs: now(),
          webhook,
          params: {
            model: params.model,
            prompt: params.prompt,
            negativePrompt: params.negativePrompt,
            width: params.width,
            height: params.height,
            seed: params.seed ?? randomSeed(),
            enhancePrompt: params.enhancePrompt,
            watermark: params.watermark,
            responseFormat: params.responseFormat,
            n: params.n,
            outputFormat: params.outputFormat,
            outputCompression: params.outputCompression,
            quality: params.quality,
            partialImages: params.stream ? params.partialImages : 0,
            referenceKeys,
          },
        },
        idempotency,
      );
    } catch (err) {
      await deleteReferences();
      throw err;
    }
    if (outcome.kind !== 'created') {
      // A concurrent request with the same Idempotency-Key won the race.
      await deleteReferences();
      if (outcome.kind === 'conflict') throw idempotencyConflict(idempotency!.key);
      return { job: outcome.job, created: false };
    }
    await deps.queue.enqueue(jobId, params.model);
    void deps.runner.pump();
    return { job: outcome.job, created: true };
  }
}

export type SubmitGeneration = ReturnType<typeof createSubmitGeneration>;
