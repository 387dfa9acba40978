/**
 * The BullMQ queue on a real redis-server: the shared conformance suite (two handles = two processes),
 * then what only a shared queue does: a claimer that stops renewing (killed) has its job handed to
 * another claimer by the stalled check, a live claimer keeps its job, and complete() ends a job for good.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { waitUntil } from '../../../test/helpers/wait-until.ts';
import { redisOptionsFromUrl } from '../redis/redis-url.ts';
import { runJobQueueConformance } from '../testing/job-queue-conformance.ts';
import { createBullmqJobQueue, queueNameOf, type BullmqJobQueue } from './bullmq-job-queue.ts';

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

/** Handles on one Redis under one fresh prefix, each with its own connections, as separate processes would have. */
function openQueues(lock: { lockMs: number; stalledIntervalMs: number } = { lockMs: 30_000, stalledIntervalMs: 30_000 }) {
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const opened: Array<{ queue: BullmqJobQueue; commands: Redis }> = [];
  return {
    prefix,
    open: async (): Promise<BullmqJobQueue> => {
      const commands = new Redis(redis.url);
      const queue = createBullmqJobQueue({ connection: redisOptionsFromUrl(redis.url), commands, prefix, ...lock });
      await queue.ready();
      opened.push({ queue, commands });
      return queue;
    },
    /** Closes one handle without completing what it holds, as a killed process leaves it. */
    kill: async (queue: BullmqJobQueue) => {
      const entry = opened.find((o) => o.queue === queue)!;
      await entry.queue.close();
      entry.commands.disconnect();
    },
    teardown: async () => {
      for (const { queue, commands } of opened) {
        await queue.close();
        commands.disconnect();
      }
    },
  };
}

runJobQueueConformance('bullmq', async () => openQueues());

describe('BullMQ queue: shared across processes', () => {
  const MODEL = 'alibaba/qwen-image-2-0';
  let queues: ReturnType<typeof openQueues>;
  afterEach(async () => {
    await queues?.teardown();
  });

  it('derives queue names BullMQ accepts (no ":") and keeps them distinct', () => {
    assert.equal(queueNameOf('alibaba/qwen-image-2-0'), 'jobs.alibaba_2fqwen-image-2-0');
    assert.doesNotMatch(queueNameOf('a:b'), /:/);
    assert.notEqual(queueNameOf('a/b'), queueNameOf('a_2fb'));
  });

  it('a killed claimer\'s job goes to another claimer after the stalled check; a live claimer keeps its own', async () => {
    // Short locks so the test takes seconds; production keeps BullMQ's 30 s.
    queues = openQueues({ lockMs: 1000, stalledIntervalMs: 500 });
    const dying = await queues.open();
    const alive = await queues.open();
    const taker = await queues.open();
    const [kept, lost] = [`job_${randomUUID()}`, `job_${randomUUID()}`];
    await taker.enqueue(kept, MODEL);
    await taker.enqueue(lost, MODEL);
    assert.equal(await alive.claim(MODEL), kept);
    assert.equal(await dying.claim(MODEL), lost);
    let available = 0;
    taker.onAvailable!(() => (available += 1));
    // The taker runs the stalled check once it has claimed (here: found nothing).
    assert.equal(await taker.claim(MODEL), null);
    await queues.kill(dying);

    await waitUntil(async () => available > 0 && (await taker.has(lost)), 'the killed claimer\'s job to be waiting again');
    assert.equal(await taker.position(lost), 0, 'a job that came back is next in line');
    assert.equal(await taker.claim(MODEL), lost);
    // The lost job's lock was as old as the kept one's: only renewal kept `kept` from coming back too.
    assert.equal(await taker.claim(MODEL), null);
    assert.equal(await taker.has(kept), false);
    await alive.complete(kept);
    await taker.complete(lost);
    assert.equal(redis.cli('--raw', 'EXISTS', `${queues.prefix}:bull:${queueNameOf(MODEL)}:${kept}`).trim(), '0');
  });

  it('complete() ends a job for good: nothing is left in Redis to hand out again', async () => {
    queues = openQueues({ lockMs: 1000, stalledIntervalMs: 500 });
    const worker = await queues.open();
    const id = `job_${randomUUID()}`;
    await worker.enqueue(id, MODEL);
    assert.equal(await worker.claim(MODEL), id);
    await worker.complete(id);
    const base = `${queues.prefix}:bull:${queueNameOf(MODEL)}`;
    assert.equal(redis.cli('--raw', 'EXISTS', `${base}:${id}`).trim(), '0', 'the job hash is gone (removeOnComplete)');
    assert.equal(redis.cli('--raw', 'LLEN', `${base}:active`).trim(), '0');
    assert.equal(redis.cli('--raw', 'ZCARD', `${base}:completed`).trim(), '0');
    assert.equal(redis.cli('--raw', 'HEXISTS', `${queues.prefix}:jobq:model`, id).trim(), '0');
    assert.equal(await worker.claim(MODEL), null);
  });

  it('onAvailable fires when another process enqueues', async () => {
    queues = openQueues();
    const worker = await queues.open();
    const api = await queues.open();
    assert.equal(await worker.claim(MODEL), null);
    let woken = 0;
    const stop = worker.onAvailable!(() => (woken += 1));
    await waitUntil(() => woken > 0, 'the first wake-up once the events are followed');
    const before = woken;
    const id = `job_${randomUUID()}`;
    await api.enqueue(id, MODEL);
    await waitUntil(() => woken > before, 'a wake-up for the job the API process enqueued');
    stop();
    assert.equal(await worker.claim(MODEL), id);
    await worker.complete(id);
  });
});
