import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from '../domain/errors.ts';
import { deferred } from '../engines/testing/scripted-engine.ts';
import { createWorkGate } from './work-gate.ts';

describe('image work gate', () => {
  it('runs at most `concurrency` tasks, queues up to `maxQueue`, and answers 503 queue_full beyond', async () => {
    const gate = createWorkGate({ concurrency: 1, maxQueue: 1, what: 'decoding images' });
    const first = deferred();
    const order: string[] = [];
    const a = gate.run(async () => {
      order.push('a');
      await first.promise;
    });
    const b = gate.run(async () => {
      order.push('b');
    });
    await new Promise((r) => setImmediate(r)); // the first task has started
    assert.deepEqual(gate.stats(), { running: 1, waiting: 1, started: 1, droppedWaiting: 0 });
    await assert.rejects(gate.run(async () => undefined), (err: unknown) => isApiError(err) && err.code === 'queue_full' && err.retryAfterS === 1 && /decoding images/.test(err.message));
    first.resolve();
    await Promise.all([a, b]);
    assert.deepEqual(order, ['a', 'b']);
    assert.deepEqual(gate.stats(), { running: 0, waiting: 0, started: 2, droppedWaiting: 0 });
  });

  it('an aborted waiter leaves the queue without running, and the slot goes to the next one', async () => {
    const gate = createWorkGate({ concurrency: 1, maxQueue: 4, what: 'x' });
    const hold = deferred();
    const held = gate.run(() => hold.promise);
    const controller = new AbortController();
    let ranAborted = false;
    const aborted = gate.run(async () => {
      ranAborted = true;
    }, controller.signal);
    const next = gate.run(async () => 'next');
    controller.abort(new Error('the sibling reference failed'));
    await assert.rejects(aborted, /the sibling reference failed/);
    assert.equal(gate.stats().waiting, 1);
    hold.resolve();
    await held;
    assert.equal(await next, 'next');
    assert.equal(ranAborted, false);
    assert.deepEqual(gate.stats(), { running: 0, waiting: 0, started: 2, droppedWaiting: 1 });
  });

  it('a task that throws frees its slot', async () => {
    const gate = createWorkGate({ concurrency: 1, maxQueue: 0, what: 'x' });
    await assert.rejects(gate.run(async () => Promise.reject(new Error('bad image'))), /bad image/);
    assert.equal(await gate.run(async () => 5), 5);
  });
});
