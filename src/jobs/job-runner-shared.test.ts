/**
 * The job runner over a queue shared by several processes, as BullMQ is: two or three runner
 * instances (each standing for a worker process) over one real SQLite job store, one filesystem blob
 * store and one JobEvents object (standing for Redis pub/sub). The queue is the embedded SQLite queue
 * behind a small test wrapper that marks itself shared, holds each claimed job until `complete`, and
 * can hand one out again the way BullMQ's stalled-job check does once a worker stops renewing its lock.
 * Engines are gated fakes (no GPU here); everything after the engine (encode, store, commit, ledger)
 * is the real pipeline.
 */
import { ANY_SIZE, type EngineCapabilities } from '../domain/engine-capabilities.ts';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openDatabase, type SqliteDatabase } from '../store/sqlite/database.ts';
import { createFsBlobStore } from '../blobs/fs/fs-blob-store.ts';
import type { BlobStore, PromptEnhancer } from '../domain/ports.ts';
import type { Engine, EngineResult, RawImage } from '../domain/types.ts';
import type { JobParams } from '../domain/jobs.ts';
import { createRunGeneration } from '../pipeline/run-generation.ts';
import { encodeReference, referenceKey } from '../pipeline/reference-blobs.ts';
import { waitUntil } from '../../test/helpers/wait-until.ts';
import { createMemoryJobEvents } from './memory-events.ts';
import { createJobRunner, type JobRunner } from './job-runner.ts';
import type { JobEvent, JobEvents, JobQueue, JobStore } from './ports.ts';
import { createSqliteJobQueue } from './sqlite/job-queue.ts';
import { createSqliteJobStore } from './sqlite/job-store.ts';

const MODEL = 'alibaba/qwen-image-2-0';
const SIDE = 64;
const silent = { info() {}, warn() {}, error() {} };

interface SharedTestQueue extends JobQueue {
  /** Claimed and not completed: held under a worker's lock. */
  readonly held: ReadonlySet<string>;
  /** The lock of a held job expired (its worker stopped renewing it): back to waiting, as BullMQ moves a stalled job. */
  redeliver(jobId: string, model: string): Promise<void>;
}

function createSharedTestQueue(inner: JobQueue): SharedTestQueue {
  const held = new Set<string>();
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };
  return {
    sharedAcrossProcesses: true,
    held,
    async enqueue(jobId, model) {
      await inner.enqueue(jobId, model);
      notify();
    },
    async claim(model) {
      const id = await inner.claim(model);
      if (id) held.add(id);
      return id;
    },
    async complete(jobId) {
      held.delete(jobId);
    },
    remove: (jobId) => inner.remove(jobId),
    position: (jobId) => inner.position(jobId),
    list: (model) => inner.list(model),
    depth: (model) => inner.depth(model),
    has: (jobId) => inner.has(jobId),
    onAvailable(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async redeliver(jobId, model) {
      assert.ok(held.delete(jobId), `${jobId} is not held by a worker`);
      await inner.enqueue(jobId, model);
      notify();
    },
  };
}

interface EngineCall {
  signal: AbortSignal;
  /** Lets the engine answer with its image. */
  release(): void;
  /** Makes the engine throw `error` instead. */
  fail(error: Error): void;
  /** Reports a step with a preview image, as an engine with previews does. */
  progress(step: number): void;
}

const TEST_CAPABILITIES: EngineCapabilities = { maxReferenceImages: 3, sizes: ANY_SIZE, negativePrompt: true, seed: true, progress: false, previews: false, masks: false, promptAdaptation: false };

/** One GPU behind every worker of a test, with this many slots: what Redis backend slots count across processes. */
interface SharedBackend {
  limit: number;
  inUse: number;
}

/**
 * An engine that answers only when released, and rejects as soon as its signal aborts. With `shared`, its
 * calls hold a slot of that backend, and it answers `sharedFreeSlots` as the router does over Redis slots.
 */
function createGatedEngine(id: string, everyCall?: EngineCall[], shared?: SharedBackend) {
  const calls: EngineCall[] = [];
  let heldHere = 0;
  const engine: Engine = {
    ...(shared
      ? { sharedFreeSlots: async (runningHere: number) => Math.max(0, shared.limit - shared.inUse - Math.max(0, runningHere - heldHere)) }
      : {}),
    id,
    kind: 'fake',
    description: 'gated test engine',
    capabilities: () => TEST_CAPABILITIES,
    async load() {},
    async health() {
      return { ok: true };
    },
    capacity: () => 1,
    generate(request, signal, onProgress) {
      return new Promise<EngineResult>((resolve, reject) => {
        const image = { width: request.width, height: request.height, data: new Uint8Array(request.width * request.height * 3).fill(90) };
        let holding = false;
        const hold = (on: boolean) => {
          if (!shared || holding === on) return;
          holding = on;
          shared.inUse += on ? 1 : -1;
          heldHere += on ? 1 : -1;
        };
        hold(true);
        const call = {
          signal,
          release: () => {
            hold(false);
            resolve({ image, info: { backend: id } });
          },
          fail: (error: Error) => {
            hold(false);
            reject(error);
          },
          progress: (step: number) => onProgress?.({ step, totalSteps: 10, preview: { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(step) } }),
        };
        calls.push(call);
        everyCall?.push(call);
        signal.addEventListener('abort', () => {
          hold(false);
          reject(signal.reason);
        }, { once: true });
      });
    },
    async close() {},
  };
  return { engine, calls };
}

interface World {
  dir: string;
  db: SqliteDatabase;
  store: JobStore;
  queue: SharedTestQueue;
  events: JobEvents;
  blobs: BlobStore;
  runners: JobRunner[];
  /** Every engine call of every worker, so a test's end can let the frozen ones finish. */
  calls: EngineCall[];
  ledgerRows(jobId: string): number;
  /** One worker process: its own runner and engine over the shared store, queue, events and blobs. */
  worker(options?: {
    maxAttempts?: number;
    pollIntervalMs?: number;
    shared?: SharedBackend;
    capacity?: number;
    queueSweepMs?: number;
    runTimeoutMs?: number;
    now?: () => number;
    encodePreview?: (image: RawImage) => Promise<string>;
  }): { runner: JobRunner; calls: EngineCall[] };
  submit(overrides?: Partial<JobParams>): Promise<string>;
}

const unusedEnhancer: PromptEnhancer = {
  enhance: async () => {
    throw new Error('the jobs of this test do not enhance their prompt');
  },
};

function createWorld(): World {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-shared-runner-'));
  const db = openDatabase(path.join(dir, 'server.sqlite'));
  const store = createSqliteJobStore(db);
  const queue = createSharedTestQueue(createSqliteJobQueue(db));
  const events = createMemoryJobEvents();
  const blobs = createFsBlobStore(path.join(dir, 'images'));
  const ledger = db.prepare(`SELECT COUNT(*) AS n FROM usage_ledger WHERE job_id = ?`);
  const runners: JobRunner[] = [];
  const allCalls: EngineCall[] = [];
  return {
    dir,
    db,
    store,
    queue,
    events,
    blobs,
    runners,
    calls: allCalls,
    ledgerRows: (jobId) => (ledger.get(jobId) as { n: number }).n,
    worker(options = {}) {
      const { engine, calls } = createGatedEngine(`fake-${runners.length}`, allCalls, options.shared);
      if (options.capacity !== undefined) engine.capacity = () => options.capacity!;
      const engines = new Map([[MODEL, engine]]);
      const runner = createJobRunner({
        store,
        queue,
        events,
        blobs,
        engines,
        runGeneration: createRunGeneration({
          engines,
          blobs,
          enhancer: unusedEnhancer,
          watermarker: null,
          watermarkIssuerId: 1,
          pricesUsd: { [MODEL]: 0.0455 },
          creditsPerUsd: 2_000_000,
          publicUrl: () => 'http://api.test',
          software: 'test',
        }),
        fallbackConcurrency: 1,
        maxQueued: 16,
        runTimeoutMs: options.runTimeoutMs ?? 600_000,
        maxAttempts: options.maxAttempts ?? 3,
        pollIntervalMs: options.pollIntervalMs,
        queueSweepMs: options.queueSweepMs,
        now: options.now,
        encodePreview: options.encodePreview,
        logger: silent,
      });
      runners.push(runner);
      return { runner, calls };
    },
    async submit(overrides = {}) {
      const id = `job_${randomUUID()}`;
      const params: JobParams = {
        model: MODEL,
        prompt: 'a red house',
        negativePrompt: '',
        width: SIDE,
        height: SIDE,
        seed: 7,
        enhancePrompt: false,
        watermark: false,
        responseFormat: 'url',
        referenceKeys: [],
        ...overrides,
      };
      const created = await store.create({ id, keyId: 'key_a', requestId: `req_${randomUUID()}`, params, webhook: null, createdAtMs: Date.now() });
      assert.equal(created.kind, 'created');
      await queue.enqueue(id, MODEL);
      return id;
    },
  };
}

/** Resolves with the first event of `type` published for the job. */
function nextEvent(events: JobEvents, jobId: string, type: JobEvent['type']): Promise<JobEvent> {
  return new Promise((resolve) => {
    const unsubscribe = events.subscribe(jobId, (event) => {
      if (event.type !== type) return;
      unsubscribe();
      resolve(event);
    });
  });
}

describe('job runner over a shared queue', () => {
  let w: World;
  beforeEach(() => {
    w = createWorld();
  });
  afterEach(async () => {
    // A worker a test left frozen finishes now, so close() does not wait on it forever.
    for (const call of w.calls) call.release();
    for (const runner of w.runners) await runner.close();
    w.db.close();
    fs.rmSync(w.dir, { recursive: true, force: true });
  });

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
