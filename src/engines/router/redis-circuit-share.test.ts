/**
 * Circuit breakers shared through a real redis-server: two routers (as two worker processes, each with its own
 * connections) in front of one fake GPU server. When one trips the breaker, the other opens it without sending a
 * request; when the first one's probe succeeds, the other closes it too. And the share's own messages.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startFakeOpenaiImages, type FakeOpenaiImages } from '../../../test/fakes/fake-openai-images.ts';
import { startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { waitUntil } from '../../../test/helpers/wait-until.ts';
import { OpenaiEngine } from '../openai/openai-engine.ts';
import { conformanceRequest } from '../testing/conformance.ts';
import type { CircuitNews } from './circuit-share.ts';
import { createRedisCircuitShare, type RedisCircuitShare } from './redis-circuit-share.ts';
import { RouterEngine } from './router-engine.ts';

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

describe('circuit breakers shared over Redis', () => {
  const opened: Array<{ share: RedisCircuitShare; connections: Redis[] }> = [];
  let prefix = '';
  /** One process's share: its own command and subscriber connections. */
  async function open(): Promise<RedisCircuitShare> {
    const commands = new Redis(redis.url);
    const subscriber = new Redis(redis.url);
    const share = createRedisCircuitShare({ commands, subscriber, prefix });
    await share.ready();
    opened.push({ share, connections: [commands, subscriber] });
    return share;
  }
  afterEach(async () => {
    for (const { share, connections } of opened.splice(0)) {
      await share.close();
      for (const c of connections) c.disconnect();
    }
  });

  it('delivers a process\'s news to the others and not to itself', async () => {
    prefix = `t-${randomUUID()}`;
    const [a, b] = [await open(), await open()];
    const heardByA: CircuitNews[] = [];
    const heardByB: CircuitNews[] = [];
    a.subscribe((n) => heardByA.push(n));
    b.subscribe((n) => heardByB.push(n));
    const news: CircuitNews = { model: 'm', backendId: 'gpu', state: 'open', atMs: 1_700_000_000_000 };
    a.publish(news);
    b.publish({ ...news, state: 'closed', atMs: news.atMs + 5 });
    await waitUntil(() => heardByA.length === 1 && heardByB.length === 1, 'each share heard the other');
    assert.deepEqual(heardByB, [news]);
    assert.deepEqual(heardByA, [{ ...news, state: 'closed', atMs: news.atMs + 5 }]);
  });

  describe('two routers in front of one GPU server', () => {
    let gpu: FakeOpenaiImages;
    before(async () => {
      gpu = await startFakeOpenaiImages();
    });
    after(async () => {
      await gpu.close();
    });

    function router(share?: RedisCircuitShare): RouterEngine {
      return new RouterEngine({
        model: 'alibaba/qwen-image-2-0',
        backends: [{ id: 'gpu', engine: new OpenaiEngine({ id: 'gpu', url: gpu.url }), priority: 0, weight: 1, concurrency: 4, maxReferenceImages: 3, timeoutMs: 0 }],
        healthCheck: { intervalMs: 0, timeoutMs: 500 },
        circuitBreaker: { failureThreshold: 2, resetMs: 300 },
        circuitShare: share,
      });
    }
    const circuit = (r: RouterEngine) => r.describe().backends[0]!;

    it('a circuit one worker opens is open in the other, which sends nothing; the probe\'s success closes both', async () => {
      prefix = `t-${randomUUID()}`;
      gpu.reset();
      const first = router(await open());
      const second = router(await open());
      await Promise.all([first.load(), second.load()]);
      try {
        gpu.failure = 'server-error';
        for (let i = 0; i < 2; i++) await assert.rejects(first.generate(conformanceRequest(), new AbortController().signal));
        assert.equal(circuit(first).circuit, 'open');
        await waitUntil(() => circuit(second).circuit !== 'closed', 'the second worker heard the circuit open');
        assert.equal(circuit(second).requests, 0, 'the second worker learnt it without a request of its own');
        assert.equal(gpu.requests.length, 2);

        // the backend recovers; once the first worker's circuit lets a probe through, its request succeeds
        gpu.failure = 'none';
        await waitUntil(() => circuit(first).circuit === 'half-open', 'the first worker\'s circuit turned half-open');
        const result = await first.generate(conformanceRequest(), new AbortController().signal);
        assert.equal(result.info?.backend, 'gpu');
        assert.equal(circuit(first).circuit, 'closed');
        await waitUntil(() => circuit(second).circuit === 'closed', 'the second worker heard the circuit close');
        assert.equal(circuit(second).consecutiveFailures, 0);
        assert.equal(circuit(second).requests, 0);
      } finally {
        await Promise.all([first.close(), second.close()]);
      }
    });

    it('without a share, the second worker keeps its circuit closed until it fails itself', async () => {
      prefix = `t-${randomUUID()}`;
      gpu.reset();
      const first = router(await open());
      const alone = router();
      await Promise.all([first.load(), alone.load()]);
      try {
        gpu.failure = 'server-error';
        for (let i = 0; i < 2; i++) await assert.rejects(first.generate(conformanceRequest(), new AbortController().signal));
        assert.equal(circuit(first).circuit, 'open');
        await assert.rejects(alone.generate(conformanceRequest(), new AbortController().signal));
        assert.equal(circuit(alone).requests, 1, 'it had to send its own failing request');
        assert.equal(circuit(alone).circuit, 'closed');
      } finally {
        await Promise.all([first.close(), alone.close()]);
      }
    });
  });
});
