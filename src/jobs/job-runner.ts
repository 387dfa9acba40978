/**
 * The job runner: the one owner of engine capacity in its process. For each model it keeps at most
 * `engine.capacity()` jobs running (the router's summed backend concurrency; ENGINE_CONCURRENCY for
 * an engine that does not declare one), takes the next job from the queue when a slot frees, and
 * refuses new jobs with 503 queue_full once `maxQueued` wait beyond the free slots (job-control.ts).
 * The router then only chooses *which* backend draws; it never holds a job the runner did not start.
 *
 * Each run has a deadline (REQUEST_TIMEOUT_MS) and an AbortController that cancel and the synchronous
 * endpoint's deadline fire. Terminal states are written by the store (the ledger row with
 * "succeeded"), then announced on JobEvents, and the queue is told the claimed job is done.
 * `recover()` at start: job-recovery.ts.
 *
 * A queue shared across processes (BullMQ) adds three duties:
 * - a job it hands out that the store already has running, and that does not run here, belongs to a
 *   worker that stopped: it is reclaimed (or failed as interrupted after maxAttempts). Every store write
 *   of a run is fenced by its attempt (ports.ts): a worker that was only frozen and wakes after the
 *   takeover writes nothing (no success, no charge, no failure, no progress), deletes its images, and
 *   leaves the job, its references and its queue claim to the attempt that owns it now;
 * - a job stopped by another process (cancel, or the synchronous deadline there) is announced on
 *   JobEvents; the runner listens for each job it runs and aborts the engine;
 * - jobs enqueued elsewhere are found through `queue.onAvailable` when the queue has it, and by
 *   polling every `pollIntervalMs` in any case (a missed notification costs one interval, no more).
 */
import { ApiError, isApiError, storageFullError } from '../domain/errors.ts';
import type { JobRecord } from '../domain/jobs.ts';
import type { RawImage } from '../domain/types.ts';
import type { RunGeneration } from '../pipeline/run-generation.ts';
import { capacityOf, createJobControl, deleteReferences, toJobError, type JobControlDeps, type LocalRuns, type RunnerLogger } from './job-control.ts';
import { createProgressReporter } from './job-progress.ts';
import { failInterrupted, recoverJobs, sweepQueue, type QueueSweepReport, type RecoveryReport } from './job-recovery.ts';

export { toJobError, type JobEnd, type JobObserver, type ModelRunStats, type RunnerLogger } from './job-control.ts';

export interface JobRunnerDeps extends JobControlDeps {
  runGeneration: RunGeneration;
  /** Deadline of one run, from its start. */
  runTimeoutMs: number;
  /** Runs of one job (a crash mid-run counts as one) before it is failed as interrupted. */
  maxAttempts: number;
  /** Turns an engine's intermediate image into the small data: URI sent with progress events. */
  encodePreview?: (image: RawImage) => Promise<string>;
  /**
   * Looks at the queue this often (ms) once `start()`ed, for jobs other processes enqueued; undefined:
   * only when told (submit in this process, a job ending here, `queue.onAvailable`).
   */
  pollIntervalMs?: number;
  /**
   * A shared queue only: every this many ms once `start()`ed, puts back the jobs the queue lost while the
   * store still holds them (`sweepQueue` in job-recovery.ts; a Redis restart without persistence), queued
   * jobs at least this old. Undefined: only `recover()` at start does.
   */
  queueSweepMs?: number;
  /**
   * Other processes write to the same store and blobs (default: when the queue is shared); the orphan
   * sweep of `recover()` then keeps what they may still use (job-recovery.ts).
   */
  othersWrite?: boolean;
}

/**
 * Why a run's AbortController fired. `elsewhere`: another process ended the job and said so. `fail` with
 * `stopped`: stop() with an error (the synchronous deadline), a decision about the job rather than this run,
 * so its failure is written whatever attempt runs the job (as stop() does for a job not running here).
 */
type AbortCause = { kind: 'cancel' } | { kind: 'fail'; error: ApiError; stopped?: true } | { kind: 'elsewhere'; status: 'canceled' | 'failed' };

interface Running {
  job: JobRecord;
  controller: AbortController;
  cause: AbortCause | null;
  /** Another attempt owns the job now (reclaimed by another worker while this run was frozen): known once a write of this run was refused. */
  superseded: boolean;
}

export function createJobRunner(deps: JobRunnerDeps) {
  const now = deps.now ?? Date.now;
  const shared = deps.queue.sharedAcrossProcesses;
  const running = new Map<string, Running>();
  const runningByModel = new Map<string, number>();
  const meanRunMs = new Map<string, number>();
  const idle = new Set<() => void>();
  let pumping = false;
  let pumpAgain = false;
  let closed = false;
  let pollTimer: NodeJS.Timeout | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<QueueSweepReport> | null = null;
  let stopListening: (() => void) | undefined;

  const runningOf = (model: string) => runningByModel.get(model) ?? 0;
  const capacity = (model: string) => capacityOf(deps, model);

  const local: LocalRuns = {
    runningOf,
    meanRunMs: (model) => meanRunMs.get(model),
    isRunning: (jobId) => running.has(jobId),
    isClosed: () => closed,
    pump: () => pump(),
    async stopRunning(jobId, error) {
      const entry = running.get(jobId);
      if (!entry) return;
      if (error) return abortRun(entry, { kind: 'fail', error, stopped: true });
      // Write "canceled" first so that a result arriving meanwhile cannot commit.
      await deps.store.cancel(jobId, now());
      abortRun(entry, { kind: 'cancel' });
      deps.onStateChange?.();
    },
  };
  const control = createJobControl(deps, local);

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
          // A shared queue's worker claims only what the shared backend slots can take now: a job claimed
          // beyond them would wait in the router, `running`, while another worker's queue could have run it.
          const engine = deps.engines.get(model);
          let sharedFree = deps.queue.sharedAcrossProcesses && engine?.sharedFreeSlots ? await engine.sharedFreeSlots(runningOf(model)) : Infinity;
          while (!closed && runningOf(model) < capacity(model) && sharedFree > 0) {
            sharedFree--;
            const id = await deps.queue.claim(model);
            if (!id) break;
            moved = true;
            const job = await deps.store.markRunning(id, now());
            if (job) start(job);
            else await takeOver(id);
          }
          if (moved) void control.announcePositions();
        }
      } while (pumpAgain);
    } catch (err) {
      deps.logger.error({ err }, 'job runner could not take the next job');
    } finally {
      pumping = false;
    }
  }

  /**
   * The queue handed out a job that is not queued in the store. Running, and not here: its worker
   * stopped (a shared queue gives a job out again once its lock expires), so it runs here, as one
   * more attempt. Anything else (canceled while it waited, unknown): the queue forgets it.
   */
  async function takeOver(id: string): Promise<void> {
    if (running.has(id)) return; // still ours: the queue is told when it ends
    const job = await deps.store.get(id);
    if (job?.status === 'running') {
      if (job.attempts >= deps.maxAttempts) {
        if (await failInterrupted({ ...deps, now }, job)) {
          deps.logger.info({ jobId: id, attempts: job.attempts }, 'job failed: its worker stopped on every attempt');
          deps.events.publish({ type: 'failed', jobId: id });
          deps.onStateChange?.();
        }
      } else {
        const reclaimed = await deps.store.reclaim(id, now());
        if (reclaimed) {
          deps.logger.info({ jobId: id, attempt: reclaimed.attempts }, 'job taken over from a worker that stopped');
          start(reclaimed);
          return;
        }
      }
    }
    await completeInQueue(id);
  }

  async function completeInQueue(jobId: string): Promise<void> {
    await deps.queue.complete(jobId).catch((err: unknown) => deps.logger.warn({ err, jobId }, 'could not tell the queue the job is done'));
  }

  function start(job: JobRecord): void {
    const entry: Running = { job, controller: new AbortController(), cause: null, superseded: false };
    running.set(job.id, entry);
    runningByModel.set(job.model, runningOf(job.model) + 1);
    const unwatch = shared ? watchForEndElsewhere(entry) : undefined;
    deps.events.publish({ type: 'running', jobId: job.id, attempt: job.attempts });
    deps.observer?.started(job);
    deps.onStateChange?.();
    void execute(entry)
      .finally(async () => {
        unwatch?.();
        // A superseded run does not complete: the queue's claim is the new attempt's now, and `complete`
        // names only the job (the port has no claim to tell them apart), so it would end the new owner's
        // claim. BullMQ refuses it anyway (the new owner's lock token differs), and this process's stale
        // claim (it lost the lock before the job was handed out again) is dropped there (renew).
        if (!entry.superseded) await completeInQueue(job.id);
      })
      .finally(() => {
        running.delete(job.id);
        runningByModel.set(job.model, runningOf(job.model) - 1);
        if (running.size === 0) for (const wake of [...idle]) wake();
        void pump();
      });
  }

  /**
   * Another process ended this job (POST /v1/jobs/{id}/cancel or a synchronous deadline on an `api`
   * process): it wrote the state, then published it. Events this process published itself come after
   * the run has a cause, and are ignored.
   */
  function watchForEndElsewhere(entry: Running): () => void {
    return deps.events.subscribe(entry.job.id, (event) => {
      if (entry.cause || (event.type !== 'canceled' && event.type !== 'failed')) return;
      abortRun(entry, { kind: 'elsewhere', status: event.type });
      // Not a watcher: on its own this listener makes nobody publish progress or encode previews.
    }, { watch: false });
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
    const progress = createProgressReporter(deps, job.id, job.attempts, job.params.partialImages ?? 0);
    /** This run wrote the job's terminal state itself (succeeded, or failed). */
    let ended = false;
    /** The job as the store has it after this run, once looked up; undefined while not. */
    let after: JobRecord | null | undefined;
    try {
      const outcome = await deps.runGeneration(job, { signal: controller.signal, log, onProgress: progress.report });
      const committed = await deps.store.succeed(job.id, {
        attempt: job.attempts,
        result: outcome.result,
        outputKeys: outcome.outputKeys,
        usage: outcome.usage,
        timings: outcome.timings,
        completedAtMs: now(),
      });
      if (!committed) {
        // No longer this run's: canceled while the last stage ran, or (shared queue) taken over by another
        // worker as its next attempt, which may have committed already. Either way the images are nobody's.
        await Promise.all(outcome.outputKeys.map((k) => deps.blobs.delete(k)));
        after = await deps.store.get(job.id);
        entry.superseded = supersededBy(job, after);
        log.info({ model: job.model, status: after?.status, superseded: entry.superseded }, 'the run finished after the job had ended or was taken over; its images were deleted');
        if (after?.status === 'canceled' && !entry.superseded && entry.cause?.kind !== 'elsewhere') {
          deps.events.publish({ type: 'canceled', jobId: job.id });
          deps.observer?.ended(job, { status: 'canceled' });
        }
        return;
      }
      ended = true;
      recordRunTime(job.model, performance.now() - startedAt);
      log.info(
        { model: job.model, width: job.params.width, height: job.params.height, seed: job.params.seed, usd: outcome.usage.usd, timings: outcome.timings, engine: outcome.engineInfo },
        'image generated',
      );
      deps.events.publish({ type: 'succeeded', jobId: job.id });
      deps.observer?.ended(job, { status: 'succeeded', outcome });
    } catch (err) {
      ended = await settleFailure(entry, err, log);
    } finally {
      clearTimeout(timer);
      progress.stop();
      if (!ended && after === undefined) {
        after = await deps.store.get(job.id).catch((err: unknown) => {
          log.warn({ err }, 'could not read the job after its run');
          return null;
        });
        entry.superseded = supersededBy(job, after);
      }
      // The references are the job's: a superseded run leaves them to the attempt that owns it now.
      if (!entry.superseded) await deleteReferences(deps, job);
      deps.onStateChange?.();
    }
  }

  /** Whether the job, as the store has it now, is on another attempt than the run of `job`. */
  function supersededBy(job: JobRecord, current: JobRecord | null): boolean {
    return current !== null && current.attempts !== job.attempts;
  }

  /** True when this call wrote "failed". */
  async function settleFailure(entry: Running, err: unknown, log: RunnerLogger): Promise<boolean> {
    const { job } = entry;
    const cause = entry.cause;
    if (cause?.kind === 'elsewhere') {
      // The process that ended it wrote the state, published it and counted it.
      log.info({ model: job.model, status: cause.status }, 'job ended by another process while running here');
      return false;
    }
    if (cause?.kind === 'cancel') {
      // The store was marked canceled by stop(); here the engine has stopped.
      log.info({ model: job.model }, 'job canceled while running');
      deps.events.publish({ type: 'canceled', jobId: job.id });
      deps.observer?.ended(job, { status: 'canceled' });
      return false;
    }
    const error =
      cause?.kind === 'fail'
        ? cause.error
        : isApiError(err)
          ? err
          : (storageFullError(err) ?? new ApiError('internal_error', `internal error while generating (job ${job.id})`));
    if (error.status >= 500 && !isApiError(err) && cause === null) log.error({ err }, 'job failed with an unexpected error');
    else log.info({ code: error.code, status: error.status }, error.message);
    // Fenced by this run's attempt: refused (false, nothing published) when the job ended meanwhile or another attempt owns it.
    const attempt = cause?.kind === 'fail' && cause.stopped ? null : job.attempts;
    if (!(await deps.store.fail(job.id, toJobError(error), now(), attempt))) return false;
    deps.events.publish({ type: 'failed', jobId: job.id });
    deps.observer?.ended(job, { status: 'failed', code: error.code });
    return true;
  }

  function abortRun(entry: Running, cause: AbortCause): void {
    if (entry.cause) return;
    entry.cause = cause;
    entry.controller.abort(cause.kind === 'fail' ? cause.error : new Error(`job ${cause.kind === 'elsewhere' ? cause.status : 'canceled'}`));
  }

  function recordRunTime(model: string, ms: number): void {
    const prev = meanRunMs.get(model);
    meanRunMs.set(model, prev === undefined ? ms : prev * 0.8 + ms * 0.2);
  }

  async function recover(): Promise<RecoveryReport> {
    const report = await recoverJobs({ ...deps, othersWrite: deps.othersWrite ?? shared, now });
    deps.onStateChange?.();
    return report;
  }

  /** One sweep at a time; a tick that finds one still going waits for it. */
  function sweep(): Promise<QueueSweepReport> {
    sweeping ??= sweepQueue({ ...deps, now, isRunningHere: (id) => running.has(id) }, deps.queueSweepMs ?? 0)
      .then(async (report) => {
        if (report.enqueued + report.requeued + report.failed > 0) {
          deps.onStateChange?.();
          await pump();
        }
        return report;
      })
      .finally(() => {
        sweeping = null;
      });
    return sweeping;
  }

  return {
    admit: control.admit,
    stop: control.stop,
    stats: control.stats,
    retryAfterS: control.retryAfterS,
    isRunningHere: control.isRunningHere,
    pump,
    recover,
    /** The periodic sweep of a shared queue, once now (tests; `start()` runs it every `queueSweepMs`). */
    sweep,
    /**
     * Takes jobs from now on: those already queued, those the queue announces (`onAvailable`), and
     * what polling finds (`pollIntervalMs`). Call after `recover()`.
     */
    start(): void {
      if (closed) return;
      stopListening ??= deps.queue.onAvailable?.(() => void pump());
      if (deps.pollIntervalMs !== undefined && !pollTimer) {
        pollTimer = setInterval(() => void pump(), deps.pollIntervalMs);
        pollTimer.unref();
      }
      if (shared && deps.queueSweepMs !== undefined && !sweepTimer) {
        sweepTimer = setInterval(() => {
          sweep().catch((err: unknown) => deps.logger.error({ err }, 'could not compare the queue with the job store'));
        }, deps.queueSweepMs);
        sweepTimer.unref();
      }
      void pump();
    },
    /** Stops taking jobs and waits for the running ones to end (queued jobs stay for the next start). */
    async close(): Promise<void> {
      closed = true;
      clearInterval(pollTimer);
      clearInterval(sweepTimer);
      stopListening?.();
      await control.close();
      if (running.size === 0) return;
      await new Promise<void>((resolve) => idle.add(resolve));
    },
  };
}

export type JobRunner = ReturnType<typeof createJobRunner>;
