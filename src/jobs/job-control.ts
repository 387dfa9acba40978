/**
 * What every process that serves the API needs from the job system, whether or not it runs jobs:
 * admission (503 queue_full from the queue depth), stop (cancel, or fail at the synchronous deadline),
 * the per-model statistics and Retry-After. It never claims a job: an `api` process (ROLE=api) uses it
 * alone; the job runner (job-runner.ts) gives it a view of the jobs running in its own process.
 *
 * A job running in another process is stopped through the store and the events: "canceled" (or
 * "failed") is written, then published on JobEvents, where the runner that has the job aborts its
 * engine (job-runner.ts, `watchForEndElsewhere`).
 */
import { ApiError } from '../domain/errors.ts';
import type { JobError, JobRecord } from '../domain/jobs.ts';
import type { BlobStore } from '../domain/ports.ts';
import type { Engine } from '../domain/types.ts';
import type { RunOutcome } from '../pipeline/run-generation.ts';
import type { JobEvents, JobQueue, JobStore } from './ports.ts';

export interface RunnerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child?(bindings: Record<string, unknown>): RunnerLogger;
}

/** How a job ended, as the observer hears it: once per job that reached a terminal state here. */
export type JobEnd = { status: 'succeeded'; outcome: RunOutcome } | { status: 'failed'; code: string } | { status: 'canceled' };

export interface JobObserver {
  /** The runner started it (startedAtMs is set). */
  started(job: JobRecord): void;
  ended(job: JobRecord, end: JobEnd): void;
}

export interface ModelRunStats {
  /** Jobs of the model running in this process (an `api` process: 0). */
  running: number;
  queued: number;
  /** Slots right now (engine capacity, or the fallback). */
  capacity: number;
  maxQueued: number;
  /** Exponentially weighted mean run time, ms (0 until a job finished here). */
  meanRunMs: number;
}

export interface JobControlDeps {
  store: JobStore;
  queue: JobQueue;
  events: JobEvents;
  blobs: BlobStore;
  /** Public model id → engine (for capacity); an `api` process passes its model catalogue. */
  engines: Map<string, Engine>;
  /** Slots of an engine that does not declare `capacity()`. */
  fallbackConcurrency: number;
  /** Jobs per model that may wait beyond the free slots before submit answers 503. */
  maxQueued: number;
  logger: RunnerLogger;
  /** Called after every state change the store may have written a webhook delivery for. */
  onStateChange?: () => void;
  observer?: JobObserver;
  now?: () => number;
}

/** The jobs running in this process, as the runner shows them to the control. */
export interface LocalRuns {
  runningOf(model: string): number;
  /** ms; undefined until a job of the model finished here. */
  meanRunMs(model: string): number | undefined;
  isRunning(jobId: string): boolean;
  /**
   * Ends a job running here. Cancel (`error` absent): "canceled" is written before it returns, then the
   * engine is aborted. Fail: the engine is aborted and the run writes the failure as it ends.
   */
  stopRunning(jobId: string, error?: ApiError): Promise<void>;
  /** The runner is shutting down (no new jobs are admitted). */
  isClosed(): boolean;
  /** A job was just enqueued here: start it if a slot is free. */
  pump(): Promise<void>;
}

/** A guess for Retry-After before any job of the model has finished. */
const DEFAULT_RUN_MS = 5000;

export function toJobError(err: ApiError): JobError {
  return { status: err.status, error: err.toBody().error, ...(err.retryAfterS === undefined ? {} : { retryAfterS: err.retryAfterS }) };
}

export function capacityOf(deps: Pick<JobControlDeps, 'engines' | 'fallbackConcurrency'>, model: string): number {
  const declared = deps.engines.get(model)?.capacity?.();
  if (declared === undefined) return deps.fallbackConcurrency;
  // Nothing available: let one job at a time through, so it fails fast with the engine's reason.
  return declared > 0 ? declared : 1;
}

export async function deleteReferences(deps: Pick<JobControlDeps, 'blobs' | 'logger'>, job: JobRecord): Promise<void> {
  await Promise.all(job.params.referenceKeys.map((k) => deps.blobs.delete(k))).catch((err: unknown) =>
    deps.logger.warn({ err, jobId: job.id }, 'could not delete the job reference images'),
  );
}

/**
 * `local` absent: a process that runs no job (ROLE=api). It cannot see which slots are free on the
 * workers, so it counts them all free: it refuses once more than capacity + maxQueued jobs wait, the
 * bound a single process applies when every slot is free (and never tighter than it).
 */
export function createJobControl(deps: JobControlDeps, local?: LocalRuns) {
  const now = deps.now ?? Date.now;
  let closed = false;
  const runningOf = (model: string) => local?.runningOf(model) ?? 0;
  const capacity = (model: string) => capacityOf(deps, model);

  async function stats(model: string): Promise<ModelRunStats> {
    return {
      running: runningOf(model),
      queued: await deps.queue.depth(model),
      capacity: capacity(model),
      maxQueued: deps.maxQueued,
      meanRunMs: Math.round(local?.meanRunMs(model) ?? 0),
    };
  }

  /** Seconds until a new arrival is likely to start, from measured run times. */
  async function retryAfterS(model: string): Promise<number> {
    const perJob = local?.meanRunMs(model) || DEFAULT_RUN_MS;
    const waiting = await deps.queue.depth(model);
    return Math.max(1, Math.ceil((perJob * (waiting + 1)) / capacity(model) / 1000));
  }

  /** Throws 503 queue_full when the model's queue is full; call before doing any work for a submit. */
  async function admit(model: string): Promise<void> {
    if (closed || local?.isClosed()) throw new ApiError('server_shutting_down', 'the server is shutting down; retry on another instance', { retryAfterS: 5 });
    const depth = await deps.queue.depth(model);
    const free = Math.max(0, capacity(model) - runningOf(model));
    if (depth - free >= deps.maxQueued) {
      const where = local ? `${runningOf(model)} running, ${depth} queued` : `${depth} queued`;
      throw new ApiError('queue_full', `the ${model} queue is full (${where}); retry later`, { retryAfterS: await retryAfterS(model) });
    }
  }

  /** Tells the waiting jobs someone is watching where they now stand. */
  async function announcePositions(): Promise<void> {
    for (const jobId of deps.events.watchedJobIds()) {
      const position = await deps.queue.position(jobId);
      if (position !== null) deps.events.publish({ type: 'queued', jobId, position });
    }
  }

  /**
   * Ends a job that has not finished: a queued one at once, a running one by aborting its engine (here,
   * or through the events where another process runs it). `error` absent: canceled (never charged);
   * present: failed with that error (the synchronous endpoint's deadline). Returns the job as it is
   * afterwards; null when unknown.
   */
  async function stop(jobId: string, error?: ApiError): Promise<JobRecord | null> {
    if (local?.isRunning(jobId)) {
      await local.stopRunning(jobId, error);
      return deps.store.get(jobId);
    }
    const job = await deps.store.get(jobId);
    if (!job || (job.status !== 'queued' && job.status !== 'running')) return job;
    await deps.queue.remove(jobId);
    let changed: boolean;
    // Not a run's failure: whichever attempt runs it (or none yet), the job fails.
    if (error) changed = await deps.store.fail(jobId, toJobError(error), now(), null);
    else changed = (await deps.store.cancel(jobId, now()))?.status === 'canceled';
    if (changed) {
      deps.events.publish({ type: error ? 'failed' : 'canceled', jobId });
      deps.observer?.ended(job, error ? { status: 'failed', code: error.code } : { status: 'canceled' });
      await deleteReferences(deps, job);
      deps.onStateChange?.();
      void announcePositions();
    }
    return deps.store.get(jobId);
  }

  return {
    admit,
    stop,
    stats,
    retryAfterS,
    announcePositions,
    isRunningHere: (jobId: string) => local?.isRunning(jobId) ?? false,
    /** Submit calls this after enqueueing: the local runner takes the job if it can; with none, a worker will. */
    pump: async (): Promise<void> => {
      await local?.pump();
    },
    /** Stops admitting (shutdown). */
    close: async (): Promise<void> => {
      closed = true;
    },
  };
}

export type JobControl = ReturnType<typeof createJobControl>;
