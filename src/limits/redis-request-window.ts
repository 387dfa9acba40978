/**
 * The per-minute window in Redis, shared by every API process: per key a sorted set `<prefix>:rpm:<keyId>`
 * of admissions scored by their time (ms, the caller's clock: the limiter's injected `now`, so hosts'
 * clocks should agree to well under the window, as NTP keeps them). The same sliding log as
 * sliding-window.ts, taken atomically by one Lua script; the set expires a window after its last admission.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RequestWindow } from './request-window.ts';

/**
 * KEYS[1] the key's set; ARGV: now ms, window ms, limit, member. {1, 0} when taken; {0, waitMs} when full.
 * Entries at or before now − window have left (as in sliding-window.ts); only the `limit` newest are kept,
 * since only the limit-th newest decides.
 */
const TAKE = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local decider = redis.call('ZREVRANGE', KEYS[1], limit - 1, limit - 1, 'WITHSCORES')
  return {0, tonumber(decider[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(limit + 1))
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}`;

export interface RedisRequestWindowOptions {
  /** A non-blocking connection (may be shared); the caller owns it. */
  redis: Redis;
  prefix: string;
  /** The "minute", ms. */
  windowMs?: number;
}

export function createRedisRequestWindow(options: RedisRequestWindowOptions): RequestWindow {
  const { redis } = options;
  const windowMs = options.windowMs ?? 60_000;
  const keyOf = (keyId: string) => `${options.prefix}:rpm:${keyId}`;
  // Admissions strictly inside (now − window, now]: the exclusive lower bound matches the drop rule above.
  const live = (keyId: string, nowMs: number) => redis.zrangebyscore(keyOf(keyId), `(${nowMs - windowMs}`, '+inf', 'WITHSCORES');

  return {
    async take(keyId, limit, nowMs) {
      const member = `${nowMs}:${randomUUID()}`;
      const [taken, waitMs] = (await redis.eval(TAKE, 1, keyOf(keyId), String(nowMs), String(windowMs), String(limit), member)) as [number, number];
      if (taken !== 1) return { admitted: false, waitMs };
      let undone = false;
      return {
        admitted: true,
        async undo() {
          if (undone) return;
          undone = true;
          await redis.zrem(keyOf(keyId), member);
        },
      };
    },
    async count(keyId, nowMs) {
      return (await live(keyId, nowMs)).length / 2;
    },
    async resetInMs(keyId, nowMs) {
      const entries = await live(keyId, nowMs);
      return entries.length === 0 ? 0 : Number(entries[1]) + windowMs - nowMs;
    },
  };
}
