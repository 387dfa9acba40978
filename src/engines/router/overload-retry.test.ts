import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeOpenaiImages, type FakeOpenaiImages } from '../../../test/fakes/fake-openai-images.ts';
import { validateBackendsConfig } from '../../config/backends.ts';
import { isAbortError } from '../../domain/errors.ts';
import { OpenaiEngine } from '../openai/openai-engine.ts';
import { conformanceRequest } from '../testing/conformance.ts';
import type { OverloadRetryOptions } from '../remote/retry.ts';
import { RouterEngine } from './router-engine.ts';

describe('router: same-backend retry on 429/503 before failover', () => {
  let primary: FakeOpenaiImages;
  let secondary: FakeOpenaiImages;

  before(async () => {
    primary = await startFakeOpenaiImages();
    secondary = await startFakeOpenaiImages();
  });
  after(async () => {
    await primary.close();
    await secondary.close();
  });
  beforeEach(() => {
    primary.reset();
    secondary.reset();
  });

  /** Both backends in one tier order: primary first (priority 0), secondary the fallback. */
  function router(sleep: NonNullable<OverloadRetryOptions['sleep']>, retries = 2): RouterEngine {
    const spec = (id: string, url: string, priority: number) => ({
      id,
      engine: new OpenaiEngine({ id, url }),
      priority,
      weight: 1,
      concurrency: 1,
      maxReferenceImages: 3,
      timeoutMs: 0,
    });
    return new RouterEngine({
      model: 'alibaba/qwen-image-2-0',
      backends: [spec('gpu-a', primary.url, 0), spec('gpu-b', secondary.url, 1)],
      healthCheck: { intervalMs: 0, timeoutMs: 5000 },
      circuitBreaker: { failureThreshold: 10, resetMs: 1000 },
      overloadRetry: { retries, maxDelayMs: 10_000, baseDelayMs: 250, random: () => 0, sleep },
    });
  }

  const imageRequests = (fake: FakeOpenaiImages) => fake.requests.length;

  it('429 with Retry-After: waits what the backend asked and gets the image from the same backend', async () => {
    primary.failure = 'rate-limit'; // 429, Retry-After: 7
    const waits: number[] = [];
    const r = router(async (ms) => {
      waits.push(ms);
      if (waits.length === 2) primary.failure = 'none';
    });
    try {
      await r.load();
      const result = await r.generate(conformanceRequest(), new AbortController().signal);
      assert.equal(result.info?.backend, 'gpu-a');
      assert.deepEqual(waits, [7000, 7000]);
      assert.equal(imageRequests(primary), 3);
      assert.equal(imageRequests(secondary), 0);
    } finally {
      await r.close();
    }
  });

  it('503 without Retry-After: short backoff, then N retries used up, then the next backend', async () => {
    primary.failure = 'unavailable';
    const waits: number[] = [];
    const r = router(async (ms) => void waits.push(ms));
    try {
      await r.load();
      const result = await r.generate(conformanceRequest(), new AbortController().signal);
      assert.equal(result.info?.backend, 'gpu-b');
      assert.deepEqual(waits, [125, 250]);
      assert.equal(imageRequests(primary), 3, 'one try and two retries');
      assert.equal(imageRequests(secondary), 1);
    } finally {
      await r.close();
    }
  });

  it('retries: 0 fails over at once; a 500 is never retried on the same backend', async () => {
    const waits: number[] = [];
    for (const [failure, retries] of [['unavailable', 0], ['server-error', 2]] as const) {
      primary.reset();
      secondary.reset();
      primary.failure = failure;
      const r = router(async (ms) => void waits.push(ms), retries);
      try {
        await r.load();
        const result = await r.generate(conformanceRequest(), new AbortController().signal);
        assert.equal(result.info?.backend, 'gpu-b');
        assert.equal(imageRequests(primary), 1, failure);
      } finally {
        await r.close();
      }
    }
    assert.deepEqual(waits, []);
  });

  it('an abort during the wait ends it at once: no further request anywhere', async () => {
    primary.failure = 'rate-limit';
    const controller = new AbortController();
    const r = router(
      (_ms, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          controller.abort();
        }),
    );
    try {
      await r.load();
      await assert.rejects(r.generate(conformanceRequest(), controller.signal), (err: unknown) => isAbortError(err));
      assert.equal(imageRequests(primary), 1);
      assert.equal(imageRequests(secondary), 0);
    } finally {
      await r.close();
    }
  });

  it('the routing file accepts overloadRetry and refuses unknown keys in it', () => {
    const models = { 'alibaba/qwen-image-2-0': { backends: [{ id: 'builtin', type: 'builtin' }] } };
    assert.deepEqual(validateBackendsConfig({ models, overloadRetry: { retries: 0, maxDelayMs: 5000 } }).overloadRetry, { retries: 0, maxDelayMs: 5000 });
    assert.throws(() => validateBackendsConfig({ models, overloadRetry: { tries: 1 } }), /overloadRetry: unknown property "tries"/);
  });
});
