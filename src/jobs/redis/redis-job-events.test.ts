/** JobEvents over a real redis-server, between two instances with their own connections (two processes). */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { waitUntil } from '../../../test/helpers/wait-until.ts';
import type { JobEvent } from '../ports.ts';
import { createRedisJobEvents, type RedisJobEvents } from './redis-job-events.ts';

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

describe('Redis JobEvents', () => {
  // A prefix per test: watches a test leaves behind (closed, not unsubscribed) live until their TTL.
  let prefix = '';
  beforeEach(() => {
    prefix = `t${randomUUID().slice(0, 8)}`;
  });
  const opened: Array<{ events: RedisJobEvents; connections: Redis[] }> = [];
  async function open(watchTtlMs = 30_000): Promise<RedisJobEvents> {
    const connections = [new Redis(redis.url), new Redis(redis.url)];
    const events = createRedisJobEvents({ commands: connections[0]!, subscriber: connections[1]!, prefix, watchTtlMs });
    await events.ready();
    opened.push({ events, connections });
    return events;
  }
  /** Stops an instance without unsubscribing anything, as a killed process leaves its watches. */
  async function kill(events: RedisJobEvents): Promise<void> {
    const entry = opened.find((o) => o.events === events)!;
    await events.close();
    for (const c of entry.connections) c.disconnect();
  }
  afterEach(async () => {
    for (const { events, connections } of opened.splice(0)) {
      await events.close();
      for (const c of connections) c.disconnect();
    }
  });

  it('delivers another process\'s events in order, and local ones at once without duplicates', async () => {
    const api = await open();
    const worker = await open();
    const jobId = `job_${randomUUID()}`;
    const seen: JobEvent[] = [];
    const local: JobEvent[] = [];
    api.subscribe(jobId, (e) => seen.push(e));
    worker.subscribe(jobId, (e) => local.push(e));
    await waitUntil(() => worker.hasSubscribers(jobId) && api.watchedJobIds().includes(jobId), 'both watches to be known');
    worker.publish({ type: 'running', jobId, attempt: 1 });
    assert.equal(local.length, 1, 'a listener in the publishing process hears it synchronously');
    for (let step = 1; step <= 50; step++) worker.publish({ type: 'progress', jobId, step, steps: 50 });
    worker.publish({ type: 'succeeded', jobId });
    await waitUntil(() => seen.length === 52, 'all 52 events at the API process');
    assert.deepEqual(seen.map((e) => (e.type === 'progress' ? e.step : e.type)), ['running', ...Array.from({ length: 50 }, (_, i) => i + 1), 'succeeded']);
    assert.equal(local.length, 52, 'the Redis copy of its own events is not delivered twice');
    // Another job's events do not reach this listener.
    worker.publish({ type: 'failed', jobId: `job_${randomUUID()}` });
    api.publish({ type: 'canceled', jobId });
    await waitUntil(() => local.length === 53, 'the API process\'s event at the worker');
    assert.equal(local.at(-1)!.type, 'canceled');
    assert.equal(seen.length, 53);
  });

  it('carries a partial image\'s pixels intact', async () => {
    const api = await open();
    const worker = await open();
    const jobId = `job_${randomUUID()}`;
    const data = new Uint8Array(64 * 48 * 3).map((_, i) => (i * 7) % 256);
    let received: JobEvent | undefined;
    api.subscribe(jobId, (e) => (received = e));
    await waitUntil(() => worker.hasSubscribers(jobId), 'the worker to see the watch');
    // A view into a larger buffer, as engines hand out.
    const backing = new Uint8Array(data.length + 10);
    backing.set(data, 5);
    worker.publish({ type: 'partial_image', jobId, index: 1, image: { width: 64, height: 48, data: backing.subarray(5, 5 + data.length) } });
    await waitUntil(() => received !== undefined, 'the partial image');
    assert.ok(received?.type === 'partial_image');
    assert.equal(received.index, 1);
    assert.equal(received.image.width, 64);
    assert.equal(received.image.height, 48);
    assert.ok(received.image.data instanceof Uint8Array);
    assert.deepEqual(Buffer.from(received.image.data), Buffer.from(data));
  });

  it('hasSubscribers answers for watchers in another process, and forgets them on unsubscribe', async () => {
    const api = await open();
    const worker = await open();
    const jobId = `job_${randomUUID()}`;
    assert.equal(worker.hasSubscribers(jobId), false);
    const stop = api.subscribe(jobId, () => {});
    const stop2 = api.subscribe(jobId, () => {});
    await waitUntil(() => worker.hasSubscribers(jobId), 'the worker to see the API\'s watch');
    assert.deepEqual(worker.watchedJobIds(), [jobId]);
    stop();
    const late = await open();
    assert.equal(late.hasSubscribers(jobId), true, 'a process started later reads the watches at start');
    stop2();
    await waitUntil(() => !worker.hasSubscribers(jobId) && !late.hasSubscribers(jobId), 'the unsubscribe to be seen');
    assert.deepEqual(worker.watchedJobIds(), []);
  });

  it('a listener that does not watch hears another process\'s events and is no watcher anywhere', async () => {
    const api = await open();
    const worker = await open();
    const jobId = `job_${randomUUID()}`;
    const heard: string[] = [];
    const stop = worker.subscribe(jobId, (event) => heard.push(event.type), { watch: false });
    assert.equal(worker.hasSubscribers(jobId), false);
    // The channel subscription is asynchronous: publish until the worker hears one.
    await waitUntil(() => {
      api.publish({ type: 'canceled', jobId });
      return heard.length > 0;
    }, 'the worker to hear the cancel');
    assert.equal(heard[0], 'canceled');
    // A watch of another job, announced after anything this one could have announced on the same connection.
    const other = `job_${randomUUID()}`;
    const stopOther = worker.subscribe(other, () => {});
    await waitUntil(() => api.hasSubscribers(other), 'the API to see the worker\'s watch of the other job');
    assert.equal(api.hasSubscribers(jobId), false);
    assert.deepEqual(api.watchedJobIds(), [other]);
    stop();
    stopOther();
  });

  it('a dead process\'s watches expire after their TTL', async () => {
    const dying = await open(600);
    const worker = await open(600);
    const jobId = `job_${randomUUID()}`;
    dying.subscribe(jobId, () => {});
    await waitUntil(() => worker.hasSubscribers(jobId), 'the watch to be seen');
    await kill(dying);
    await waitUntil(() => !worker.hasSubscribers(jobId), 'the dead watch to expire');
    // Refreshed watches of a live process outlive the TTL several times over.
    const keeper = await open(600);
    keeper.subscribe(jobId, () => {});
    await waitUntil(() => worker.hasSubscribers(jobId), 'the live watch to be seen');
    const liveSince = Date.now();
    await waitUntil(() => Date.now() - liveSince > 3 * 600 || !worker.hasSubscribers(jobId), 'three TTLs to pass');
    assert.equal(worker.hasSubscribers(jobId), true, 'a refreshed watch does not expire');
  });
});
