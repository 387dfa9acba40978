/**
 * The job runner: the one owner of engine capacity. For each model it keeps at most
 * `engine.capacity()` jobs running (the router's summed backend concurrency; ENGINE_CONCURRENCY for
 * an engine that does not declare one), takes the next job from the queue when a slot frees, and
 * refuses new jobs with 503 queue_full once `maxQueued` wait beyond the free slots. The router then
 * only chooses *which* backend draws; it never holds a job the runner did not start.
 *
 * Each run has a deadline (REQUEST_TIMEOUT_MS) and an AbortController that cancel and the synchronous
 * endpoint's deadline fire. Terminal states are written by the store (the ledger row with
 * "succeeded"), then announced on JobEvents. At start, `recover()` puts jobs interrupted by a crash
 * back in the queue (or fails them after `maxAttempts`) and deletes images no job points to.
 */
import { ApiError, isApiError, storageFullError } from '../domain/errors.ts';
import type { JobError, JobRecord } from '../domain/jobs.ts';
import type { BlobStore } from '../domain/ports.ts';
import type { Engine, EngineProgress, RawImage } from '../domain/types.ts';
import type { RunGeneration, RunOutcome } from '../pipeline/run-generation.ts';
import { jobIdOfReference } from '../pipeline/reference-blobs.ts';
import type { JobEvents, JobQueue, JobStore } from './ports.ts';

export interface RunnerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child?(bindings: Record<string, unknown>): RunnerLogger;
}

export interface JobRunnerDeps {
  store: JobStore;
  queue: JobQueue;
  events: JobEvents;
  blobs: BlobStore;
  /** Public model id → engine (for capacity). */
  engines: Map<string, Engine>;
  runGeneration: RunGeneration;
  /** Slots of an engine that does not declare `capacity()`. */
  fallbackConcurrency: number;
  /** Jobs per model that may wait beyond the free slots before submit answers 503. */
  maxQueued: number;
  /** Deadline of one run, from its start. */
  runTimeoutMs: number;
  /** Runs of one job (a crash mid-run counts as one) before it is failed as interrupted. */
  maxAttempts: number;
  logger: RunnerLogger;
  /** Turns an engine's intermediate image into the small data: URI sent with progress events. */
  encodePreview?: (image: RawImage) => Promise<string>;
  /** Called after every state change the store may have written a webhook delivery for. */
  onStateChange?: () => void;
  /** Told when a job starts and when it ends (metrics). */
  observer?: JobObserver;
  now?: () => number;
}

/** How a job ended, as the observer hears it: once per job that reached a terminal state here. */
export type JobEnd = { status: 'succeeded'; outcome: RunOutcome } | { status: 'failed'; code: string } | { status: 'canceled' };

export interface JobObserver {
  /** The runner started it (startedAtMs is set). */
  started(job: JobRecord): void;
  ended(job: JobRecord, end: JobEnd): void;
}

export interface ModelRunStats {
  running: number;
  queued: number;
  /** Slots right now (engine capacity, or the fallback). */
  capacity: number;
  maxQueued: number;
  /** Exponentially weighted mean run time, ms (0 until a job finished). */
  meanRunMs: number;
}

/** Why a run's AbortController fired. */
type AbortCause = { kind: 'cancel' } | { kind: 'fail'; error: ApiError };

interface Running {
  job: JobRecord;
  controller: AbortController;
  cause: AbortCause | null;
}

/** A guess for Retry-After before any job of the model has finished. */
const DEFAULT_RUN_MS = 5000;

export function toJobError(err: ApiError): JobError {
  return { status: err.status, error: err.toBody().error, ...(err.retryAfterS === undefined ? {} : { retryAfterS: err.retryAfterS }) };
}

export function createJobRunner(deps: JobRunnerDeps) {
  const now = deps.now ?? Date.now;
  const running = new Map<string, Running>();
  const runningByModel = new Map<string, number>();
  const meanRunMs = new Map<string, number>();
  const idle = new Set<() => void>();
  let pumping = false;
  let pumpAgain = false;
  let closed = false;

  const capacityOf = (model: string): number => {
    const engine = deps.engines.get(model);
    const declared = engine?.capacity?.();
    if (declared === undefined) return deps.fallbackConcurrency;
    // Nothing available: let one job at a time through, so it fails fast with the engine's reason.
    return declared > 0 ? declared : 1;
  };
  const runningOf = (model: string) => runningByModel.get(model) ?? 0;

  async function stats(model: string): Promise<ModelRunStats> {
    return { running: runningOf(model), queued: await deps.queue.depth(model), capacity: capacityOf(model), maxQueued: deps.maxQueued, meanRunMs: Math.round(meanRunMs.get(model) ?? 0) };
  }

  /** Seconds until a new arrival is likely to start, from measured run times. */
  async function retryAfterS(model: string): Promise<number> {
    const perJob = meanRunMs.get(model) || DEFAULT_RUN_MS;
    const waiting = await deps.queue.depth(model);
    return Math.max(1, Math.ceil((perJob * (waiting + 1)) / capacityOf(model) / 1000));
  }

  /** Throws 503 queue_full when the model's queue is full; call before doing any work for a submit. */
  async function admit(model: string): Promise<void> {
    if (closed) throw new ApiError('server_shutting_down', 'the server is shutting down; retry on another instance', { retryAfterS: 5 });
    const depth = await deps.queue.depth(model);
    const free = Math.max(0, capacityOf(model) - runningOf(model));
    if (depth - free >= deps.maxQueued) {
      throw new ApiError('queue_full', `the ${model} queue is full (${runningOf(model)} running, ${depth} queued); retry later`, {
        retryAfterS: await retryAfterS(model),
      });
    }
  }

  /** Starts queued jobs while their models have free slots. Re-entrant calls coalesce. */
  async function pump(): Promise<void> {
    if (pumping) {
      pumpAgain = true;
      return;
    }
    pumping = true;
    try {
      do {
        pumpAgain = false;
        for (const model of deps.engines.keys()) {
          let moved = false;
          while (!closed && runningOf(model) < capacityOf(model)) {
            const id = await deps.queue.claim(model);
            if (!id) break;
            moved = true;
            const job = await deps.store.markRunning(id, now());
            if (job) start(job);
          }
          if (moved) void announcePositions();
        }
      } while (pumpAgain);
    } catch (err) {
      deps.logger.error({ err }, 'job runner could not take the next job');
    } finally {
      pumping = false;
    }
  }

  /**
   * Tells the waiting jobs someone is watching where they now stand. Only watched jobs are looked
   * up, so a deep queue nobody watches costs nothing per claim.
   */
  async function announcePositions(): Promise<void> {
    for (const jobId of deps.events.watchedJobIds()) {
      const position = await deps.queue.position(jobId);
      if (position !== null) deps.events.publish({ type: 'queued', jobId, position });
    }
  }

  function start(job: JobRecord): void {
    const entry: Running = { job, controller: new AbortController(), cause: null };
    running.set(job.id, entry);
    runningByModel.set(job.model, runningOf(job.model) + 1);
    deps.events.publish({ type: 'running', jobId: job.id, attempt: job.attempts });
    deps.observer?.started(job);
    deps.onStateChange?.();
    void execute(entry).finally(() => {
      running.delete(job.id);
      runningByModel.set(job.model, runningOf(job.model) - 1);
      if (running.size === 0) for (const wake of [...idle]) wake();
      void pump();
    });
  }

  async function execute(entry: Running): Promise<void> {
    const { job, controller } = entry;
    const log = deps.logger.child?.({ requestId: job.requestId, jobId: job.id }) ?? deps.logger;
    const timer = setTimeout(() => {
      abortRun(entry, {
        kind: 'fail',
        error: new ApiError('generation_timeout', `the generation did not finish within ${deps.runTimeoutMs} ms`),
      });
    }, deps.runTimeoutMs);
    const startedAt = performance.now();
    const progress = createProgressReporter(job.id, job.params.partialImages ?? 0);
    try {
      const outcome = await deps.runGeneration(job, { signal: controller.signal, log, onProgress: progress.report });
      const committed = await deps.store.succeed(job.id, {
        result: outcome.result,
        outputKeys: outcome.outputKeys,
        usage: outcome.usage,
        timings: outcome.timings,
        completedAtMs: now(),
      });
      if (!committed) {
        // Canceled while the last stage ran: the image is nobody's.
        await Promise.all(outcome.outputKeys.map((k) => deps.blobs.delete(k)));
        deps.events.publish({ type: 'canceled', jobId: job.id });
        deps.observer?.ended(job, { status: 'canceled' });
        return;
      }
      recordRunTime(job.model, performance.now() - startedAt);
      log.info(
        { model: job.model, width: job.params.width, height: job.params.height, seed: job.params.seed, usd: outcome.usage.usd, timings: outcome.timings, engine: outcome.engineInfo },
        'image generated',
      );
      deps.events.publish({ type: 'succeeded', jobId: job.id });
      deps.observer?.ended(job, { status: 'succeeded', outcome });
    } catch (err) {
      await settleFailure(entry, err, log);
    } finally {
      clearTimeout(timer);
      progress.stop();
      await deleteReferences(job);
      deps.onStateChange?.();
    }
  }

  async function settleFailure(entry: Running, err: unknown, log: RunnerLogger): Promise<void> {
    const { job } = entry;
    const cause = entry.cause;
    if (cause?.kind === 'cancel') {
      // The store was marked canceled by cancel(); here the engine has stopped.
      log.info({ model: job.model }, 'job canceled while running');
      deps.events.publish({ type: 'canceled', jobId: job.id });
      deps.observer?.ended(job, { status: 'canceled' });
      return;
    }
    const error =
      cause?.kind === 'fail'
        ? cause.error
        : isApiError(err)
          ? err
          : (storageFullError(err) ?? new ApiError('internal_error', `internal error while generating (job ${job.id})`));
    if (error.status >= 500 && !isApiError(err) && cause === null) log.error({ err }, 'job failed with an unexpected error');
    else log.info({ code: error.code, status: error.status }, error.message);
    if (await deps.store.fail(job.id, toJobError(error), now())) {
      deps.events.publish({ type: 'failed', jobId: job.id });
      deps.observer?.ended(job, { status: 'failed', code: error.code });
    }
  }

  function abortRun(entry: Running, cause: AbortCause): void {
    if (entry.cause) return;
    entry.cause = cause;
    entry.controller.abort(cause.kind === 'fail' ? cause.error : new Error('job canceled'));
  }

  /**
   * Progress to the store and to watchers. Previews are encoded off the engine's path, one at a
   * time (frames arriving meanwhile are dropped); a finished preview rides on the next progress
   * event, so watchers always see steps in order.
   */
  function createProgressReporter(jobId: string, partialImages: number) {
    let stopped = false;
    let partialsSent = 0;
    let encoding = false;
    let lastStep = -1;
    let ready: string | undefined;
    return {
      stop: () => {
        stopped = true;
      },
      report: (p: EngineProgress): void => {
        if (stopped) return;
        // Partial images at evenly spaced steps (for 2 of 20 steps: the first previews at or after steps 7 and 14).
        if (p.preview && partialsSent < partialImages && p.step >= Math.ceil((p.totalSteps * (partialsSent + 1)) / (partialImages + 1))) {
          deps.events.publish({ type: 'partial_image', jobId, index: partialsSent++, image: p.preview });
        }
        // ComfyUI reports a step, then its preview as a second report of the same step.
        if (p.step !== lastStep) {
          lastStep = p.step;
          const steps = Number.isFinite(p.totalSteps) && p.totalSteps > 0 ? p.totalSteps : null;
          void deps.store.setProgress(jobId, { step: p.step, steps }).catch((err: unknown) => deps.logger.warn({ err, jobId }, 'could not record progress'));
          if (!deps.events.hasSubscribers(jobId)) return;
          const preview = ready;
          ready = undefined;
          deps.events.publish({ type: 'progress', jobId, step: p.step, steps, ...(preview ? { preview } : {}) });
        }
        if (!p.preview || !deps.encodePreview || encoding || !deps.events.hasSubscribers(jobId)) return;
        encoding = true;
        deps.encodePreview(p.preview).then(
          (uri) => {
            encoding = false;
            ready = uri;
          },
          (err: unknown) => {
            encoding = false;
            deps.logger.warn({ err, jobId }, 'could not encode a preview');
          },
        );
      },
    };
  }

  function recordRunTime(model: string, ms: number): void {
    const prev = meanRunMs.get(model);
    meanRunMs.set(model, prev === undefined ? ms : prev * 0.8 + ms * 0.2);
  }

  async function deleteReferences(job: JobRecord): Promise<void> {
    await Promise.all(job.params.referenceKeys.map((k) => deps.blobs.delete(k))).catch((err: unknown) =>
      deps.logger.warn({ err, jobId: job.id }, 'could not delete the job reference images'),
    );
  }

  /**
   * Ends a job that has not finished: a queued one at once, a running one by aborting its engine.
   * `error` absent: canceled (never charged); present: failed with that error (the synchronous
   * endpoint's deadline). Returns the job as it is afterwards; null when unknown.
   */
  async function stop(jobId: string, error?: ApiError): Promise<JobRecord | null> {
    const entry = running.get(jobId);
    if (entry) {
      if (error) abortRun(entry, { kind: 'fail', error });
      else {
        // Write "canceled" first so that a result arriving meanwhile cannot commit.
        await deps.store.cancel(jobId, now());
        abortRun(entry, { kind: 'cancel' });
        deps.onStateChange?.();
      }
      return deps.store.get(jobId);
    }
    const job = await deps.store.get(jobId);
    if (!job || (job.status !== 'queued' && job.status !== 'running')) return job;
    await deps.queue.remove(jobId);
    let changed: boolean;
    if (error) changed = await deps.store.fail(jobId, toJobError(error), now());
    else changed = (await deps.store.cancel(jobId, now()))?.status === 'canceled';
    if (changed) {
      deps.events.publish({ type: error ? 'failed' : 'canceled', jobId });
      deps.observer?.ended(job, error ? { status: 'failed', code: error.code } : { status: 'canceled' });
      await deleteReferences(job);
      deps.onStateChange?.();
      void announcePositions();
    }
    return deps.store.get(jobId);
  }

  /** At start: jobs left running by a crash run again (or fail after maxAttempts); every queued job is in the queue; orphans go. */
  async function recover(): Promise<{ requeued: number; failed: number; orphansDeleted: number }> {
    let requeued = 0;
    let failed = 0;
    for (const job of await deps.store.listByStatus('running')) {
      if (job.attempts >= deps.maxAttempts) {
        const error = new ApiError('job_interrupted', `the server stopped while this job was running, ${job.attempts} time(s); it was not retried again`);
        if (await deps.store.fail(job.id, toJobError(error), now())) {
          failed++;
          deps.observer?.ended(job, { status: 'failed', code: error.code });
        }
        await deleteReferences(job);
      } else if (await deps.store.requeue(job.id)) {
        await deps.queue.enqueue(job.id, job.model);
        requeued++;
      }
    }
    for (const job of await deps.store.listByStatus('queued')) {
      if (!(await deps.queue.has(job.id))) await deps.queue.enqueue(job.id, job.model);
    }
    const orphansDeleted = await sweepOrphans();
    if (requeued + failed + orphansDeleted > 0) deps.logger.info({ requeued, failed, orphansDeleted }, 'recovered jobs after a restart');
    deps.onStateChange?.();
    return { requeued, failed, orphansDeleted };
  }

  /** Images written by a run that never committed (a crash between store and commit), and references of finished jobs. */
  async function sweepOrphans(): Promise<number> {
    let deleted = 0;
    const kept = await deps.store.listOutputKeys();
    for (const key of await deps.blobs.list('generations/')) {
      if (!kept.has(key)) {
        await deps.blobs.delete(key);
        deleted++;
      }
    }
    const pending = new Set([...(await deps.store.listByStatus('queued')), ...(await deps.store.listByStatus('running'))].map((j) => j.id));
    for (const key of await deps.blobs.list('inputs/')) {
      const jobId = jobIdOfReference(key);
      if (!jobId || !pending.has(jobId)) {
        await deps.blobs.delete(key);
        deleted++;
      }
    }
    return deleted;
  }

  return {
    admit,
    pump,
    stop,
    recover,
    stats,
    retryAfterS,
    isRunningHere: (jobId: string) => running.has(jobId),
    /** Stops taking jobs and waits for the running ones to end (queued jobs stay for the next start). */
    async close(): Promise<void> {
      closed = true;
      if (running.size === 0) return;
      await new Promise<void>((resolve) => idle.add(resolve));
    },
  };
}

export type JobRunner = ReturnType<typeof createJobRunner>;
