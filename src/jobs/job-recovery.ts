/**
 * What a runner does once at start, before it takes jobs: jobs left running by a crash run again (or
 * fail after maxAttempts), every queued job is in the queue, and blobs nobody will use are deleted.
 *
 * With a queue shared across processes (BullMQ), a job marked running may belong to a live worker on
 * another machine: it is left alone, and the queue itself hands a dead worker's job out again after its
 * lock expires (the runner then reclaims it, job-runner.ts). When other processes write to the same
 * store and blobs (a shared queue, or ROLE=worker next to an `api` process), the orphan sweep keeps
 * what they may still commit or read:
 * - a generated image is deleted only when no job lists it AND its name says it was written more
 *   than twice the run deadline ago (run-generation.ts names it `generations/<ms>-<uuid>.<ext>`; a run
 *   commits before its deadline, so an older unlisted image can no longer become a job's);
 * - a reference is deleted only when its job exists and has ended (submit stores the references
 *   before it writes the job, so "no such job" may be a submit in flight on an `api` process).
 * What the restricted sweep leaves (references of a submit that crashed before writing its job) stays
 * until a start without other writers, or an operator's cleanup.
 */
import { ApiError } from '../domain/errors.ts';
import { isTerminal, type JobRecord } from '../domain/jobs.ts';
import type { BlobStore } from '../domain/ports.ts';
import { jobIdOfReference } from '../pipeline/reference-blobs.ts';
import { deleteReferences, toJobError, type JobObserver, type RunnerLogger } from './job-control.ts';
import type { JobEvents, JobQueue, JobStore } from './ports.ts';

export interface RecoveryDeps {
  store: JobStore;
  queue: JobQueue;
  blobs: BlobStore;
  logger: RunnerLogger;
  maxAttempts: number;
  /** Deadline of one run (the shared sweep keeps images younger than twice this). */
  runTimeoutMs: number;
  /** Other processes write to the same store and blobs: sweep only what they cannot still use. */
  othersWrite: boolean;
  observer?: JobObserver;
  now: () => number;
}

export interface RecoveryReport {
  requeued: number;
  failed: number;
  /** Jobs marked running that were left to the live workers running them (shared queue). */
  leftRunning: number;
  orphansDeleted: number;
}

/**
 * A queued job missing from a shared queue is enqueued only once it is this old: submit on another
 * process writes the job, then enqueues it, a few ms apart; enqueueing it here in between could have it
 * claimed twice.
 */
const SUBMIT_IN_FLIGHT_MS = 60_000;

export function interruptedError(attempts: number): ApiError {
  return new ApiError('job_interrupted', `the server stopped while this job was running, ${attempts} time(s); it was not retried again`);
}

/**
 * Fails a job whose runs were all interrupted; true when this call wrote it. Fenced by the attempt `job`
 * was read at: a job another worker reclaimed since (its next attempt) is not failed under it.
 */
export async function failInterrupted(deps: Pick<RecoveryDeps, 'store' | 'blobs' | 'logger' | 'observer' | 'now'>, job: JobRecord): Promise<boolean> {
  const error = interruptedError(job.attempts);
  const written = await deps.store.fail(job.id, toJobError(error), deps.now(), job.attempts);
  if (written) deps.observer?.ended(job, { status: 'failed', code: error.code });
  await deleteReferences(deps, job);
  return written;
}

export async function recoverJobs(deps: RecoveryDeps): Promise<RecoveryReport> {
  const shared = deps.queue.sharedAcrossProcesses;
  let requeued = 0;
  let failed = 0;
  let leftRunning = 0;
  for (const job of await deps.store.listByStatus('running')) {
    if (shared) {
      leftRunning++;
    } else if (job.attempts >= deps.maxAttempts) {
      if (await failInterrupted(deps, job)) failed++;
    } else if (await deps.store.requeue(job.id)) {
      await deps.queue.enqueue(job.id, job.model);
      requeued++;
    }
  }
  await enqueueMissing(deps, shared ? SUBMIT_IN_FLIGHT_MS : 0);
  const orphansDeleted = await sweepOrphans(deps);
  if (requeued + failed + orphansDeleted > 0) deps.logger.info({ requeued, failed, leftRunning, orphansDeleted }, 'recovered jobs after a restart');
  return { requeued, failed, leftRunning, orphansDeleted };
}

/** Puts back into the queue every queued job of the store that the queue lacks and is at least `graceMs` old; returns how many. */
async function enqueueMissing(deps: Pick<RecoveryDeps, 'store' | 'queue' | 'now'>, graceMs: number): Promise<number> {
  let enqueued = 0;
  for (const job of await deps.store.listByStatus('queued')) {
    if (deps.now() - job.createdAtMs < graceMs) continue;
    if (await deps.queue.has(job.id)) continue;
    await deps.queue.enqueue(job.id, job.model);
    enqueued++;
  }
  return enqueued;
}

export interface QueueSweepReport {
  /** Queued jobs the queue had lost, enqueued again. */
  enqueued: number;
  /** Running jobs nobody can be running any more (past twice the run deadline, not in the queue), queued again. */
  requeued: number;
  /** The same, already at maxAttempts: failed as interrupted. */
  failed: number;
}

/**
 * What a worker of a shared queue does every JOB_QUEUE_SWEEP_MS while it runs: the store is the durable
 * record and the queue (Redis) may lose what it held, as a Redis restart without persistence does.
 * - A queued job the queue lacks, at least `graceMs` old (a submit writes the job, then enqueues it), is
 *   enqueued again. Enqueueing a job BullMQ still holds is a no-op, so a race costs nothing.
 * - A running job started more than twice the run deadline ago (a run ends by its deadline, so no live
 *   worker is running it) and not waiting in the queue (where BullMQ's stalled check puts a dead worker's
 *   job) lost its queue entry with its worker: it is queued again, or failed once it has had
 *   `maxAttempts` runs. A worker that was only frozen cannot write over the next attempt: its writes are
 *   fenced by its attempt number (job-runner.ts). `isRunningHere` skips this process's own runs.
 */
export async function sweepQueue(
  deps: Pick<RecoveryDeps, 'store' | 'queue' | 'blobs' | 'logger' | 'observer' | 'now' | 'runTimeoutMs' | 'maxAttempts'> & {
    events: Pick<JobEvents, 'publish'>;
    isRunningHere(jobId: string): boolean;
  },
  graceMs: number,
): Promise<QueueSweepReport> {
  const enqueued = await enqueueMissing(deps, graceMs);
  let requeued = 0;
  let failed = 0;
  for (const job of await deps.store.listByStatus('running')) {
    if (deps.isRunningHere(job.id) || job.startedAtMs === null) continue;
    if (deps.now() - job.startedAtMs <= 2 * deps.runTimeoutMs) continue;
    if (await deps.queue.has(job.id)) continue;
    if (job.attempts >= deps.maxAttempts) {
      if (await failInterrupted(deps, job)) {
        deps.events.publish({ type: 'failed', jobId: job.id });
        failed++;
      }
    } else if (await deps.store.requeue(job.id)) {
      await deps.queue.enqueue(job.id, job.model);
      requeued++;
    }
  }
  if (enqueued + requeued + failed > 0) {
    deps.logger.warn({ enqueued, requeued, failed }, 'the queue had lost jobs the store holds (a Redis restart without persistence?): put them back');
  }
  return { enqueued, requeued, failed };
}

/** `generations/<ms>-...`: the ms the image was drawn; null for a name run-generation.ts did not make. */
function writtenAtMs(key: string): number | null {
  const m = /^generations\/(\d{10,16})-/.exec(key);
  return m ? Number(m[1]) : null;
}

/** Images written by a run that never committed (a crash between store and commit), and references of finished jobs. */
async function sweepOrphans(deps: RecoveryDeps): Promise<number> {
  let deleted = 0;
  const kept = await deps.store.listOutputKeys();
  const oldEnoughMs = deps.now() - 2 * deps.runTimeoutMs;
  for (const key of await deps.blobs.list('generations/')) {
    if (kept.has(key)) continue;
    if (deps.othersWrite) {
      const at = writtenAtMs(key);
      if (at === null || at > oldEnoughMs) continue;
    }
    await deps.blobs.delete(key);
    deleted++;
  }
  const pending = deps.othersWrite
    ? null
    : new Set([...(await deps.store.listByStatus('queued')), ...(await deps.store.listByStatus('running'))].map((j) => j.id));
  for (const key of await deps.blobs.list('inputs/')) {
    const jobId = jobIdOfReference(key);
    let orphan: boolean;
    if (pending) orphan = !jobId || !pending.has(jobId);
    else {
      const job = jobId ? await deps.store.get(jobId) : null;
      orphan = job !== null && isTerminal(job.status);
    }
    if (orphan) {
      await deps.blobs.delete(key);
      deleted++;
    }
  }
  return deleted;
}
