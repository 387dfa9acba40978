/**
 * The job: every generation, synchronous or not, is one. Plain types, shared by the pipeline, the
 * job runner, the stores, the webhook dispatcher and the HTTP layer. Imports only other domain types.
 */
import type { ErrorCode, ErrorType } from './errors.ts';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'canceled'];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** Webhook events a caller can subscribe to; `completed` means any of the three terminal states. */
export const WEBHOOK_EVENTS = ['completed', 'succeeded', 'failed', 'canceled', 'running'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface JobWebhook {
  url: string;
  events: WebhookEvent[];
}

/** True when a job that just entered `status` must be announced to a webhook subscribed to `events`. */
export function webhookWants(events: readonly WebhookEvent[], status: JobStatus): boolean {
  if (status === 'queued') return false;
  if (status === 'running') return events.includes('running');
  return events.includes('completed') || events.includes(status as WebhookEvent);
}

/** What the runner needs to draw the job: the validated request, with the seed already chosen. */
export interface JobParams {
  model: string;
  prompt: string;
  negativePrompt: string;
  width: number;
  height: number;
  /** Chosen at submit time (random when the caller gave none), so a re-run draws the same pixels. */
  seed: number;
  enhancePrompt: boolean;
  watermark: boolean;
  responseFormat: 'url' | 'b64_json';
  /**
   * OpenAI's fields (absent in jobs stored before they existed: 1, png, 100, auto, 0). One job draws
   * all n images (seeds seed, seed+1, ...) and is charged n × the price in its one ledger row.
   */
  n?: number;
  outputFormat?: 'png' | 'jpeg' | 'webp';
  outputCompression?: number | null;
  quality?: 'auto' | 'low' | 'medium' | 'high';
  /** Partial images a streaming caller asked for (the runner picks that many previews). */
  partialImages?: number;
  /** Decoded reference images, stored as blobs by submit (see pipeline/reference-blobs.ts). */
  referenceKeys: string[];
}

/** Exactly the body the synchronous POST /v1/images/generations returns. */
export interface GenerationResponseBody {
  created: number;
  data: Array<{ url?: string; b64_json?: string; seed: number; revised_prompt: string }>;
  meta: { usage: { credits_used: number; usd_spent: number } };
}

export interface JobError {
  /** The HTTP status the synchronous call answers with. */
  status: number;
  /** Seconds, sent as Retry-After by the synchronous call (overload errors). */
  retryAfterS?: number;
  error: { message: string; type: ErrorType; param: string | null; code: ErrorCode };
}

export interface JobProgress {
  step: number;
  /** null when the engine does not say how many steps there are. */
  steps: number | null;
}

export interface JobRecord {
  /** `job_<uuid>` */
  id: string;
  keyId: string;
  /** Log correlation id of the request that submitted the job (never a key). */
  requestId: string;
  model: string;
  status: JobStatus;
  params: JobParams;
  webhook: JobWebhook | null;
  /** ms since epoch */
  createdAtMs: number;
  startedAtMs: number | null;
  completedAtMs: number | null;
  /** Times a runner started this job (a job interrupted by a crash runs again). */
  attempts: number;
  progress: JobProgress | null;
  result: GenerationResponseBody | null;
  error: JobError | null;
  /** Blob keys of the images this job produced (the `url` images), for retention and the orphan sweep. */
  outputKeys: string[];
  /** Where the time went, ms per stage (inputs, enhance, engine, watermark, encode, store, ledger). */
  timings: Record<string, number> | null;
}

export interface NewJob {
  id: string;
  keyId: string;
  requestId: string;
  params: JobParams;
  webhook: JobWebhook | null;
  createdAtMs: number;
}
