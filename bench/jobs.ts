/**
 * npm run bench:jobs — the job system's own cost: submit → queue → runner → "succeeded", with an
 * engine that does nothing, on the embedded SQLite store (a real file, WAL, synchronous=FULL as the
 * server opens it). Goals (jobs issue): under 5 ms median per job, at least 500 jobs/s.
 *
 * Three stacks, each on a fresh database per round:
 * - queue    the real submit path (createSubmitGeneration), SQLite store and queue, job runner and
 *            webhook dispatcher (kicked on every state change, as in the server), with a runGeneration
 *            that returns a fixed outcome at once: the job system alone, no PNG encode.
 * - run      the same, with the real createRunGeneration over a no-op engine that returns a prepared
 *            flat 512² image (the smallest size the API accepts): adds PNG encode and the blob write.
 * - http     startServer with every engine replaced by the no-op one, async submits over loopback
 *            (Prefer: respond-async); done = the runner's "image generated" log line (after the
 *            commit). Client and server share this process, as they would share the machine.
 * and three loads: sequential (one job at a time: the per-job floor), closed loop (as many clients as
 * engine slots, each submitting its next job when the last succeeded: no queue wait), and burst (all
 * jobs submitted as fast as they are accepted: throughput; its latencies include the queue wait).
 *
 * Latency is per job, submit call → succeeded; jobs/s is jobs ÷ (first submit → last success). Each
 * figure is taken per round; the table shows the median over rounds and [min–max].
 *   npx tsx bench/jobs.ts [--jobs 2000] [--rounds 5] [--capacity 4] [--run-jobs 300] [--http-jobs 1000]
 *                         [--http-rounds 3] [--stacks queue,run,http] [--dir /tmp]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { CREDITS_PER_USD, DEFAULT_PRICE_USD, PUBLIC_MODEL_ID, readConfig } from '../src/config/config.ts';
import { createGenerationValidator } from '../src/contracts/validate-generation.ts';
import type { Engine, RawImage } from '../src/domain/types.ts';
import { ANY_SIZE } from '../src/domain/engine-capabilities.ts';
import { createFsBlobStore } from '../src/blobs/fs/fs-blob-store.ts';
import { openDatabase } from '../src/store/sqlite/database.ts';
import { createSqliteKeyStore } from '../src/store/sqlite/key-store.ts';
import { createSqliteJobStore } from '../src/jobs/sqlite/job-store.ts';
import { createSqliteJobQueue } from '../src/jobs/sqlite/job-queue.ts';
import { createSqliteWebhookOutbox } from '../src/jobs/sqlite/webhook-outbox.ts';
import { createMemoryJobEvents } from '../src/jobs/memory-events.ts';
import { createJobRunner } from '../src/jobs/job-runner.ts';
import { createWebhookDispatcher } from '../src/jobs/webhooks/dispatcher.ts';
import type { JobEvents } from '../src/jobs/ports.ts';
import { createRunGeneration, type RunGeneration } from '../src/pipeline/run-generation.ts';
import { createSubmitGeneration } from '../src/pipeline/submit-generation.ts';
import { startServer } from '../src/main.ts';
import { createWorkGate } from '../src/images/work-gate.ts';
import { opt } from './cli.ts';

const JOBS = Number(opt('jobs', '2000'));
const ROUNDS = Number(opt('rounds', '5'));
const CAPACITY = Number(opt('capacity', '4'));
const RUN_JOBS = Number(opt('run-jobs', '300'));
const HTTP_JOBS = Number(opt('http-jobs', '1000'));
const HTTP_ROUNDS = Number(opt('http-rounds', '3'));
const STACKS = opt('stacks', 'queue,run,http').split(',');
const BASE_DIR = path.resolve(opt('dir', os.tmpdir()));
/** Submitters in the burst over HTTP: enough to keep the server's accept path busy. */
const HTTP_BURST_CLIENTS = 16;
/** A stuck job must end the benchmark with a message, not hang it. */
const ROUND_LIMIT_MS = 300_000;

const ROOT = path.resolve(import.meta.dirname, '..');
const BODY = { model: PUBLIC_MODEL_ID, prompt: 'a red house by a green tree', image_size: 'square', enhance_prompt: false, response_format: 'url' };
const noopLog = { info() {}, warn() {}, error() {}, child: () => noopLog };

// ---------------------------------------------------------------- pieces
/** A flat image: the engine's answer, prepared once per size. */
const prepared = new Map<string, RawImage>();
function flatImage(width: number, height: number): RawImage {
  const key = `${width}x${height}`;
  let image = prepared.get(key);
  if (!image) prepared.set(key, (image = { width, height, data: new Uint8Array(width * height * 3).fill(128) }));
  return image;
}

function noopEngine(capacity: number): Engine {
  return {
    id: 'noop',
    kind: 'noop',
    description: 'benchmark engine: returns a prepared image at once',
    load: async () => {},
    capabilities: () => ({
      maxReferenceImages: 3,
      sizes: { ...ANY_SIZE },
      negativePrompt: true,
      seed: true,
      progress: false,
      previews: false,
      masks: false,
      promptAdaptation: false,
    }),
    health: async () => ({ ok: true }),
    close: async () => {},
    capacity: () => capacity,
    generate: async (request) => ({ image: flatImage(request.width, request.height) }),
  };
}

/** Completion times of jobs, filled by whoever sees them end; waiters may come before or after. */
function createFinishLine() {
  const at = new Map<string, number>();
  const waiters = new Map<string, (t: number) => void>();
  let failure: Error | null = null;
  const failWaiters = new Set<(err: Error) => void>();
  return {
    finished(jobId: string, ok: boolean) {
      if (!ok) {
        failure = new Error(`job ${jobId} did not succeed`);
        for (const f of failWaiters) f(failure);
        return;
      }
      const t = performance.now();
      at.set(jobId, t);
      waiters.get(jobId)?.(t);
      waiters.delete(jobId);
    },
    when(jobId: string): Promise<number> {
      const t = at.get(jobId);
      if (t !== undefined) return Promise.resolve(t);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        waiters.set(jobId, resolve);
        failWaiters.add(reject);
      });
    },
  };
}
type FinishLine = ReturnType<typeof createFinishLine>;

interface Stack {
  /** Submits one job; the name its end is announced under (job id, or request id over HTTP). */
  submit(i: number): Promise<string>;
  finish: FinishLine;
  close(): Promise<void>;
}

/** The in-process job system on a fresh SQLite file. `full`: the real run path over the no-op engine. */
async function buildInProcess(full: boolean, maxQueued: number): Promise<Stack> {
  const dir = fs.mkdtempSync(path.join(BASE_DIR, 'qis-bench-jobs-'));
  const db = openDatabase(path.join(dir, 'server.sqlite'));
  const keys = createSqliteKeyStore(db, { hashKey: Buffer.from('bench-hash-key-0123456') });
  keys.syncEnvKeys(['bench-key']);
  const keyId = (await keys.list())[0]!.id;
  const blobs = createFsBlobStore(path.join(dir, 'images'));
  const store = createSqliteJobStore(db);
  const queue = createSqliteJobQueue(db);
  const finish = createFinishLine();
  const live = createMemoryJobEvents();
  const events: JobEvents = {
    publish(event) {
      if (event.type === 'succeeded' || event.type === 'failed' || event.type === 'canceled') finish.finished(event.jobId, event.type === 'succeeded');
      live.publish(event);
    },
    subscribe: live.subscribe,
    hasSubscribers: live.hasSubscribers,
    watchedJobIds: live.watchedJobIds,
  };
  const engines = new Map<string, Engine>([[PUBLIC_MODEL_ID, noopEngine(CAPACITY)]]);
  const pricesUsd = { [PUBLIC_MODEL_ID]: DEFAULT_PRICE_USD };
  const credits = Math.round(DEFAULT_PRICE_USD * CREDITS_PER_USD * 1e6) / 1e6;
  const fixedRun: RunGeneration = async (job) => {
    const createdAtMs = Date.now();
    return {
      result: { created: createdAtMs, data: [{ url: 'http://bench/files/none.png', seed: job.params.seed, revised_prompt: job.params.prompt }], meta: { usage: { credits_used: credits, usd_spent: DEFAULT_PRICE_USD } } },
      outputKeys: [],
      usage: { keyId: job.keyId, requestId: job.requestId, model: job.params.model, width: job.params.width, height: job.params.height, seed: job.params.seed, credits, usd: DEFAULT_PRICE_USD, createdAtMs },
      timings: {},
      engineInfo: {},
    };
  };
  const runGeneration = full
    ? createRunGeneration({
        engines,
        blobs,
        enhancer: { enhance: async () => Promise.reject(new Error('the benchmark does not enhance prompts')) },
        watermarker: null,
        watermarkIssuerId: 1,
        pricesUsd,
        creditsPerUsd: CREDITS_PER_USD,
        publicUrl: () => 'http://bench',
        software: 'qwen-image-server bench',
      })
    : fixedRun;
  const webhooks = createWebhookDispatcher({
    outbox: createSqliteWebhookOutbox(db),
    secretFor: async () => null,
    renderBody: async () => null,
    allowPrivate: false,
    logger: noopLog,
  });
  const runner = createJobRunner({
    store,
    queue,
    events,
    blobs,
    engines,
    runGeneration,
    fallbackConcurrency: CAPACITY,
    maxQueued,
    runTimeoutMs: 60_000,
    maxAttempts: 3,
    logger: noopLog,
    onStateChange: () => webhooks.kick(),
  });
  const submitGeneration = createSubmitGeneration({
    imageGate: createWorkGate({ concurrency: 2, maxQueue: 16, what: 'decoding images' }),
    store,
    queue,
    runner,
    keys,
    blobs,
    fetcher: { fetchBytes: async () => Promise.reject(new Error('no references in this benchmark')), close: async () => {} },
    decodeLimits: { maxPixels: 40_000_000, maxSidePx: 1536 },
    models: new Set(engines.keys()),
    pricesUsd,
    allowPrivateWebhooks: false,
  });
  // Validation belongs to the HTTP layer; done once here.
  const params = createGenerationValidator()(BODY);
  const signal = new AbortController().signal;
  await runner.recover();
  webhooks.start();
  return {
    finish,
    async submit(i) {
      const { job } = await submitGeneration(params, { keyId, requestId: `req_bench_${i}`, body: BODY, idempotencyKey: null, signal });
      return job.id;
    },
    async close() {
      await runner.close();
      await webhooks.close();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The started server with the no-op engine; a job is done when the runner logs "image generated".
 * Jobs are told apart by request id (x-request-id, which the runner's log carries): a job that is
 * already finished when the server answers may come back as 200 with its result, without its id.
 */
async function buildHttp(maxQueued: number): Promise<Stack> {
  const dir = fs.mkdtempSync(path.join(BASE_DIR, 'qis-bench-jobs-http-'));
  const finish = createFinishLine();
  const REQUEST_ID = /"requestId":"(bench-[0-9a-f-]{36})"/;
  const destination = {
    write(line: string) {
      if (line.includes('"msg":"image generated"')) {
        const m = REQUEST_ID.exec(line);
        if (m) finish.finished(m[1]!, true);
      } else if (/"level":(50|60)/.test(line)) {
        const m = REQUEST_ID.exec(line);
        if (m) finish.finished(m[1]!, false);
      }
    },
  };
  const config = readConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dir,
      API_KEYS: 'bench-key',
      BUILTIN_MODEL_DIR: path.join(ROOT, 'test/fixtures/tiny-model'),
      ENGINE_MAX_QUEUE: String(maxQueued),
    },
    ROOT,
  );
  // info, as the server runs by default: its request logs are part of its cost.
  const server = await startServer(config, { wrapEngine: () => noopEngine(CAPACITY), logger: pino({ level: 'info' }, destination) });
  const body = JSON.stringify(BODY);
  return {
    finish,
    async submit() {
      const requestId = `bench-${crypto.randomUUID()}`;
      const res = await fetch(`${server.url}/v1/images/generations`, {
        method: 'POST',
        headers: { authorization: 'Bearer bench-key', 'content-type': 'application/json', prefer: 'respond-async', 'x-request-id': requestId },
        body,
      });
      const json: unknown = await res.json();
      if (res.status !== 202 && res.status !== 200) throw new Error(`submit answered ${res.status}: ${JSON.stringify(json)}`);
      return requestId;
    },
    async close() {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- loads
interface RoundResult {
  latencyMs: number[];
  jobsPerS: number;
}

type Load = 'sequential' | 'closed' | 'burst';

/** `clients` submitters; `waitEach`: each waits for its job to succeed before submitting the next. */
async function drive(stack: Stack, jobs: number, clients: number, waitEach: boolean): Promise<RoundResult> {
  const latencyMs: number[] = new Array(jobs);
  const ends: Array<Promise<void>> = [];
  let next = 0;
  const t0 = performance.now();
  let last = t0;
  const client = async () => {
    while (next < jobs) {
      const i = next++;
      const start = performance.now();
      const id = await stack.submit(i);
      const end = stack.finish.when(id).then((t) => {
        latencyMs[i] = t - start;
        if (t > last) last = t;
      });
      if (waitEach) await end;
      else ends.push(end);
    }
  };
  let guard: NodeJS.Timeout | undefined;
  await Promise.race([
    (async () => {
      await Promise.all(Array.from({ length: clients }, client));
      await Promise.all(ends);
    })(),
    new Promise((_, reject) => (guard = setTimeout(() => reject(new Error(`a round did not finish within ${ROUND_LIMIT_MS} ms`)), ROUND_LIMIT_MS))),
  ]);
  clearTimeout(guard);
  return { latencyMs, jobsPerS: jobs / ((last - t0) / 1000) };
}

function clientsOf(load: Load, http: boolean): number {
  if (load === 'sequential') return 1;
  if (load === 'closed') return CAPACITY;
  return http ? HTTP_BURST_CLIENTS : 1;
}

// ---------------------------------------------------------------- figures
function quantile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

interface Figures {
  jobsPerS: number;
  median: number;
  p95: number;
  p99: number;
}

function figuresOf(r: RoundResult): Figures {
  const s = [...r.latencyMs].sort((a, b) => a - b);
  return { jobsPerS: r.jobsPerS, median: quantile(s, 0.5), p95: quantile(s, 0.95), p99: quantile(s, 0.99) };
}

/** Median over rounds, with the spread [min–max]. */
function spread(values: number[], digits: number): string {
  const s = [...values].sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(digits);
  return `${f(quantile(s, 0.5))} [${f(s[0]!)}–${f(s.at(-1)!)}]`.padEnd(22);
}

async function measure(name: string, build: () => Promise<Stack>, load: Load, jobs: number, rounds: number, http: boolean): Promise<void> {
  const clients = clientsOf(load, http);
  const waitEach = load !== 'burst';
  // Warm-up: JIT, prepared statements, the first file in a fresh directory.
  const warm = await build();
  await drive(warm, Math.min(200, jobs), clients, waitEach);
  await warm.close();
  const per: Figures[] = [];
  for (let r = 0; r < rounds; r++) {
    const stack = await build();
    per.push(figuresOf(await drive(stack, jobs, clients, waitEach)));
    await stack.close();
  }
  const label = `${name} ${load} (${clients} client${clients > 1 ? 's' : ''})`;
  console.log(
    `${label.padEnd(30)} ${String(jobs).padStart(5)} × ${rounds} | ${spread(per.map((f) => f.jobsPerS), 0)} | ${spread(per.map((f) => f.median), 2)} | ${spread(per.map((f) => f.p95), 2)} | ${spread(per.map((f) => f.p99), 2)}`,
  );
}

async function main() {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`job system cost, no-op engine, capacity ${CAPACITY}; ${os.cpus().length} cores (${cpu}), node ${process.version}; SQLite files under ${BASE_DIR} (WAL, synchronous=FULL)`);
  console.log('latency = submit call → succeeded, per job, ms; per-round figure, shown as median over rounds [min–max]. Goals: < 5 ms median, ≥ 500 jobs/s.');
  console.log(`${'stack / load'.padEnd(30)} ${'jobs'.padStart(5)} × rounds | ${'jobs/s'.padEnd(22)} | ${'latency median'.padEnd(22)} | ${'p95'.padEnd(22)} | p99`);
  const loads: Load[] = ['sequential', 'closed', 'burst'];
  if (STACKS.includes('queue')) for (const load of loads) await measure('queue', () => buildInProcess(false, JOBS + 10), load, JOBS, ROUNDS, false);
  if (STACKS.includes('run')) for (const load of loads) await measure('run', () => buildInProcess(true, RUN_JOBS + 10), load, RUN_JOBS, ROUNDS, false);
  if (STACKS.includes('http')) for (const load of loads) await measure('http', () => buildHttp(HTTP_JOBS + 10), load, HTTP_JOBS, HTTP_ROUNDS, true);
  console.log('burst latencies include the wait behind the jobs submitted before; sequential and closed-loop ones do not.');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
