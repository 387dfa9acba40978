/**
 * Backend slots in a real redis-server: the limit holds across instances (processes) under concurrent
 * acquires, a dropped holder's lease expires while a live one's is renewed, and two routers sharing the
 * slots in front of one fake GPU server never send it more than its concurrency.
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
import type { BackendSlots, SlotLease } from './backend-slots.ts';
import { createRedisBackendSlots, type RedisBackendSlots } from './redis-backend-slots.ts';
import { RouterEngine } from './router-engine.ts';

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

describe('Redis backend slots', () => {
  const opened: Array<{ slots: RedisBackendSlots; connection: Redis }> = [];
  let prefix = '';
  function open(leaseTtlMs = 30_000): RedisBackendSlots {
    const connection = new Redis(redis.url);
    const slots = createRedisBackendSlots({ redis: connection, prefix, leaseTtlMs });
    opened.push({ slots, connection });
    return slots;
  }
  /** Drops an instance as a killed worker would: no release, no more renewals. */
  async function kill(slots: RedisBackendSlots): Promise<void> {
    const entry = opened.find((o) => o.slots === slots)!;
    await slots.close();
    entry.connection.disconnect();
  }
  afterEach(async () => {
    for (const { slots, connection } of opened.splice(0)) {
      await slots.close();
      connection.disconnect();
    }
  });
  const fresh = () => (prefix = `t${randomUUID().slice(0, 8)}`);

  it('counts the live leases of every process, and not an expired one', async () => {
    fresh();
    const a = open();
    const b = open(300);
    assert.equal(await a.inUse('gpu-1'), 0);
    const held = await a.tryAcquire('gpu-1', 3);
    const dropped = await b.tryAcquire('gpu-1', 3);
    assert.ok(held && dropped);
    assert.equal(await b.inUse('gpu-1'), 2, 'both processes see both leases');
    await kill(b);
    await waitUntil(async () => (await a.inUse('gpu-1')) === 1, 'the dropped lease to expire');
    await held.release();
    assert.equal(await a.inUse('gpu-1'), 0);
  });

  it('50 concurrent acquires from two processes get exactly the limit', async () => {
    fresh();
    const a = open();
    const b = open();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).tryAcquire('gpu-1', 2)));
    const leases = results.filter((l): l is SlotLease => l !== null);
    assert.equal(leases.length, 2);
    assert.equal(await a.tryAcquire('gpu-2', 1).then((l) => l !== null), true, 'backends are counted apart');
    await leases[0]!.release();
    await leases[0]!.release(); // idempotent: frees one slot, not two
    const again = await Promise.all(Array.from({ length: 10 }, () => b.tryAcquire('gpu-1', 2)));
    assert.equal(again.filter((l) => l !== null).length, 1);
  });

  it('a dropped holder\'s lease expires; a live holder\'s is renewed', async () => {
    fresh();
    const alive = open(600);
    const dying = open(600);
    const other = open(600);
    assert.ok(await alive.tryAcquire('gpu', 2));
    assert.ok(await dying.tryAcquire('gpu', 2));
    assert.equal(await other.tryAcquire('gpu', 2), null);
    await kill(dying);
    let taken: SlotLease | null = null;
    await waitUntil(async () => (taken = await other.tryAcquire('gpu', 2)) !== null, 'the dropped lease to expire');
    assert.ok(taken);
    // The live lease is as old as the dropped one was, and still holds its slot.
    assert.equal(await other.tryAcquire('gpu', 2), null);
  });

  describe('two routers sharing the slots in front of one backend', () => {
    let fake: FakeOpenaiImages;
    before(async () => {
      fake = await startFakeOpenaiImages();
    });
    after(async () => {
      await fake?.close();
    });

    function router(slots?: BackendSlots): RouterEngine {
      return new RouterEngine({
        model: 'alibaba/qwen-image-2-0',
        backends: [{ id: 'gpu', engine: new OpenaiEngine({ id: 'gpu', url: fake.url, flavor: 'vllm-omni' }), priority: 0, weight: 1, concurrency: 1, maxReferenceImages: 3, timeoutMs: 0 }],
        healthCheck: { intervalMs: 0, timeoutMs: 500 },
        circuitBreaker: { failureThreshold: 3, resetMs: 30_000 },
        ...(slots ? { slots } : {}),
      });
    }

    async function drive(routers: RouterEngine[], jobs: number): Promise<void> {
      const results = await Promise.all(
        Array.from({ length: jobs }, (_, i) => routers[i % routers.length]!.generate(conformanceRequest({ width: 256, height: 256 }), new AbortController().signal)),
      );
      for (const r of results) assert.equal(r.image.width, 256);
    }

    it('never exceeds the backend\'s concurrency (and would without shared slots)', async () => {
      fresh();
      fake.reset();
      fake.delayMs = 40;
      const shared = [router(open()), router(open())];
      await drive(shared, 8);
      assert.equal(fake.requests.length, 8);
      assert.equal(fake.maxInFlight, 1, 'one job at a time on a concurrency-1 backend');

      // The same two routers counting only their own slots send it two at once: the test can tell.
      fake.reset();
      fake.delayMs = 200;
      const separate = [router(), router()];
      await drive(separate, 2);
      assert.equal(fake.maxInFlight, 2);
      for (const r of [...shared, ...separate]) await r.close();
    });
  });
});
