/**
 * The world of the job-runner tests over a shared queue (job-runner-shared.test.ts, job-runner-sweep.test.ts):
 * several runner instances (each standing for a worker process) over one real SQLite job store, one filesystem
 * blob store and one JobEvents object (standing for Redis pub/sub). The queue is the embedded SQLite queue
 * behind a small wrapper that marks itself shared, holds each claimed job until `complete`, and can hand one
 * out again the way BullMQ's stalled-job check does once a worker stops renewing its lock. Engines are gated
 * fakes (no GPU here); everything after the engine (encode, store, commit, ledger) is the real pipeline.
 */
import { ANY_SIZE, type EngineCapabilities } from '../../domain/engine-capabilities.ts';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type SqliteDatabase } from '../../store/sqlite/database.ts';
import { createFsBlobStore } from '../../blobs/fs/fs-blob-store.ts';
import type { BlobStore, PromptEnhancer } from '../../domain/ports.ts';
import type { Engine, EngineResult, RawImage } from '../../domain/types.ts';
import type { JobParams } from '../../domain/jobs.ts';
import { createRunGeneration } from '../../pipeline/run-generation.ts';
import { createMemoryJobEvents } from '../memory-events.ts';
import { createJobRunner, type JobRunner } from '../job-runner.ts';
import type { JobEvent, JobEvents, JobQueue, JobStore } from '../ports.ts';
import { createSqliteJobQueue } from '../sqlite/job-queue.ts';
import { createSqliteJobStore } from '../sqlite/job-store.ts';

export const MODEL = 'alibaba/qwen-image-2-0';
export const SIDE = 64;
export const silent = { info() {}, warn() {}, error() {} };

export interface SharedTestQueue extends JobQueue {
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

export interface EngineCall {
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
export interface SharedBackend {
  limit: number;
  inUse: number;
}

/**
 * An engine that answers only when released, and rejects as soon as its signal aborts. With `shared`, its
 * calls hold a slot of that backend, and it answers `sharedFreeSlots` as the router does over Redis slots.
 */
export function createGatedEngine(id: string, everyCall?: EngineCall[], shared?: SharedBackend) {
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

export interface World {
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

export const unusedEnhancer: PromptEnhancer = {
  enhance: async () => {
    throw new Error('the jobs of this test do not enhance their prompt');
  },
};

export function createWorld(): World {
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
export function nextEvent(events: JobEvents, jobId: string, type: JobEvent['type']): Promise<JobEvent> {
  return new Promise((resolve) => {
    const unsubscribe = events.subscribe(jobId, (event) => {
      if (event.type !== type) return;
      unsubscribe();
      resolve(event);
    });
  });
}

/** Lets frozen workers finish, closes every runner and removes the world's files. */
export async function disposeWorld(w: World): Promise<void> {
  // A worker a test left frozen finishes now, so close() does not wait on it forever.
  for (const call of w.calls) call.release();
  for (const runner of w.runners) await runner.close();
  w.db.close();
  fs.rmSync(w.dir, { recursive: true, force: true });
}
