/**
 * The runner's periodic sweep of a shared queue (job-recovery.ts sweepQueue): jobs the queue lost while the store
 * still holds them (a Redis restart without persistence) are put back; and what a worker publishes for a job
 * nobody watches. The same world as job-runner-shared.test.ts (testing/shared-runner-world.ts).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { waitUntil } from '../../test/helpers/wait-until.ts';
import type { JobEvent } from './ports.ts';
import { createWorld, disposeWorld, nextEvent, type World } from './testing/shared-runner-world.ts';

describe('job runner over a shared queue: the queue sweep, and progress nobody watches', () => {
  let w: World;
  beforeEach(() => {
    w = createWorld();
  });
  afterEach(() => disposeWorld(w));

  it('a queued job the queue lost (a Redis restart without persistence) is enqueued again by the next sweep and runs', async () => {
    const a = w.worker({ queueSweepMs: 0 });
    const patient = w.worker({ queueSweepMs: 600_000 });
    const id = await w.submit();
    assert.equal(await w.queue.remove(id), true);
    await a.runner.pump();
    assert.equal(a.calls.length, 0, 'nothing to claim: the queue has forgotten the job');
    // A sweep with a grace longer than the job's age leaves it: its submit may still be about to enqueue it.
    assert.deepEqual(await patient.runner.sweep(), { enqueued: 0, requeued: 0, failed: 0 });
    assert.equal(await w.queue.has(id), false);

    const succeeded = nextEvent(w.events, id, 'succeeded');
    assert.deepEqual(await a.runner.sweep(), { enqueued: 1, requeued: 0, failed: 0 });
    await waitUntil(() => a.calls.length === 1, 'the sweeping worker to run the job');
    a.calls[0]!.release();
    await succeeded;
    assert.equal((await w.store.get(id))?.attempts, 1);
    assert.equal(w.ledgerRows(id), 1);
    assert.deepEqual(await a.runner.sweep(), { enqueued: 0, requeued: 0, failed: 0 }, 'nothing left to put back');
  });

  it('a running job whose worker and queue entry are both gone runs again once twice the run deadline has passed', async () => {
    const dead = w.worker();
    const id = await w.submit();
    await dead.runner.pump();
    await waitUntil(() => dead.calls.length === 1, 'the first worker to reach its engine');
    const startedAt = (await w.store.get(id))!.startedAtMs!;
    // Redis lost the claimed job with everything else, and its worker stopped: no lock, no stalled check brings it back.
    await w.queue.complete(id);
    let clock = startedAt + 2 * 1000;
    const b = w.worker({ queueSweepMs: 0, runTimeoutMs: 1000, now: () => clock });
    assert.deepEqual(await b.runner.sweep(), { enqueued: 0, requeued: 0, failed: 0 }, 'within twice the deadline a live worker may still be running it');
    assert.equal(b.calls.length, 0);

    clock = startedAt + 2 * 1000 + 1;
    const succeeded = nextEvent(w.events, id, 'succeeded');
    assert.deepEqual(await b.runner.sweep(), { enqueued: 0, requeued: 1, failed: 0 });
    await waitUntil(() => b.calls.length === 1, 'the sweeping worker to run the job again');
    assert.equal((await w.store.get(id))?.attempts, 2);
    b.calls[0]!.release();
    await succeeded;
    // The first worker was only frozen: its late result is fenced off by its attempt number.
    dead.calls[0]!.release();
    await waitUntil(() => !dead.runner.isRunningHere(id), 'the first worker to finish');
    assert.equal((await w.store.get(id))?.status, 'succeeded');
    assert.equal(w.ledgerRows(id), 1);
  });

  it('such a job already at its last attempt is failed as interrupted by the sweep, never charged', async () => {
    const dead = w.worker();
    const id = await w.submit();
    await dead.runner.pump();
    await waitUntil(() => dead.calls.length === 1, 'the first worker to reach its engine');
    await w.queue.complete(id);
    const clock = (await w.store.get(id))!.startedAtMs! + 10_000;
    const b = w.worker({ queueSweepMs: 0, runTimeoutMs: 1000, maxAttempts: 1, now: () => clock });
    const failed = nextEvent(w.events, id, 'failed');
    assert.deepEqual(await b.runner.sweep(), { enqueued: 0, requeued: 0, failed: 1 });
    await failed;
    const job = await w.store.get(id);
    assert.equal(job?.status, 'failed');
    assert.equal(job?.error?.error.code, 'job_interrupted');
    assert.equal(b.calls.length, 0);
    dead.calls[0]!.release();
    await waitUntil(() => !dead.runner.isRunningHere(id), 'the first worker to finish');
    assert.equal(w.ledgerRows(id), 0);
  });

  it('a worker publishes progress and encodes previews only while someone watches the job, not for its own cancel listener', async () => {
    const encoded: number[] = [];
    const a = w.worker({ encodePreview: async (image) => (encoded.push(image.data[0]!), `data:image/webp;base64,${image.data[0]}`) });
    const id = await w.submit();
    await a.runner.pump();
    await waitUntil(() => a.calls.length === 1, 'the worker to reach its engine');
    assert.equal(w.events.hasSubscribers(id), false, 'the runner listens for a cancel without being a watcher');
    a.calls[0]!.progress(1);
    await waitUntil(async () => (await w.store.get(id))?.progress?.step === 1, 'step 1 to be recorded');
    assert.deepEqual(encoded, [], 'nobody watches: no preview encoded');

    const heard: JobEvent[] = [];
    const stop = w.events.subscribe(id, (event) => heard.push(event));
    a.calls[0]!.progress(2);
    await waitUntil(() => encoded.length === 1, 'the preview of step 2 to be encoded for the watcher');
    assert.deepEqual(encoded, [2]);
    a.calls[0]!.progress(3);
    await waitUntil(() => heard.some((e) => e.type === 'progress' && e.step === 3 && e.preview !== undefined), 'step 3 to reach the watcher with the preview');
    stop();
    a.calls[0]!.release();
    await waitUntil(async () => (await w.store.get(id))?.status === 'succeeded', 'the job to succeed');
  });
});
