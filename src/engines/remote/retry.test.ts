import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAbortError } from '../../domain/errors.ts';
import { backendErrorFailure, rejectedFailure, unavailableFailure } from './errors.ts';
import { overloadDelayMs, retryOnOverload, type OverloadRetryOptions } from './retry.ts';

const overloaded = (retryAfterS: number | undefined, status = 429) =>
  unavailableFailure('gpu-a', `HTTP ${status}`, retryAfterS ?? 5, { overload: { status, retryAfterS } });

function options(extra: Partial<OverloadRetryOptions> = {}): OverloadRetryOptions & { waits: number[] } {
  const waits: number[] = [];
  return { retries: 2, maxDelayMs: 10_000, baseDelayMs: 250, random: () => 0.5, sleep: async (ms) => void waits.push(ms), waits, ...extra };
}

describe('overloadDelayMs', () => {
  it('honours Retry-After with up to 10 % jitter, capped', () => {
    assert.equal(overloadDelayMs(overloaded(3), 1, options({ random: () => 0 })), 3000);
    assert.equal(overloadDelayMs(overloaded(3), 1, options({ random: () => 0.999 })), 3300);
    assert.equal(overloadDelayMs(overloaded(0), 1, options()), 0);
    assert.equal(overloadDelayMs(overloaded(120), 1, options({ random: () => 0.9 })), 10_000);
  });

  it('without Retry-After: exponential backoff with equal jitter', () => {
    const at = (retry: number, r: number) => overloadDelayMs(overloaded(undefined, 503), retry, options({ random: () => r }));
    assert.deepEqual([at(1, 0), at(1, 0.999)], [125, 250]);
    assert.deepEqual([at(2, 0), at(3, 0)], [250, 500]);
    assert.equal(at(20, 0), 5000, 'the cap bounds the backoff before jitter');
  });

  it('is undefined for anything that is not a 429/503 answer', () => {
    assert.equal(overloadDelayMs(unavailableFailure('gpu-a', 'ECONNREFUSED', 5, { unreachable: true }), 1, options()), undefined);
    assert.equal(overloadDelayMs(backendErrorFailure('gpu-a', 'HTTP 500', { retryable: true }), 1, options()), undefined);
    assert.equal(overloadDelayMs(rejectedFailure('gpu-a', 'bad size'), 1, options()), undefined);
    assert.equal(overloadDelayMs(new Error('boom'), 1, options()), undefined);
  });
});

describe('retryOnOverload', () => {
  it('asks again after each overload answer and returns the first success', async () => {
    const o = options();
    let runs = 0;
    const result = await retryOnOverload(async () => {
      runs += 1;
      if (runs <= 2) throw overloaded(1);
      return 'image';
    }, new AbortController().signal, o);
    assert.equal(result, 'image');
    assert.equal(runs, 3);
    assert.deepEqual(o.waits, [1050, 1050]);
  });

  it('gives up after `retries` and throws the last failure; 0 retries is one try', async () => {
    for (const retries of [0, 2]) {
      let runs = 0;
      const last = overloaded(undefined, 503);
      await assert.rejects(
        retryOnOverload(async () => {
          runs += 1;
          throw last;
        }, new AbortController().signal, options({ retries })),
        (err) => err === last,
      );
      assert.equal(runs, retries + 1);
    }
  });

  it('does not retry other failures', async () => {
    let runs = 0;
    await assert.rejects(
      retryOnOverload(async () => {
        runs += 1;
        throw backendErrorFailure('gpu-a', 'HTTP 500', { retryable: true });
      }, new AbortController().signal, options()),
      /HTTP 500/,
    );
    assert.equal(runs, 1);
  });

  it('an abort ends the wait at once, and nothing runs after it', async () => {
    const controller = new AbortController();
    let runs = 0;
    // The real sleep, told to wait the full 10 s; the abort comes as the wait begins.
    const pending = retryOnOverload(async () => {
      runs += 1;
      throw overloaded(10);
    }, controller.signal, { retries: 2, maxDelayMs: 10_000, baseDelayMs: 250, onRetry: () => queueMicrotask(() => controller.abort()) });
    await assert.rejects(pending, (err: unknown) => isAbortError(err));
    assert.equal(runs, 1);
  });
});
