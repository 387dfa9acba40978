/**
 * The per-minute window in a real redis-server: two limiters (two API processes) with their own connections
 * share one log, so the limit holds across them; the Redis window answers as the in-memory one does.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { isApiError } from '../domain/errors.ts';
import { UNLIMITED, type KeyLimits } from '../domain/key-limits.ts';
import { startRedis, type TestRedis } from '../../test/helpers/redis.ts';
import { createKeyLimiter } from './key-limiter.ts';
import { createRedisRequestWindow } from './redis-request-window.ts';
import { createMemoryRequestWindow, type RequestWindow } from './request-window.ts';

let redis: TestRedis;
const connections: Redis[] = [];
before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const c of connections) c.disconnect();
  await redis?.stop();
});

function redisWindow(prefix: string): RequestWindow {
  const connection = new Redis(redis.url);
  connections.push(connection);
  return createRedisRequestWindow({ redis: connection, prefix });
}

const usage = { creditsSince: async () => 0, jobsInFlight: async () => [] };
const outcome = (p: Promise<{ release(): void }>) =>
  p.then(
    () => 'admitted',
    (err: unknown) => {
      if (!isApiError(err)) throw err;
      return `${err.code}:${err.retryAfterS}`;
    },
  );

describe('Redis request window', () => {
  it('the per-minute limit holds across two limiter processes, and budget refusals give their place back', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    let now = 1_000_000;
    let limits: KeyLimits = { ...UNLIMITED, requests_per_minute: 3 };
    const limiter = () =>
      createKeyLimiter({ usage, limitsOf: async () => limits, priceCredits: () => 10, jobRetryAfterS: async () => 1, now: () => now, window: redisWindow(prefix) });
    const [a, b] = [limiter(), limiter()];
    assert.equal(await outcome(a.admit({ keyId: 'k', model: 'm' })), 'admitted');
    now += 10_000;
    assert.equal(await outcome(b.admit({ keyId: 'k', model: 'm' })), 'admitted');
    // Five at once from both: one place is left.
    const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => outcome((i % 2 ? a : b).admit({ keyId: 'k', model: 'm' }))));
    assert.deepEqual(burst.filter((r) => r === 'admitted').length, 1);
    assert.ok(burst.filter((r) => r !== 'admitted').every((r) => r === 'rate_limited:50'), burst.join());
    assert.equal((await b.status('k')).requestsPerMinute.used, 3);
    assert.equal((await a.status('k')).requestsPerMinute.resetInS, 50);
    assert.equal(await outcome(a.admit({ keyId: 'other', model: 'm' })), 'admitted', 'keys are counted apart');

    now += 50_000; // the first admission leaves at exactly 60 s
    limits = { ...UNLIMITED, requests_per_minute: 3, daily_credits: 5 };
    assert.equal(await outcome(b.admit({ keyId: 'k', model: 'm' })), 'budget_exceeded:' + Math.ceil((Date.UTC(1970, 0, 2) - now) / 1000));
    limits = { ...UNLIMITED, requests_per_minute: 3 };
    assert.equal(await outcome(a.admit({ keyId: 'k', model: 'm' })), 'admitted', 'the refused request did not keep the freed place');
    assert.equal(await outcome(a.admit({ keyId: 'k', model: 'm' })), 'rate_limited:10');
  });

  it('answers like the in-memory window for the same sequence', async () => {
    const windows = [createMemoryRequestWindow(60_000), redisWindow(`t${randomUUID().slice(0, 8)}`)];
    const trace = async (w: RequestWindow) => {
      const out: unknown[] = [];
      for (const [t, limit] of [[0, 2], [30_000, 2], [45_000, 2], [60_000, 2], [61_000, 1], [90_000, 5]] as const) {
        const taken = await w.take('k', limit, t);
        out.push(taken.admitted ? 'in' : taken.waitMs, await w.count('k', t), await w.resetInMs('k', t));
      }
      const last = await w.take('k', 5, 95_000);
      assert.ok(last.admitted);
      await last.undo();
      await last.undo();
      out.push(await w.count('k', 95_000));
      return out;
    };
    const [memory, shared] = [await trace(windows[0]!), await trace(windows[1]!)];
    assert.deepEqual(shared, memory);
    assert.deepEqual(memory.slice(0, 9), ['in', 1, 60_000, 'in', 2, 30_000, 15_000, 2, 15_000]);
  });
});
