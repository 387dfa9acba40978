import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isApiError } from '../domain/errors.ts';
import { UNLIMITED, type KeyLimits } from '../domain/key-limits.ts';
import { createKeyLimiter } from './key-limiter.ts';
import { createSlidingWindow } from './sliding-window.ts';
import { utcDayStart, utcMonthStart, utcNextDayStart, utcNextMonthStart } from './utc-periods.ts';

/** A usage source that answers only after a turn of the event loop, like a network store would. */
function slowUsage(jobs: Array<{ model: string; count: number }> = [], credits = 0) {
  return {
    jobs,
    credits,
    async creditsSince() {
      await new Promise((resolve) => setImmediate(resolve));
      return this.credits;
    },
    async jobsInFlight() {
      await new Promise((resolve) => setImmediate(resolve));
      return this.jobs;
    },
  };
}

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'admitted';
  } catch (err) {
    if (!isApiError(err)) throw err;
    return err.code;
  }
};

test('sliding window: the limit-th newest admission decides, refusals are not logged', () => {
  const w = createSlidingWindow(60_000);
  assert.equal(w.waitMs('k', 2, 0), 0);
  w.record('k', 2, 0);
  w.record('k', 2, 30_000);
  assert.equal(w.waitMs('k', 2, 45_000), 15_000);
  assert.equal(w.waitMs('k', 2, 60_000), 0, 'the first one has left at exactly 60 s');
  assert.equal(w.count('k', 60_000), 1);
  assert.equal(w.waitMs('k', 5, 45_000), 0, 'a raised limit applies at once');
  assert.equal(w.count('other', 0), 0);
});

test('UTC periods', () => {
  const t = Date.UTC(2024, 1, 29, 23, 59, 59); // a leap day
  assert.equal(utcDayStart(t), Date.UTC(2024, 1, 29));
  assert.equal(utcNextDayStart(t), Date.UTC(2024, 2, 1));
  assert.equal(utcMonthStart(t), Date.UTC(2024, 1, 1));
  assert.equal(utcNextMonthStart(Date.UTC(2024, 11, 31, 12)), Date.UTC(2025, 0, 1));
});

test('concurrent admits of one key are serialized: with an async store only the free slots and credits are handed out', async () => {
  const limits: KeyLimits = { ...UNLIMITED, max_concurrent_jobs: 3 };
  const usage = slowUsage([{ model: 'm', count: 1 }]);
  const limiter = createKeyLimiter({ usage, limitsOf: async () => limits, priceCredits: () => 10, jobRetryAfterS: async () => 7 });
  const results = await Promise.all(Array.from({ length: 5 }, () => limiter.admit({ keyId: 'k', model: 'm' }).then((h) => h, (e: unknown) => e)));
  const holds = results.filter((r) => !isApiError(r)) as Array<{ release(): void }>;
  assert.equal(holds.length, 2, 'one slot was taken by the job in the store');
  const refusal = results.find(isApiError)!;
  assert.equal(refusal.code, 'too_many_concurrent_jobs');
  assert.equal(refusal.retryAfterS, 7);
  assert.equal((await limiter.status('k')).concurrentJobs.inUse, 3);

  holds[0]!.release();
  holds[0]!.release(); // idempotent
  assert.equal((await limiter.status('k')).concurrentJobs.inUse, 2);
  assert.equal(await codeOf(limiter.admit({ keyId: 'k', model: 'm' })), 'admitted');
  assert.equal(await codeOf(limiter.admit({ keyId: 'k', model: 'm' })), 'too_many_concurrent_jobs');
});

test('budgets count what is charged, what jobs hold and what admitted submits hold', async () => {
  const now = Date.UTC(2030, 5, 15, 12);
  const limits: KeyLimits = { ...UNLIMITED, daily_credits: 100 };
  const usage = slowUsage([{ model: 'm', count: 2 }], 50); // 50 charged, 2 × 10 held
  const limiter = createKeyLimiter({ usage, limitsOf: async () => limits, priceCredits: () => 10, jobRetryAfterS: async () => 1, now: () => now });
  const first = await limiter.admit({ keyId: 'k', model: 'm' }); // 80
  await limiter.admit({ keyId: 'k', model: 'm' }); // 90
  await limiter.admit({ keyId: 'k', model: 'm' }); // 100: exactly the budget
  const err = await limiter.admit({ keyId: 'k', model: 'm' }).catch((e: unknown) => e);
  assert.ok(isApiError(err));
  assert.equal(err.code, 'budget_exceeded');
  assert.equal(err.status, 402);
  assert.equal(err.retryAfterS, 12 * 3600);
  assert.match(err.message, /^key k has 0 of its 100 daily credits left \(50 more are held by its queued or running jobs\); this request costs 10 credits/);
  first.release();
  assert.equal((await limiter.status('k')).dailyCredits.remaining, 10);
  assert.equal(await codeOf(limiter.admit({ keyId: 'k', model: 'm' })), 'admitted');
});

test('the per-minute limit is checked first and a refused request is not charged to the window', async () => {
  let now = 1_000_000;
  const limiter = createKeyLimiter({
    usage: slowUsage(),
    limitsOf: async () => ({ ...UNLIMITED, requests_per_minute: 1, max_concurrent_jobs: 1 }),
    priceCredits: () => 0,
    jobRetryAfterS: async () => 1,
    now: () => now,
  });
  (await limiter.admit({ keyId: 'k', model: 'm' })).release();
  now += 59_500;
  const err = await limiter.admit({ keyId: 'k', model: 'm' }).catch((e: unknown) => e);
  assert.ok(isApiError(err) && err.code === 'rate_limited' && err.retryAfterS === 1);
  now += 500;
  assert.equal(await codeOf(limiter.admit({ keyId: 'k', model: 'm' })), 'admitted');
});
