/**
 * JobQueue over BullMQ, shared by every process on one Redis: one BullMQ queue per model (FIFO), taken
 * by manual processing (docs.bullmq.io, "Manually processing jobs"): a Worker without a processor,
 * `getNextJob(token)` moves the oldest waiting job to active under a lock owned by `token`, this process
 * renews the lock while the runner holds the job, and `complete()` moves it to completed with
 * `removeOnComplete` (the JobStore is the durable record; BullMQ keeps nothing once a job ends).
 *
 * A process that dies stops renewing: after the lock expires, BullMQ's stalled-job check (run by every
 * process that claims, `startStalledCheckTimer`) puts the job back at the head of the wait list and the
 * next `claim` anywhere receives it; the runner then finds it 'running' in the store and calls
 * `JobStore.reclaim`. `maxStalledCount` is set beyond any JOB_MAX_ATTEMPTS so the runner's attempt count,
 * not BullMQ, decides when a job has been tried enough.
 *
 * Connections, one per role as BullMQ requires: each Queue and Worker opens its own from the options
 * (a Worker adds a blocking one), QueueEvents (onAvailable) a blocking XREAD one, and `commands` serves
 * this module's own reads (wait-list positions, the job → model index).
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RedisEndpoint } from '../redis/redis-url.ts';
import type { JobQueue } from '../ports.ts';

export interface BullmqQueueLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface BullmqJobQueueOptions {
  /** Options BullMQ opens its connections with (redisOptionsFromUrl). */
  connection: RedisEndpoint;
  /** This module's own non-blocking connection; the caller owns (and closes) it. */
  commands: Redis;
  /** Key prefix; BullMQ's keys are `<prefix>:bull:<queue>:...`, the job → model index `<prefix>:jobq:model`. */
  prefix: string;
  /** How long a claimed job stays locked without renewal (BullMQ lockDuration); renewed every half of it. */
  lockMs?: number;
  /** How often the stalled-job check runs (BullMQ stalledInterval). A dead worker's job returns after lockMs + up to 2 intervals. */
  stalledIntervalMs?: number;
  logger?: BullmqQueueLogger;
}

export type BullmqJobQueue = JobQueue & {
  /** Resolves once Redis answered (a start-up check). */
  ready(): Promise<void>;
  /** Stops renewing locks (held jobs then return to the queue after the lock expires) and closes BullMQ's connections. */
  close(): Promise<void>;
};

/** BullMQ defaults (30 s lock, 30 s stalled check) are kept for production. */
const DEFAULT_LOCK_MS = 30_000;
const DEFAULT_STALLED_INTERVAL_MS = 30_000;
/** Far above JOB_MAX_ATTEMPTS (at most 100): BullMQ never fails a stalled job on its own. */
const MAX_STALLED_COUNT = 1_000_000;

/**
 * A BullMQ queue name for a model id: BullMQ forbids ':' (its key separator), so every character outside
 * [A-Za-z0-9.-] becomes `_` and its UTF-8 bytes in hex (`/` → `_2f`), which keeps names readable and distinct.
 */
export function queueNameOf(model: string): string {
  let name = 'jobs.';
  for (const ch of model) {
    if (/^[A-Za-z0-9.-]$/.test(ch)) name += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) name += `_${byte.toString(16).padStart(2, '0')}`;
  }
  return name;
}

interface ModelParts {
  queue: Queue;
  worker?: Worker;
  /** onAvailable's follower; `watching` is set first so that two callers open one. */
  watching?: boolean;
  events?: QueueEvents;
}

interface Held {
  job: Job;
  token: string;
  timer: NodeJS.Timeout;
}

const silent: BullmqQueueLogger = { warn() {}, error() {} };

/** BullMQ's answer when a lock this process held is gone (expired, taken over by another worker). */
const isLostLock = (err: unknown) => err instanceof Error && /Missing lock for job|Lock mismatch for job/.test(err.message);

export function createBullmqJobQueue(options: BullmqJobQueueOptions): BullmqJobQueue {
  const lockMs = options.lockMs ?? DEFAULT_LOCK_MS;
  const stalledIntervalMs = options.stalledIntervalMs ?? DEFAULT_STALLED_INTERVAL_MS;
  const logger = options.logger ?? silent;
  const bullPrefix = `${options.prefix}:bull`;
  const indexKey = `${options.prefix}:jobq:model`;
  const redis = options.commands;
  const parts = new Map<string, ModelParts>();
  const held = new Map<string, Held>();
  const availableListeners = new Set<() => void>();
  let closed = false;

  const onError = (role: string, model: string) => (err: unknown) => logger.error({ err, model, role }, 'BullMQ connection error');

  function partsOf(model: string): ModelParts {
    if (closed) throw new Error('the job queue is closed');
    let p = parts.get(model);
    if (!p) {
      const queue = new Queue(queueNameOf(model), { connection: options.connection, prefix: bullPrefix });
      queue.on('error', onError('queue', model));
      p = { queue };
      parts.set(model, p);
      if (availableListeners.size > 0) void watchAvailability(model, p);
    }
    return p;
  }

  /** The Worker only exists in processes that claim (workers); an API process that only enqueues opens none. */
  function workerOf(model: string, p: ModelParts): Worker {
    if (!p.worker) {
      const worker = new Worker(queueNameOf(model), null, {
        connection: options.connection,
        prefix: bullPrefix,
        autorun: false,
        lockDuration: lockMs,
        stalledInterval: stalledIntervalMs,
        maxStalledCount: MAX_STALLED_COUNT,
      });
      worker.on('error', onError('worker', model));
      // Manual processing runs no main loop, so the stalled check must be started by hand.
      void worker.startStalledCheckTimer().catch(onError('stalled-check', model));
      p.worker = worker;
    }
    return p.worker;
  }

  /** QueueEvents from the stream's current tip, so a job added while it connects is not missed. */
  async function watchAvailability(model: string, p: ModelParts): Promise<void> {
    if (p.watching) return;
    p.watching = true;
    try {
      const newest = (await redis.xrevrange(p.queue.keys.events!, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
      if (closed) return;
      const events = new QueueEvents(queueNameOf(model), { connection: options.connection, prefix: bullPrefix, lastEventId: newest });
      events.on('error', onError('events', model));
      // 'waiting': added (by any process) or moved back from active by the stalled check.
      events.on('waiting', () => {
        for (const listener of [...availableListeners]) listener();
      });
      p.events = events;
      // Whatever was waiting before the stream was read is claimable too.
      for (const listener of [...availableListeners]) listener();
    } catch (err) {
      p.watching = false;
      logger.error({ err, model }, 'could not follow the BullMQ queue events');
    }
  }

  async function modelOf(jobId: string): Promise<string | null> {
    return redis.hget(indexKey, jobId);
  }

  /** Index from the head (0 = next to be claimed) and the wait list's length. BullMQ LPUSHes new jobs and takes from the right. */
  async function placeOf(jobId: string): Promise<number | null> {
    const model = await modelOf(jobId);
    if (model === null) return null;
    const waitKey = partsOf(model).queue.keys.wait!;
    const reply = await redis.multi().lpos(waitKey, jobId).llen(waitKey).exec();
    const fromLeft = reply?.[0]?.[1] as number | null;
    const length = reply?.[1]?.[1] as number;
    return fromLeft === null || fromLeft === undefined ? null : length - 1 - fromLeft;
  }

  function renew(jobId: string): void {
    const entry = held.get(jobId);
    if (!entry) return;
    entry.job.extendLock(entry.token, lockMs).then(
      (ok) => {
        if (ok === 1 || !held.has(jobId)) return;
        clearInterval(entry.timer);
        // The claim is gone: forget it, so that a run the store has since fenced off (another worker reclaimed
        // the job, and the runner does not `complete` it) leaves nothing held here.
        if (held.get(jobId) === entry) held.delete(jobId);
        logger.warn({ jobId }, 'lost the queue lock of a running job (it expired); another worker may take the job');
      },
      (err: unknown) => logger.warn({ err, jobId }, 'could not renew the queue lock of a running job'),
    );
  }

  return {
    sharedAcrossProcesses: true,

    async ready() {
      await redis.ping();
    },

    async enqueue(jobId, model) {
      const { queue } = partsOf(model);
      await redis.hset(indexKey, jobId, model);
      // A job id BullMQ already holds (waiting or active) is not added twice.
      await queue.add('generation', { model }, { jobId, removeOnComplete: true, removeOnFail: true });
    },

    async claim(model) {
      const p = partsOf(model);
      const worker = workerOf(model, p);
      const token = randomUUID();
      const job = await worker.getNextJob(token, { block: false });
      if (!job?.id) return null;
      const jobId = job.id;
      const timer = setInterval(() => renew(jobId), Math.max(1, Math.floor(lockMs / 2)));
      timer.unref();
      held.set(jobId, { job, token, timer });
      return jobId;
    },

    async complete(jobId) {
      const entry = held.get(jobId);
      if (!entry) return;
      held.delete(jobId);
      clearInterval(entry.timer);
      try {
        await entry.job.moveToCompleted(null, entry.token, false);
      } catch (err) {
        if (!isLostLock(err)) throw err;
        // Our lock expired and the job went back (maybe to another worker): it is no longer ours to end.
        logger.warn({ jobId }, 'a finished job had lost its queue lock; left to the worker that holds it now');
        return;
      }
      await redis.hdel(indexKey, jobId);
    },

    async remove(jobId) {
      const model = await modelOf(jobId);
      if (model === null) return false;
      // Only a job nobody holds goes: BullMQ refuses (0) to remove a locked, active job.
      if ((await placeOf(jobId)) === null) return false;
      const removed = (await partsOf(model).queue.remove(jobId)) === 1;
      if (removed) await redis.hdel(indexKey, jobId);
      return removed;
    },

    position: placeOf,

    async list(model) {
      const ids = await redis.lrange(partsOf(model).queue.keys.wait!, 0, -1);
      return ids.reverse();
    },

    async depth(model) {
      return redis.llen(partsOf(model).queue.keys.wait!);
    },

    async has(jobId) {
      return (await placeOf(jobId)) !== null;
    },

    onAvailable(listener) {
      availableListeners.add(listener);
      for (const [model, p] of parts) void watchAvailability(model, p);
      return () => {
        availableListeners.delete(listener);
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const entry of held.values()) clearInterval(entry.timer);
      held.clear();
      const all = [...parts.values()];
      parts.clear();
      await Promise.allSettled(all.flatMap((p) => [p.events?.close(), p.worker?.close(true), p.queue.close()]));
    },
  };
}
