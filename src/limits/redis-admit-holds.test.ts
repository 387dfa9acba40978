/**
 * The key limiter's admission lock and holds in a real redis-server: two limiters (two API processes), each
 * with its own connection, over one Redis and one usage source (the jobs table both would read). Requests
 * admitted but not yet written as jobs count against the key's concurrency and budgets in both; with the
 * in-memory holds each process lets its own through.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { isApiError } from '../domain/errors.ts';
import { UNLIMITED, type KeyLimits } from '../domain/key-limits.ts';
import { startRedis, type TestRedis } from '../../test/helpers/redis.ts';
import { waitUntil } from '../../test/helpers/wait-until.ts';
import type { AdmitHolds } from './admit-holds.ts';
import { createKeyLimiter } from './key-limiter.ts';
import type { LimitHold, LimitUsageSource } from './ports.ts';
import { createRedisAdmitHolds } from './redis-admit-holds.ts';

let redis: TestRedis;
const connections: Redis[] = [];
before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const c of connections) c.disconnect();
  await redis?.stop();
});

function redisHolds(prefix: string, holdTtlMs?: number): AdmitHolds {
  const connection = new Redis(redis.url);
  connections.push(connection);
  return createRedisAdmitHolds({ redis: connection, prefix, holdTtlMs });
}

/** The jobs table both processes would read: the jobs a test says are written. */
function jobsTable() {
  let written = 0;
  const usage: LimitUsageSource = { creditsSince: async () => 0, jobsInFlight: async () => (written ? [{ model: 'm', count: written }] : []) };
  return { usage, write: () => void written++ };
}

const admitted = (p: Promise<LimitHold>) =>
  p.then(
    (hold) => hold,
    (err: unknown) => {
      if (!isApiError(err)) throw err;
      return err.code;
    },
  );

function limiterPair(limits: KeyLimits, usage: LimitUsageSource, holds: () => AdmitHolds | undefined) {
  const one = () => createKeyLimiter({ usage, limitsOf: async () => limits, priceCredits: () => 10, jobRetryAfterS: async () => 1, holds: holds() });
  return [one(), one()] as const;
}

describe('Redis admission holds', () => {
  it('two processes admitting one key at once let exactly max_concurrent_jobs through; the in-memory holds let each process its own', async () => {
    const limits = { ...UNLIMITED, max_concurrent_jobs: 2 };
    const burst = async (pair: readonly [ReturnType<typeof createKeyLimiter>, ReturnType<typeof createKeyLimiter>]) => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => admitted(pair[i % 2]!.admit({ keyId: 'k', model: 'm' }))));
      return results.filter((r) => typeof r !== 'string').length;
    };
    const prefix = `t${randomUUID().slice(0, 8)}`;
    assert.equal(await burst(limiterPair(limits, jobsTable().usage, () => redisHolds(prefix))), 2);
    assert.equal(await burst(limiterPair(limits, jobsTable().usage, () => undefined)), 4, 'per-process holds: two per process');
  });

  it('a hold counts until released, its job row counts after, and budgets see the held credits of the other process', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const table = jobsTable();
    const [a, b] = limiterPair({ ...UNLIMITED, max_concurrent_jobs: 3, daily_credits: 25 }, table.usage, () => redisHolds(prefix));
    const first = await a.admit({ keyId: 'k', model: 'm' });
    assert.deepEqual(
      { jobs: (await b.status('k')).concurrentJobs.inUse, held: (await b.status('k')).dailyCredits.held },
      { jobs: 1, held: 10 },
      'the other process sees the hold',
    );
    const second = await b.admit({ keyId: 'k', model: 'm' });
    // 20 of 25 credits held: a third job (10) is over the budget, with a slot still free.
    assert.equal(await admitted(a.admit({ keyId: 'k', model: 'm' })), 'budget_exceeded');
    // The first job's row is written, then its hold released: it keeps counting, once.
    table.write();
    first.release();
    await waitUntil(async () => (await b.status('k')).concurrentJobs.inUse === 2, 'the released hold to leave Redis');
    second.release();
    await waitUntil(async () => (await a.status('k')).concurrentJobs.inUse === 1, 'the second hold to leave Redis (its submit failed: no row)');
    assert.equal((await a.status('k')).dailyCredits.held, 10);
    const third = await admitted(b.admit({ keyId: 'k', model: 'm' }));
    assert.notEqual(typeof third, 'string', '10 of 25 credits held: room for one more');
  });

  it('a hold its process never released expires', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const [a, b] = limiterPair({ ...UNLIMITED, max_concurrent_jobs: 1 }, jobsTable().usage, () => redisHolds(prefix, 300));
    await a.admit({ keyId: 'k', model: 'm' }); // never released: its process died before writing the job
    assert.equal(await admitted(b.admit({ keyId: 'k', model: 'm' })), 'too_many_concurrent_jobs');
    await waitUntil(async () => (await b.status('k')).concurrentJobs.inUse === 0, 'the dead process\'s hold to expire');
    assert.notEqual(typeof (await admitted(b.admit({ keyId: 'k', model: 'm' }))), 'string');
  });
});
