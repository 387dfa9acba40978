/** connectRedis on a real redis-server: every part works through one factory; bad settings fail the start clearly. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ConfigError, readConfig } from '../../config/config.ts';
import { startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { waitUntil } from '../../../test/helpers/wait-until.ts';
import { connectRedis } from './connect-redis.ts';
import { redisOptionsFromUrl } from './redis-url.ts';

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

describe('connectRedis', () => {
  it('builds the queue, events, slots and window over one Redis, and closes them all', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const api = await connectRedis({ url: redis.url, prefix });
    const worker = await connectRedis({ url: redis.url, prefix });
    try {
      await api.ping();
      assert.equal(api.queue.sharedAcrossProcesses, true);
      const jobId = `job_${randomUUID()}`;
      const seen: string[] = [];
      api.events.subscribe(jobId, (e) => seen.push(e.type));
      await api.queue.enqueue(jobId, 'alibaba/qwen-image-2-0');
      assert.equal(await worker.queue.claim('alibaba/qwen-image-2-0'), jobId);
      await waitUntil(() => worker.events.hasSubscribers(jobId), 'the API\'s watch at the worker');
      worker.events.publish({ type: 'succeeded', jobId });
      await worker.queue.complete(jobId);
      await waitUntil(() => seen.length === 1, 'the worker\'s event at the API');
      const lease = await worker.slots.tryAcquire('gpu', 1);
      assert.ok(lease);
      assert.equal(await api.slots.tryAcquire('gpu', 1), null);
      await lease.release();
      assert.equal((await api.requestWindow.take('k', 1, 1000)).admitted, true);
      assert.equal((await worker.requestWindow.take('k', 1, 2000)).admitted, false);
      assert.ok(redis.cli('--raw', 'KEYS', `${prefix}:*`).trim().length > 0, 'keys live under the prefix');
      assert.equal(redis.cli('--raw', 'KEYS', 'bull:*').trim(), '', 'nothing outside it');
    } finally {
      await api.close();
      await worker.close();
    }
    // Every connection the factory or BullMQ opened is closed (only redis-cli's own remains).
    await waitUntil(() => redis.cli('--raw', 'CLIENT', 'LIST').trim().split('\n').length === 1, 'every connection to close');
  });

  it('refuses a URL that is not redis:// or rediss://, and names an unreachable server', async () => {
    assert.throws(() => redisOptionsFromUrl('http://localhost:6379'), /REDIS_URL must start with redis:\/\/ or rediss:\/\//);
    assert.deepEqual(redisOptionsFromUrl('rediss://u:p%40ss@cache.example:6380/2'), { host: 'cache.example', port: 6380, username: 'u', password: 'p@ss', db: 2, tls: { servername: 'cache.example' } });
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    await assert.rejects(connectRedis({ url: `redis://127.0.0.1:${closedPort}` }), /could not connect to Redis at 127\.0\.0\.1:\d+ \(REDIS_URL\)/);
  });

  it('reads REDIS_URL, REDIS_PREFIX and REDIS_JOB_LOCK_MS, with clear errors', () => {
    assert.deepEqual(readConfig({}).redis, { prefix: 'qis', jobLockMs: 30_000 });
    assert.deepEqual(readConfig({ REDIS_URL: 'redis://r:6379', REDIS_PREFIX: 'prod', REDIS_JOB_LOCK_MS: '5000' }).redis, { url: 'redis://r:6379', prefix: 'prod', jobLockMs: 5000 });
    assert.throws(() => readConfig({ REDIS_JOB_LOCK_MS: '10' }), /REDIS_JOB_LOCK_MS/);
    assert.throws(() => readConfig({ REDIS_URL: 'localhost:6379' }), (err: unknown) => err instanceof ConfigError && /REDIS_URL must start with redis:\/\/ or rediss:\/\//.test(err.message));
    assert.throws(() => readConfig({ REDIS_URL: 'https://user:secret@r' }), (err: unknown) => err instanceof ConfigError && !err.message.includes('secret'));
    assert.throws(() => readConfig({ REDIS_PREFIX: 'a b' }), /REDIS_PREFIX/);
  });
});
