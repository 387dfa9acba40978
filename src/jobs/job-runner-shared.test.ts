/**
 * The job runner over a queue shared by several processes, as BullMQ is: two or three runner
 * instances (each standing for a worker process) over one real SQLite job store, one filesystem blob
 * store and one JobEvents object (standing for Redis pub/sub). The queue is the embedded SQLite queue
 * behind a small test wrapper that marks itself shared, holds each claimed job until `complete`, and
 * can hand one out again the way BullMQ's stalled-job check does once a worker stops renewing its lock.
 * Engines are gated fakes (no GPU here); everything after the engine (encode, store, commit, ledger)
 * is the real pipeline. The harness is testing/shared-runner-world.ts; the queue sweep has job-runner-sweep.test.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import { createRunGeneration } from '../pipeline/run-generation.ts';
import { encodeReference, referenceKey } from '../pipeline/reference-blobs.ts';
import { waitUntil } from '../../test/helpers/wait-until.ts';
import { createJobRunner } from './job-runner.ts';
import type { JobEvent, JobQueue } from './ports.ts';
import { MODEL, createGatedEngine, createWorld, disposeWorld, nextEvent, silent, unusedEnhancer, type SharedBackend, type World } from './testing/shared-runner-world.ts';

describe('job runner over a shared queue', () => {
  let w: World;
  beforeEach(() => {
    w = createWorld();
  });
  afterEach(() => disposeWorld(w));

  it('a worker claims only what the shared backend slots can take: a job stays queued while another worker holds the slot', async () => {
    const gpu: SharedBackend = { limit: 1, inUse: 0 };
    // Each worker's routing file gives it 2 slots of its own; the one GPU behind them both takes 1.
    const a = w.worker({ shared: gpu, capacity: 2 });
    const b = w.worker({ shared: gpu, capacity: 2 });
    const first = await w.submit();
    await a.runner.pump();
    await waitUntil(() => a.calls.length === 1, 'worker A to reach the GPU');
    const second = await w.submit();
    await a.runner.pump();
    await b.runner.pump();
    assert.equal((await w.store.get(second))?.status, 'queued', 'neither worker took a job the GPU cannot take now');
    assert.equal(b.calls.length, 0);
    a.calls[0]!.release();
    await waitUntil(async () => (await w.store.get(first))?.status === 'succeeded', 'the first job to succeed');
    // A pumps when its job ends: the GPU's slot is free again, and the second job starts on A.
    await waitUntil(() => a.calls.length === 2, 'the second job to reach the GPU');
    assert.equal((await w.store.get(second))?.status, 'running');
    assert.equal(gpu.inUse, 1);
  });

  it('a job handed out again after its worker stopped is reclaimed, run as a new attempt and completed in the queue', async () => {
    const a = w.worker();
    const b = w.worker();
    const id = await w.submit();
    await a.runner.pump();
    await waitUntil(() => a.calls.length === 1, 'worker A to reach its engine');
    assert.equal((await w.store.get(id))?.attempts, 1);

    // A stops renewing its lock (killed, or frozen): the queue gives the job to whoever claims next.
    await w.queue.redeliver(id, MODEL);
    const succeeded = nextEvent(w.events, id, 'succeeded');
    await b.runner.pump();
    await waitUntil(() => b.calls.length === 1, 'worker B to reach its engine');
    assert.equal(b.runner.isRunningHere(id), true);
    assert.equal((await w.store.get(id))?.attempts, 2);
    b.calls[0]!.release();
    await succeeded;

    const job = await w.store.get(id);
    assert.equal(job?.status, 'succeeded');
    assert.equal(w.ledgerRows(id), 1);
    await waitUntil(() => !b.runner.isRunningHere(id), 'worker B to let go of the job');
    assert.equal(w.queue.held.has(id), false, 'the queue was told the job is complete');
  });

  it('a job whose worker stopped on every attempt is failed as interrupted, never charged', async () => {
    const a = w.worker();
    const b = w.worker({ maxAttempts: 1 });
    const id = await w.submit();
    await a.runner.pump();
    await waitUntil(() => a.calls.length === 1, 'worker A to reach its engine');

    await w.queue.redeliver(id, MODEL);
    const failed = nextEvent(w.events, id, 'failed');
    await b.runner.pump();
    await failed;
    const job = await w.store.get(id);
    assert.equal(job?.status, 'failed');
    assert.equal(job?.error?.error.code, 'job_interrupted');
    assert.equal(b.calls.length, 0, 'worker B never ran it');
    assert.equal(w.queue.held.has(id), false);

    // A was only frozen: it finishes, and its result cannot commit over the failure.
    a.calls[0]!.release();
    await waitUntil(() => !a.runner.isRunningHere(id), 'worker A to finish');
    assert.equal((await w.store.get(id))?.status, 'failed');
    assert.equal(w.ledgerRows(id), 0);
    assert.deepEqual(await w.blobs.list('generations/'), [], 'the late image was deleted');
  });

  it('charges exactly once when the first worker comes back and tries to succeed after the second did', async () => {
    const a = w.worker();
    const b = w.worker();
    const id = await w.submit();
    await a.runner.pump();
    await waitUntil(() => a.calls.length === 1, 'worker A to reach its engine');
    await w.queue.redeliver(id, MODEL);
    await b.runner.pump();
    await waitUntil(() => b.calls.length === 1, 'worker B to reach its engine');
    b.calls[0]!.release();
    await waitUntil(async () => (await w.store.get(id))?.status === 'succeeded', 'worker B to commit');
    const committed = await w.store.get(id);
    const kept = await w.blobs.list('generations/');
    assert.equal(kept.length, 1);

    // A's engine answers after all; its run reaches store.succeed, which must refuse it.
    const canceledEvents: JobEvent[] = [];
    w.events.subscribe(id, (event) => event.type === 'canceled' && canceledEvents.push(event));
    a.calls[0]!.release();
    await waitUntil(() => !a.runner.isRunningHere(id), 'worker A to finish');

    assert.equal(w.ledgerRows(id), 1, 'one ledger row');
    const after = await w.store.get(id);
    assert.equal(after?.status, 'succeeded');
    assert.deepEqual(after?.result, committed?.result, 'the committed result is B\'s, unchanged');
    assert.deepEqual(await w.blobs.list('generations/'), kept, 'A\'s image was deleted, B\'s kept');
    assert.deepEqual(canceledEvents, [], 'A does not announce the succeeded job as canceled');
  });

  /**
   * Worker A runs job `id` and is held in its engine; the queue hands the job out again (A looks stalled) and B takes
   * it over as attempt 2 and is held too. Returns the terminal events announced for the job from then on.
   */
  async function takeOver(id: string, a: ReturnType<typeof w.worker>, b: ReturnType<typeof w.worker>): Promise<JobEvent['type'][]> {
    const announced: JobEvent['type'][] = [];
    w.events.subscribe(id, (event) => {
      if (event.type === 'succeeded' || event.type === 'failed' || event.type === 'canceled') announced.push(event.type);
    });
    await a.runner.pump();
    await waitUntil(() => a.calls.length === 1, 'worker A to reach its engine');
    await w.queue.redeliver(id, MODEL);
    const bRunning = nextEvent(w.events, id, 'running');
    await b.runner.pump();
    assert.deepEqual(await bRunning, { type: 'running', jobId: id, attempt: 2 });
    await waitUntil(() => b.calls.length === 1, 'worker B to reach its engine');
    return announced;
  }

  /**
   * Worker A is frozen (its engine held) until B has reclaimed the job as attempt 2; A then wakes while B
   * still runs. Without the attempt fence, A's failure would fail B's job (and abort B through the event),
   * and A's success would commit A's image over B's run.
   */
  it('a frozen worker that wakes and fails after the takeover changes nothing: the new attempt succeeds, charged once', async () => {
    const a = w.worker();
    const b = w.worker();
    const reference = referenceKey(`job_${randomUUID()}`, 0);
    await w.blobs.put(reference, encodeReference({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(200) }), 'application/octet-stream');
    const id = await w.submit({ referenceKeys: [reference] });
    const announced = await takeOver(id, a, b);

    // A wakes: its engine throws. close() resolves once A's run has ended.
    a.calls[0]!.fail(new Error('the GPU of the frozen worker gave up'));
    await a.runner.close();
    const meanwhile = await w.store.get(id);
    assert.equal(meanwhile?.status, 'running', 'A\'s late failure was not written');
    assert.equal(meanwhile?.attempts, 2);
    assert.equal(meanwhile?.error, null);
    assert.deepEqual(announced, [], 'A announced nothing');
    assert.equal(b.calls[0]!.signal.aborted, false, 'B\'s engine runs on');
    assert.equal(w.queue.held.has(id), true, 'A did not complete the claim B holds');
    assert.deepEqual(await w.blobs.list('inputs/'), [reference], 'A left the job\'s reference to B');

    const succeeded = nextEvent(w.events, id, 'succeeded');
    b.calls[0]!.release();
    await succeeded;
    await b.runner.close();
    const job = await w.store.get(id);
    assert.equal(job?.status, 'succeeded');
    assert.equal(job?.outputKeys.length, 1);
    assert.deepEqual(await w.blobs.list('generations/'), job?.outputKeys);
    assert.equal(w.ledgerRows(id), 1, 'charged once');
    assert.deepEqual(announced, ['succeeded']);
    assert.equal(w.queue.held.has(id), false, 'B completed it');
    assert.deepEqual(await w.blobs.list('inputs/'), [], 'B deleted the reference');
  });

  it('a frozen worker that wakes and succeeds after the takeover commits nothing and leaves no image; the new attempt\'s result stands', async () => {
    const a = w.worker();
    const b = w.worker();
    const id = await w.submit();
    const announced = await takeOver(id, a, b);

    // A wakes: its engine answers, and its run stores an image and tries to commit it.
    a.calls[0]!.release();
    await a.runner.close();
    const meanwhile = await w.store.get(id);
    assert.equal(meanwhile?.status, 'running', 'A\'s late success was not committed');
    assert.deepEqual(meanwhile?.outputKeys, []);
    assert.equal(w.ledgerRows(id), 0, 'A was not charged');
    assert.deepEqual(await w.blobs.list('generations/'), [], 'A\'s image was deleted');
    assert.deepEqual(announced, []);
    assert.equal(w.queue.held.has(id), true, 'A did not complete the claim B holds');

    const succeeded = nextEvent(w.events, id, 'succeeded');
    b.calls[0]!.release();
    await succeeded;
    await b.runner.close();
    const job = await w.store.get(id);
    assert.equal(job?.status, 'succeeded');
    assert.equal(job?.attempts, 2);
    assert.equal(job?.outputKeys.length, 1);
    assert.deepEqual(await w.blobs.list('generations/'), job?.outputKeys, 'only B\'s image is left, and it is the job\'s');
    assert.equal(w.ledgerRows(id), 1, 'charged once');
    assert.deepEqual(announced, ['succeeded']);
    assert.equal(w.queue.held.has(id), false);
  });

  it('a cancel made by another process aborts the engine of the worker running the job', async () => {
    const a = w.worker();
    const api = w.worker(); // stands for an api process: it never runs this job
    const id = await w.submit();
    await a.runner.pump();
    await waitUntil(() => a.calls.length === 1, 'worker A to reach its engine');
    assert.equal(api.runner.isRunningHere(id), false);

    const stopped = await api.runner.stop(id);
    assert.equal(stopped?.status, 'canceled');
    await waitUntil(() => a.calls[0]!.signal.aborted, 'the cancel to reach worker A\'s engine');
    await waitUntil(() => !a.runner.isRunningHere(id), 'worker A to let go of the job');
    assert.equal((await w.store.get(id))?.status, 'canceled');
    assert.equal(w.ledgerRows(id), 0);
    assert.equal(w.queue.held.has(id), false);
    assert.deepEqual(await w.blobs.list('generations/'), []);
  });

  it('recover() at start leaves a job running elsewhere alone, and sweeps only what nobody can still use', async () => {
    const a = w.worker();
    const id = await w.submit();
    await a.runner.pump();
    await waitUntil(() => a.calls.length === 1, 'worker A to reach its engine');

    const fresh = `generations/${Date.now()}-${randomUUID()}.png`; // may be a run elsewhere about to commit
    const stale = `generations/${Date.now() - 3 * 600_000}-${randomUUID()}.png`; // older than twice the deadline
    const inFlightRef = referenceKey(`job_${randomUUID()}`, 0); // a submit elsewhere, before it writes its job
    for (const key of [fresh, stale]) await w.blobs.put(key, Buffer.from('x'), 'image/png');
    await w.blobs.put(inFlightRef, Buffer.from('x'), 'application/octet-stream');

    const restarted = w.worker();
    const report = await restarted.runner.recover();
    assert.equal(report.requeued, 0);
    assert.equal(report.failed, 0);
    assert.equal(report.leftRunning, 1);
    const job = await w.store.get(id);
    assert.equal(job?.status, 'running');
    assert.equal(job?.attempts, 1);
    assert.equal(await w.queue.has(id), false, 'not put back in the queue');
    assert.equal(a.calls[0]!.signal.aborted, false);
    const left = new Set([...(await w.blobs.list('generations/')), ...(await w.blobs.list('inputs/'))]);
    assert.ok(left.has(fresh), 'a young unlisted image is kept');
    assert.ok(left.has(inFlightRef), 'a reference of a job not yet written is kept');
    assert.equal(left.has(stale), false, 'an image older than any run is deleted');

    a.calls[0]!.release();
    await waitUntil(async () => (await w.store.get(id))?.status === 'succeeded', 'worker A to commit');
    assert.equal(w.ledgerRows(id), 1);
  });

  it('a started worker takes jobs other processes enqueue: on the queue\'s notification, and by polling without one', async () => {
    const notified = w.worker();
    notified.runner.start();
    const first = await w.submit();
    await waitUntil(() => notified.calls.length === 1, 'the notified worker to start the job');
    notified.calls[0]!.release();
    await waitUntil(async () => (await w.store.get(first))?.status === 'succeeded', 'the first job to succeed');
    await notified.runner.close();

    // A queue without onAvailable: only the periodic pump can find the job.
    const { onAvailable: _unused, ...withoutNotifications } = w.queue;
    void _unused;
    const silentQueue = withoutNotifications as JobQueue;
    const { engine, calls } = createGatedEngine('polling', w.calls);
    const engines = new Map([[MODEL, engine]]);
    const poller = createJobRunner({
      store: w.store,
      queue: silentQueue,
      events: w.events,
      blobs: w.blobs,
      engines,
      runGeneration: createRunGeneration({ engines, blobs: w.blobs, enhancer: unusedEnhancer, watermarker: null, watermarkIssuerId: 1, pricesUsd: { [MODEL]: 0.0455 }, creditsPerUsd: 2_000_000, publicUrl: () => 'http://api.test', software: 'test' }),
      fallbackConcurrency: 1,
      maxQueued: 16,
      runTimeoutMs: 600_000,
      maxAttempts: 3,
      pollIntervalMs: 20,
      logger: silent,
    });
    w.runners.push(poller);
    poller.start();
    const second = await w.submit();
    await waitUntil(() => calls.length === 1, 'the polling worker to find the job');
    calls[0]!.release();
    await waitUntil(async () => (await w.store.get(second))?.status === 'succeeded', 'the second job to succeed');
  });
});
