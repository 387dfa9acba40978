/**
 * BackendSlots in Redis: per backend a sorted set `<prefix>:slots:<backendId>` of leases scored by their
 * expiry (Redis's clock, ms). Acquiring is one Lua script, so two workers cannot both take the last slot:
 * it drops expired leases, counts the rest against the limit and adds one. The holder renews its lease
 * every leaseTtlMs / 3 while the job runs; a worker killed mid-job stops renewing, and its slot frees
 * itself after at most leaseTtlMs. A lease lost anyway (the event loop stalled past the TTL, Redis
 * restarted empty) is logged: the job goes on, and the backend may briefly see one job more than its limit.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BackendSlots, SlotLease } from './backend-slots.ts';

export interface RedisBackendSlotsOptions {
  /** A non-blocking connection (may be shared); the caller owns it. */
  redis: Redis;
  prefix: string;
  /** How long a lease outlives its holder's last renewal, ms. */
  leaseTtlMs?: number;
  logger?: { warn(obj: object, msg?: string): void };
}

export type RedisBackendSlots = BackendSlots & {
  /** Stops renewing the leases still held (they expire by their TTL); later acquires throw. */
  close(): Promise<void>;
};

const DEFAULT_LEASE_TTL_MS = 30_000;

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS[1] the backend's set; ARGV: limit, ttl ms, lease id. 1 when taken, 0 when full. */
const ACQUIRE = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1`;

/** KEYS[1] the backend's set. The leases that have not expired. */
const COUNT = `${NOW_MS}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`;

/** KEYS[1] the backend's set; ARGV: ttl ms, lease id. 1 when renewed, 0 when the lease was gone. */
const RENEW = `${NOW_MS}
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
return 1`;

export function createRedisBackendSlots(options: RedisBackendSlotsOptions): RedisBackendSlots {
  const { redis } = options;
  const ttlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const logger = options.logger ?? { warn() {} };
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const keyOf = (backendId: string) => `${options.prefix}:slots:${backendId}`;

  return {
    async inUse(backendId) {
      if (closed) throw new Error('the backend slots are closed');
      return Number(await redis.eval(COUNT, 1, keyOf(backendId)));
    },
    async tryAcquire(backendId, limit) {
      if (closed) throw new Error('the backend slots are closed');
      const key = keyOf(backendId);
      const lease = randomUUID();
      if ((await redis.eval(ACQUIRE, 1, key, String(limit), String(ttlMs), lease)) !== 1) return null;
      const timer = setInterval(() => {
        redis.eval(RENEW, 1, key, String(ttlMs), lease).then(
          (renewed) => {
            if (renewed === 1) return;
            clearInterval(timer);
            timers.delete(timer);
            logger.warn({ backendId }, 'a backend slot lease expired while its job ran; the slot is counted free');
          },
          (err: unknown) => logger.warn({ err, backendId }, 'could not renew a backend slot lease'),
        );
      }, Math.max(10, Math.floor(ttlMs / 3)));
      timer.unref();
      timers.add(timer);
      let released = false;
      const held: SlotLease = {
        async release() {
          if (released) return;
          released = true;
          clearInterval(timer);
          timers.delete(timer);
          await redis.zrem(key, lease);
        },
      };
      return held;
    },

    async close() {
      closed = true;
      for (const timer of timers) clearInterval(timer);
      timers.clear();
    },
  };
}
