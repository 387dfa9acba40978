/**
 * The key limiter's holds in Redis, shared by every API process (admit-holds.ts says what they are).
 * - `exclusive`: a lock per key, `<prefix>:admit-lock:<keyId>` = a random token, SET NX PX; a process that
 *   finds it taken tries again a few ms later. The lock expires after `lockTtlMs`, so a process that dies
 *   inside an admission blocks the key for that long at most; it is released by a compare-and-delete.
 * - holds: per key a sorted set `<prefix>:holds:<keyId>` of hold ids scored by their expiry (Redis's own
 *   clock, TIME) and a hash `<prefix>:hold-credits:<keyId>` of their prices. A hold expires after
 *   `holdTtlMs` (longer than any submit takes to write its job), so a process that dies between admit and
 *   its job's row does not keep the key's slot forever. Reading drops the expired ones first.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { AdmitHolds } from './admit-holds.ts';

/** KEYS: the set, the hash; ARGV: ttl ms, hold id (or '' to only read), credits. Returns {jobs, credits as a string}. */
const HOLDS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(gone))
end
local ttl = tonumber(ARGV[1])
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
if redis.call('ZCARD', KEYS[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
local credits = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do credits = credits + tonumber(v) end
return {redis.call('ZCARD', KEYS[1]), tostring(credits)}`;

const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export interface RedisAdmitHoldsLogger {
  warn(obj: object, msg?: string): void;
}

export interface RedisAdmitHoldsOptions {
  /** A non-blocking connection (may be shared); the caller owns it. */
  redis: Redis;
  prefix: string;
  /** How long an admission may hold a key's lock (ms). */
  lockTtlMs?: number;
  /** How long a hold lasts when its process never releases it (ms). */
  holdTtlMs?: number;
  logger?: RedisAdmitHoldsLogger;
}

const round6 = (n: number) => Math.round(n * 1e6) / 1e6;

export function createRedisAdmitHolds(options: RedisAdmitHoldsOptions): AdmitHolds {
  const { redis } = options;
  // 10 s: an admission is a few database and Redis reads; 10 min: far longer than a submit takes to fetch its references and write its job.
  const lockTtlMs = options.lockTtlMs ?? 10_000;
  const holdTtlMs = options.holdTtlMs ?? 600_000;
  const keys = (keyId: string) => [`${options.prefix}:holds:${keyId}`, `${options.prefix}:hold-credits:${keyId}`];

  async function holds(keyId: string, holdId: string, credits: number) {
    const [jobs, sum] = (await redis.eval(HOLDS, 2, ...keys(keyId), String(holdTtlMs), holdId, String(credits))) as [number, string];
    return { jobs, credits: round6(Number(sum)) };
  }

  return {
    async exclusive(keyId, fn) {
      const lock = `${options.prefix}:admit-lock:${keyId}`;
      const token = randomUUID();
      for (let wait = 2; (await redis.set(lock, token, 'PX', lockTtlMs, 'NX')) !== 'OK'; wait = Math.min(50, wait * 2)) {
        await new Promise((resolve) => setTimeout(resolve, wait + Math.random() * wait));
      }
      try {
        return await fn();
      } finally {
        await redis.eval(UNLOCK, 1, lock, token).catch((err: unknown) => options.logger?.warn({ err, keyId }, 'could not release the admission lock of a key (it expires on its own)'));
      }
    },
    held: (keyId) => holds(keyId, '', 0),
    async add(keyId, credits) {
      const holdId = randomUUID();
      await holds(keyId, holdId, credits);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          const [set, hash] = keys(keyId);
          redis
            .multi()
            .zrem(set!, holdId)
            .hdel(hash!, holdId)
            .exec()
            .catch((err: unknown) => options.logger?.warn({ err, keyId }, 'could not release a key limiter hold in Redis (it expires on its own)'));
        },
      };
    },
  };
}
