/**
 * Everything that lives in Redis when REDIS_URL is set, built in one place for main.ts: the BullMQ job
 * queue, cross-process job events, shared backend slots and circuits, and the per-minute request window. Connections:
 * `commands` (non-blocking, shared by events, slots, window and the queue's own reads), `subscriber`
 * (pub/sub only: job events and circuit news), and the ones BullMQ opens per queue role. `close()` ends them all.
 */
import { Redis } from 'ioredis';
import { createRedisBackendSlots } from '../../engines/router/redis-backend-slots.ts';
import type { CircuitShare } from '../../engines/router/circuit-share.ts';
import { createRedisCircuitShare } from '../../engines/router/redis-circuit-share.ts';
import type { BackendSlots } from '../../engines/router/backend-slots.ts';
import { createRedisRequestWindow } from '../../limits/redis-request-window.ts';
import type { RequestWindow } from '../../limits/request-window.ts';
import type { AdmitHolds } from '../../limits/admit-holds.ts';
import { createRedisAdmitHolds } from '../../limits/redis-admit-holds.ts';
import { createBullmqJobQueue } from '../bullmq/bullmq-job-queue.ts';
import type { JobEvents, JobQueue } from '../ports.ts';
import { createRedisJobEvents } from './redis-job-events.ts';
import { redisOptionsFromUrl } from './redis-url.ts';

export interface RedisLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ConnectRedisOptions {
  /** redis://… or rediss://… (REDIS_URL). */
  url: string;
  /** Prefix of every key and channel (REDIS_PREFIX); several deployments may share one Redis under different ones. */
  prefix?: string;
  /** Queue lock of a claimed job, ms (BullMQ lockDuration; default 30 s). */
  lockMs?: number;
  /** Stalled-job check interval, ms (default 30 s). */
  stalledIntervalMs?: number;
  /** TTL of a watch (events) and of a backend slot lease, ms (default 30 s; renewed every third of it). */
  leaseTtlMs?: number;
  /** The per-minute window's length, ms (default 60 s). */
  windowMs?: number;
  logger?: RedisLogger;
}

export interface RedisParts {
  queue: JobQueue;
  events: JobEvents;
  slots: BackendSlots;
  /** Circuit breaker changes heard by every worker's routers. */
  circuits: CircuitShare;
  requestWindow: RequestWindow;
  /** The key limiter's per-key admission lock and holds. */
  admitHolds: AdmitHolds;
  /** Throws when Redis does not answer (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_REDIS_PREFIX = 'qis';

export async function connectRedis(options: ConnectRedisOptions): Promise<RedisParts> {
  const endpoint = redisOptionsFromUrl(options.url);
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  const logger = options.logger ?? { warn() {}, error() {} };
  const commands = new Redis({ ...endpoint, connectionName: `${prefix}:commands`, lazyConnect: true });
  const subscriber = new Redis({ ...endpoint, connectionName: `${prefix}:events`, lazyConnect: true });
  for (const [role, connection] of [['commands', commands], ['subscriber', subscriber]] as const) {
    connection.on('error', (err: unknown) => logger.error({ err, role }, 'Redis connection error'));
  }
  const closeConnections = () => {
    commands.disconnect();
    subscriber.disconnect();
  };
  try {
    // A wrong address or password fails the start with Redis's own reason, not a hang.
    await Promise.all([commands.connect(), subscriber.connect()]);
    await commands.ping();
  } catch (err) {
    closeConnections();
    throw new Error(`could not connect to Redis at ${endpoint.host}:${endpoint.port} (REDIS_URL): ${(err as Error)?.message ?? String(err)}`);
  }

  const queue = createBullmqJobQueue({ connection: endpoint, commands, prefix, lockMs: options.lockMs, stalledIntervalMs: options.stalledIntervalMs, logger });
  const events = createRedisJobEvents({ commands, subscriber, prefix, watchTtlMs: options.leaseTtlMs, logger });
  const slots = createRedisBackendSlots({ redis: commands, prefix, leaseTtlMs: options.leaseTtlMs, logger });
  const requestWindow = createRedisRequestWindow({ redis: commands, prefix, windowMs: options.windowMs });
  const admitHolds = createRedisAdmitHolds({ redis: commands, prefix, logger });
  const circuits = createRedisCircuitShare({ commands, subscriber, prefix, logger });
  try {
    await Promise.all([queue.ready(), events.ready(), circuits.ready()]);
  } catch (err) {
    await Promise.allSettled([queue.close(), events.close(), slots.close(), circuits.close()]);
    closeConnections();
    throw err;
  }

  let closed = false;
  return {
    queue,
    events,
    slots,
    circuits,
    requestWindow,
    admitHolds,
    async ping() {
      await commands.ping();
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([queue.close(), events.close(), slots.close(), circuits.close()]);
      await Promise.allSettled([commands.quit(), subscriber.quit()]);
    },
  };
}
