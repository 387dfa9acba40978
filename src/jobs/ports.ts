/**
 * The job system's ports. The embedded default (sqlite/) keeps everything in the server's one SQLite
 * file; a distributed adapter (BullMQ queue, Postgres store) implements the same interfaces and runs
 * the same conformance suite (testing/job-store-conformance.ts).
 *
 * Split of responsibilities:
 * - JobStore: the durable record of each job and every state change, the idempotency records, and
 *   the writes that must be atomic with a state change (the ledger row on success, the webhook
 *   delivery on any state a webhook subscribed to).
 * - JobQueue: the order in which queued jobs are taken, per model. Claiming takes a job out of the queue;
 *   the store's `markRunning` is what makes it running.
 * - JobEvents: live notifications (SSE, sync waiters); nothing durable depends on them.
 */
import type { UsageEntry } from '../domain/ports.ts';
import type { RawImage } from '../domain/types.ts';
import type {
  GenerationResponseBody,
  JobError,
  JobProgress,
  JobRecord,
  JobStatus,
  NewJob,
} from '../domain/jobs.ts';

export interface IdempotencyClaim {
  keyId: string;
  /** The caller's Idempotency-Key header. */
  key: string;
  /** sha256 hex of the canonical request body. */
  bodyHash: string;
}

export type CreateJobOutcome =
  | { kind: 'created'; job: JobRecord }
  /** The same key and body were seen before: that job, unchanged. */
  | { kind: 'existing'; job: JobRecord }
  /** The same key came with a different body. */
  | { kind: 'conflict'; jobId: string };

export interface ListJobsQuery {
  keyId: string;
  status?: JobStatus;
  /** Page size, 1..100. */
  limit: number;
  /** Opaque cursor from a previous page: jobs older than it. */
  after?: string;
}

export interface JobPage {
  jobs: JobRecord[];
  /** Cursor for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

export interface SucceedJob {
  /** The attempt this run is: `attempts` of the record markRunning or reclaim gave it (the fence, see JobStore). */
  attempt: number;
  result: GenerationResponseBody;
  outputKeys: string[];
  usage: UsageEntry;
  timings: Record<string, number>;
  completedAtMs: number;
}

export interface JobStore {
  /**
   * Writes a new queued job. With `idempotency`, atomically: a key seen before with the same body
   * answers `existing`, with another body `conflict`; otherwise the job and the record are written.
   */
  create(job: NewJob, idempotency?: IdempotencyClaim): Promise<CreateJobOutcome>;
  /** The job an idempotency key points to, without writing anything (lets submit skip the work). */
  findIdempotent(keyId: string, key: string): Promise<{ bodyHash: string; jobId: string } | null>;
  get(id: string): Promise<JobRecord | null>;
  list(query: ListJobsQuery): Promise<JobPage>;
  /** queued → running; counts an attempt. null when the job is not queued (canceled meanwhile). */
  markRunning(id: string, startedAtMs: number): Promise<JobRecord | null>;
  /**
   * The writes of a run are fenced by its attempt (`attempt`: the `attempts` of the record markRunning or
   * reclaim returned): each applies only while the job is running AND still on that attempt. A worker that
   * was frozen (not dead) while another reclaimed its job thus writes nothing when it wakes.
   *
   * Records the progress of a running job; false (nothing written) when the job is no longer running on
   * `attempt`: the caller stops reporting.
   */
  setProgress(id: string, progress: JobProgress, attempt: number): Promise<boolean>;
  /**
   * running on `outcome.attempt` → succeeded, with the ledger row, in one transaction. false when the job
   * was no longer running (canceled meanwhile) or runs on another attempt (reclaimed by another worker):
   * nothing is written, the ledger row neither, and the caller deletes what it stored.
   */
  succeed(id: string, outcome: SucceedJob): Promise<boolean>;
  /**
   * A run's failure (`attempt`: the run's attempt): running on `attempt` → failed. `attempt` null: a
   * failure decided outside any run (the synchronous deadline, stop with an error): queued|running → failed,
   * whatever the attempt. false when nothing was written (already terminal, or on another attempt).
   */
  fail(id: string, error: JobError, completedAtMs: number, attempt: number | null): Promise<boolean>;
  /** queued|running → canceled; the job as it is afterwards (unchanged when already terminal), null when unknown. */
  cancel(id: string, completedAtMs: number): Promise<JobRecord | null>;
  /** running → queued (recovery after a crash). */
  requeue(id: string): Promise<boolean>;
  /**
   * running → running on a new worker, counting an attempt: the queue handed out again a job whose worker
   * stopped mid-run (BullMQ's stalled-job recovery). null when the job is not running (it ended meanwhile).
   */
  reclaim(id: string, startedAtMs: number): Promise<JobRecord | null>;
  /** Jobs in a state, oldest first (recovery at start). */
  listByStatus(status: JobStatus): Promise<JobRecord[]>;
  /**
   * Deletes terminal jobs completed before `beforeMs` and their idempotency records; returns the
   * deleted jobs so the caller can delete their blobs. The ledger keeps its rows.
   */
  deleteCompletedBefore(beforeMs: number, limit: number): Promise<JobRecord[]>;
  /** Every blob key some job lists among its outputs (the orphan sweep at start keeps exactly these). */
  listOutputKeys(): Promise<Set<string>>;
}

export interface JobQueue {
  /**
   * True when several processes share this queue (BullMQ): a job another process is running is not
   * this process's to requeue at start, and the queue itself hands out again the jobs of a worker that
   * stopped (the runner then calls JobStore.reclaim). False for the embedded queue of one process.
   */
  readonly sharedAcrossProcesses: boolean;
  enqueue(jobId: string, model: string): Promise<void>;
  /** Takes the oldest queued job of `model` out of the queue; null when none. */
  claim(model: string): Promise<string | null>;
  /**
   * The claimed job reached a terminal state (or was found not to need running): the queue forgets it.
   * A shared queue holds a claimed job under a lock until then, and gives it to another worker if this
   * process stops renewing that lock. No-op for the embedded queue, where claiming already removed it.
   */
  complete(jobId: string): Promise<void>;
  /** Takes a job out of the queue (cancel); false when it was not there. */
  remove(jobId: string): Promise<boolean>;
  /** Jobs ahead of this one (0 = next); null when not queued. */
  position(jobId: string): Promise<number | null>;
  /** Queued job ids of `model`, in order. */
  list(model: string): Promise<string[]>;
  depth(model: string): Promise<number>;
  has(jobId: string): Promise<boolean>;
  /**
   * Calls `listener` when a job may have become claimable without this process doing anything: another
   * process enqueued one, or a stopped worker's job came back (BullMQ: the queue's `waiting` event).
   * A hint only (it may fire for jobs another worker takes first); returns the unsubscribe function.
   * Absent: the queue cannot tell, and the runner looks again on a timer.
   */
  onAvailable?(listener: () => void): () => void;
}

// ---------------------------------------------------------------- live events
export type JobEvent =
  | { type: 'queued'; jobId: string; position: number }
  | { type: 'running'; jobId: string; attempt: number }
  /** `preview`: a small WebP image (at most 256 px a side) as a data: URI, where the engine gave an intermediate image. */
  | { type: 'progress'; jobId: string; step: number; steps: number | null; preview?: string }
  /**
   * One of the `partialImages` intermediate images a streaming caller asked for (JobParams.partialImages),
   * raw, at the engine's preview size; published before the job's terminal event.
   */
  | { type: 'partial_image'; jobId: string; index: number; image: RawImage }
  | { type: 'succeeded' | 'failed' | 'canceled'; jobId: string };

export interface SubscribeOptions {
  /** Counts as a watcher (default true). */
  watch?: boolean;
}

export interface JobEvents {
  publish(event: JobEvent): void;
  /**
   * Returns the unsubscribe function. `watch: false`: the listener hears the job's events but is not a
   * watcher (the runner listening for a cancel from another process), so on its own it makes no one publish
   * progress or encode previews for the job.
   */
  subscribe(jobId: string, listener: (event: JobEvent) => void, options?: SubscribeOptions): () => void;
  /** Someone, in any process, watches the job (an SSE stream, a synchronous waiter): progress is worth publishing. */
  hasSubscribers(jobId: string): boolean;
  /** Jobs with at least one watcher. */
  watchedJobIds(): string[];
}

// ---------------------------------------------------------------- webhook deliveries (outbox)
/**
 * One message to one webhook URL. Written by the JobStore in the same transaction as the state change
 * it announces, so a crash cannot lose it; sent (and retried) by the webhook dispatcher.
 */
export interface WebhookDelivery {
  /** `msg_<uuid>`: the Standard Webhooks `webhook-id`, the same on every retry. */
  id: string;
  jobId: string;
  keyId: string;
  url: string;
  /** `job.succeeded`, `job.failed`, `job.canceled`, `job.running` */
  eventType: string;
  /** ms since epoch: when the state change happened (the payload's timestamp). */
  createdAtMs: number;
  attempts: number;
  nextAttemptAtMs: number;
  status: 'pending' | 'delivered' | 'failed';
  lastError: string | null;
  /** HTTP status of the last response, null when there was none. */
  lastStatus: number | null;
}

export interface WebhookOutbox {
  /** Pending deliveries due at `nowMs`, oldest first. */
  due(nowMs: number, limit: number): Promise<WebhookDelivery[]>;
  /** The earliest nextAttemptAtMs among pending deliveries; null when none. */
  nextDueAtMs(): Promise<number | null>;
  markDelivered(id: string, attempts: number, httpStatus: number): Promise<void>;
  markRetry(id: string, attempts: number, nextAttemptAtMs: number, error: string, httpStatus: number | null): Promise<void>;
  markFailed(id: string, attempts: number, error: string, httpStatus: number | null): Promise<void>;
  listForJob(jobId: string): Promise<WebhookDelivery[]>;
}
