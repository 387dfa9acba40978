/**
 * kill -9 of a worker process that holds a claimed job, a backend slot and a watch: within the lock and
 * lease TTLs another process gets the job, the slot and a view without the dead watch. Nothing is cleaned
 * up by the dead process; only Redis-side expiry and BullMQ's stalled check bring things back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startRedis, type TestRedis } from '../../../test/helpers/redis.ts';
import { waitUntil } from '../../../test/helpers/wait-until.ts';
import { connectRedis } from './connect-redis.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

it('a killed worker\'s job, backend slot and watch all come back', async () => {
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const model = 'alibaba/qwen-image-2-0';
  const survivor = await connectRedis({ url: redis.url, prefix, lockMs: 1000, stalledIntervalMs: 500, leaseTtlMs: 900 });
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'testing', 'hold-until-killed.ts'), redis.url, prefix, model], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const jobId = `job_${randomUUID()}`;
    await survivor.queue.enqueue(jobId, model);
    let line = '';
    child.stdout!.on('data', (chunk: Buffer) => (line += chunk.toString()));
    await waitUntil(() => line.includes('\n') || child.exitCode !== null, 'the child to report what it holds');
    assert.deepEqual(JSON.parse(line), { jobId, slot: true });
    await waitUntil(() => survivor.events.hasSubscribers(jobId), 'the child\'s watch to be seen');
    assert.equal(await survivor.slots.tryAcquire('gpu', 1), null);
    // The survivor's claim starts its stalled check; the job is the child's for now.
    assert.equal(await survivor.queue.claim(model), null);

    child.kill('SIGKILL');
    await once(child, 'exit');

    await waitUntil(async () => (await survivor.queue.has(jobId)) || false, 'the job to return to the queue');
    assert.equal(await survivor.queue.claim(model), jobId);
    await survivor.queue.complete(jobId);
    await waitUntil(() => !survivor.events.hasSubscribers(jobId), 'the dead watch to expire');
    let lease = null;
    await waitUntil(async () => (lease = await survivor.slots.tryAcquire('gpu', 1)) !== null, 'the dead lease to expire');
    assert.ok(lease);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await survivor.close();
  }
});
