import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedQueue } from './bounded-queue.ts';
import { ApiError } from '../domain/errors.ts';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

test('runs at most `concurrency` at once, queues up to maxWaiting, refuses the rest with 503 + Retry-After', async () => {
  const q = new BoundedQueue(1, 1, 'test');
  const gate = deferred();
  const order: string[] = [];
  const a = q.run(async () => {
    order.push('a');
    await gate.promise;
  });
  const b = q.run(async () => {
    order.push('b');
  });
  assert.deepEqual(q.stats().running, 1);
  assert.deepEqual(q.stats().waiting, 1);
  await assert.rejects(q.run(async () => undefined), (err: ApiError) => err.code === 'queue_full' && err.status === 503 && (err.retryAfterS ?? 0) >= 1);
  gate.resolve();
  await Promise.all([a, b]);
  assert.deepEqual(order, ['a', 'b']);
  assert.deepEqual([q.stats().running, q.stats().waiting], [0, 0]);
});

test('an aborted waiter leaves the queue; a failing task frees its slot', async () => {
  const q = new BoundedQueue(1, 2, 'test');
  const gate = deferred();
  const a = q.run(() => gate.promise);
  const ac = new AbortController();
  const b = q.run(async () => 'b', ac.signal);
  ac.abort(new Error('client left'));
  await assert.rejects(b, /client left/);
  assert.equal(q.stats().waiting, 0);
  gate.resolve();
  await a;
  await assert.rejects(q.run(async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await q.run(async () => 'ok'), 'ok');
  assert.equal(q.stats().running, 0);
});
