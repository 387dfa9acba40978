/**
 * Many machines, on real parts: two `ROLE=api` and two `ROLE=worker` processes over one Redis (BullMQ
 * queue, events, backend slots), one PostgreSQL (keys, ledger, jobs) and one S3 endpoint (s3rver: the
 * images), in front of two fake GPU backends (the OpenAI-compatible dialect of vLLM-Omni / SGLang) that
 * count the requests they have open at once. Every process is a real child process, so `kill -9` is real.
 *
 * No timed assertions: each wait is for a state the API reports (waitUntil polls it without a deadline;
 * the file's test timeout bounds a hang).
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODEL, TEST_KEY } from '../helpers/server.ts';
import { killSpawnedServers, serverProcessEnv, startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { waitUntil } from '../helpers/wait-until.ts';
import { openEvents } from '../helpers/jobs.ts';
import { writeRoutingFile } from '../helpers/routing.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { S3RVER_CREDENTIALS, startS3rver, type S3Endpoint } from '../helpers/s3.ts';
import { startFakeOpenaiImages, type FakeOpenaiImages } from '../fakes/fake-openai-images.ts';

const auth = { authorization: `Bearer ${TEST_KEY}` };
const body = { model: MODEL, prompt: 'a lighthouse on a cliff', size: '512x512', enhance_prompt: false, watermark: false };
/** The default price of the model: $0.0455 → 91000 credits (the seed's example response). */
const CREDITS_PER_IMAGE = 91_000;
/** Long enough that a job on a fake only ends when its client goes away. */
const HOLD_MS = 600_000;

let pg: TestPostgres;
let redis: TestRedis;
let s3: S3Endpoint;
let gpuA: FakeOpenaiImages;
let gpuB: FakeOpenaiImages;
let sharedEnv: Record<string, string>;
const apis: ServerProcess[] = [];
const workers: Array<ServerProcess | null> = [];

async function call(base: string, method: string, pathname: string, payload?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + pathname, {
    method,
    headers: { ...auth, ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const text = await res.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: keep the text for the assertion message
  }
  return { status: res.status, json };
}

async function submit(api: ServerProcess, prompt = body.prompt): Promise<string> {
  const res = await call(api.url, 'POST', '/v1/images/generations', { ...body, prompt }, { prefer: 'respond-async' });
  assert.equal(res.status, 202, JSON.stringify(res.json));
  return res.json.id as string;
}

const job = async (api: ServerProcess, id: string) => (await call(api.url, 'GET', `/v1/jobs/${id}`)).json;
const usage = async (api: ServerProcess) => (await call(api.url, 'GET', '/v1/usage')).json;

async function waitForStatus(ids: string[], status: string, what: string): Promise<any[]> {
  let views: any[] = [];
  await waitUntil(async () => {
    views = await Promise.all(ids.map((id, i) => job(apis[i % apis.length]!, id)));
    const bad = views.find((v) => v.status !== status && v.status !== 'queued' && v.status !== 'running');
    if (bad) throw new Error(`job ${bad.id} ended ${bad.status}: ${JSON.stringify(bad.error)}`);
    return views.every((v) => v.status === status);
  }, what);
  return views;
}

async function startWorker(index: number): Promise<ServerProcess> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `qis-scale-worker${index}-`));
  return startServerProcess(serverProcessEnv(dataDir, { ...sharedEnv, ROLE: 'worker', WORKER_HEALTH_PORT: '0', PUBLIC_URL: apis[0]!.url }));
}

describe('two api and two worker processes over Redis, Postgres and S3', { timeout: 900_000 }, () => {
  before(async () => {
    [pg, redis, s3, gpuA, gpuB] = await Promise.all([startPostgres(), startRedis(), startS3rver(), startFakeOpenaiImages(), startFakeOpenaiImages()]);
    gpuA.delayMs = 50;
    gpuB.delayMs = 50;
    const line = (id: string, fake: FakeOpenaiImages) =>
      `{ id: ${id}, type: openai, url: "${fake.url}", model: Qwen/Qwen-Image, priority: 0, concurrency: 1, extraFields: [seed] }`;
    sharedEnv = {
      DATABASE_URL: await pg.createDatabase('scale'),
      REDIS_URL: redis.url,
      // Short enough that a killed worker's job moves on within seconds; long enough for a busy machine.
      REDIS_JOB_LOCK_MS: '4000',
      ...s3.env('scale'),
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      // Every process must hash API keys with the same secret: they share one keys table.
      KEY_HASH_SECRET: 'scale-out-test-key-hash-secret',
      BACKENDS_CONFIG: writeRoutingFile([line('gpu-a', gpuA), line('gpu-b', gpuB)]),
      ENGINE_MAX_QUEUE: '200',
      WORKER_POLL_MS: '200',
      // Every second each worker compares the queue with the store (a Redis restart test below).
      JOB_QUEUE_SWEEP_MS: '1000',
    };
    for (let i = 0; i < 2; i++) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `qis-scale-api${i}-`));
      apis.push(await startServerProcess(serverProcessEnv(dataDir, { ...sharedEnv, ROLE: 'api' })));
    }
    for (let i = 0; i < 2; i++) workers.push(await startWorker(i));
  });

  after(async () => {
    killSpawnedServers();
    await Promise.all([...apis, ...workers].map((p) => p?.exited));
    await Promise.all([gpuA?.close(), gpuB?.close(), s3?.stop(), redis?.stop(), pg?.stop()]);
  });

  test('100 jobs through both APIs: all succeed, each charged once, each image served by either API, no backend over its concurrency', async () => {
    const ids: string[] = [];
    // Ten submitters at a time, alternating between the APIs.
    for (let batch = 0; batch < 10; batch++) {
      ids.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => submit(apis[(batch * 10 + i) % 2]!, `a lighthouse number ${batch * 10 + i}`)))));
    }
    const views = await waitForStatus(ids, 'succeeded', '100 jobs succeeded');
    assert.equal(new Set(ids).size, 100);
    for (const view of views) assert.equal(view.attempts, 1, `job ${view.id} ran once`);

    for (const api of apis) {
      const totals = await usage(api);
      assert.equal(totals.generations, 100, 'the ledger has exactly one row per job, whichever API is asked');
      assert.equal(totals.credits_used, 100 * CREDITS_PER_IMAGE);
    }
    assert.ok(gpuA.maxInFlight <= 1 && gpuB.maxInFlight <= 1, `backend concurrency 1 held across workers (saw ${gpuA.maxInFlight} and ${gpuB.maxInFlight})`);
    assert.equal(gpuA.requests.length + gpuB.requests.length, 100, 'each job reached a GPU exactly once');
    assert.ok(gpuA.requests.length > 0 && gpuB.requests.length > 0, 'both GPUs drew');

    // Every image is in the bucket and downloadable through either API (the URL's path on each).
    for (const view of views.slice(0, 20)) {
      const url = new URL(view.result.data[0].url);
      for (const api of apis) {
        const res = await fetch(api.url + url.pathname, { headers: auth });
        assert.equal(res.status, 200, `${url.pathname} from ${api.url}`);
        assert.equal(res.headers.get('content-type'), 'image/png');
        assert.deepEqual([...Buffer.from(await res.arrayBuffer()).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
      }
    }
  });

  test('kill -9 of a worker mid-run: its jobs run again on the other worker, none lost, none charged twice', async () => {
    const before = (await usage(apis[0]!)).generations as number;
    // Only worker 0 may take these jobs: worker 1 is paused (SIGSTOP) until worker 0 is dead.
    workers[1]!.child.kill('SIGSTOP');
    gpuA.delayMs = HOLD_MS;
    gpuB.delayMs = HOLD_MS;
    const ids = [await submit(apis[0]!, 'a red kite'), await submit(apis[1]!, 'a blue kite')];
    await waitForStatus(ids, 'running', 'worker 0 runs both jobs');
    await waitUntil(() => gpuA.inFlight + gpuB.inFlight === 2, 'both GPUs are drawing for worker 0');

    workers[0]!.child.kill('SIGKILL');
    await workers[0]!.exited;
    workers[0] = null;
    await waitUntil(() => gpuA.inFlight + gpuB.inFlight === 0, 'the GPUs saw the dead worker’s connections close');
    gpuA.delayMs = 50;
    gpuB.delayMs = 50;
    workers[1]!.child.kill('SIGCONT');

    const views = await waitForStatus(ids, 'succeeded', 'the other worker finished both jobs');
    for (const view of views) assert.equal(view.attempts, 2, `job ${view.id} ran a second time, on the live worker`);
    assert.equal((await usage(apis[1]!)).generations, before + 2, 'two jobs, two ledger rows');
    assert.ok(gpuA.maxInFlight <= 1 && gpuB.maxInFlight <= 1, 'no backend over its concurrency during the hand-over');
  });

  test('a cancel sent to one API stops the job a worker is running for the other', async () => {
    workers[0] = await startWorker(2);
    const before = (await usage(apis[0]!)).generations as number;
    const cancelsBefore = gpuA.cancelCount() + gpuB.cancelCount();
    gpuA.delayMs = HOLD_MS;
    gpuB.delayMs = HOLD_MS;
    const id = await submit(apis[1]!, 'a slow green kite');
    await waitForStatus([id], 'running', 'a worker runs the job');
    await waitUntil(() => gpuA.inFlight + gpuB.inFlight === 1, 'a GPU is drawing it');

    const canceled = await call(apis[0]!.url, 'POST', `/v1/jobs/${id}/cancel`);
    assert.equal(canceled.status, 200, JSON.stringify(canceled.json));
    await waitUntil(() => gpuA.inFlight + gpuB.inFlight === 0, 'the worker aborted its request to the GPU');
    assert.equal(gpuA.cancelCount() + gpuB.cancelCount(), cancelsBefore + 1);
    assert.equal((await job(apis[1]!, id)).status, 'canceled');
    gpuA.delayMs = 50;
    gpuB.delayMs = 50;
    // A job after it still runs, and the canceled one was never charged.
    const next = await submit(apis[0]!, 'a kite after the cancel');
    await waitForStatus([next], 'succeeded', 'the next job succeeded');
    assert.equal((await usage(apis[0]!)).generations, before + 1);
  });
  test('the events of a job run by a worker reach the SSE stream on another API process', async () => {
    // Both workers paused: the job waits in the queue while the stream opens, so "running" can only come
    // from the worker that takes it, through Redis.
    for (const w of workers) w!.child.kill('SIGSTOP');
    const id = await submit(apis[1]!, 'a kite watched from the other API');
    const stream = await openEvents(`${apis[0]!.url}/v1/jobs/${id}/events`, TEST_KEY);
    await stream.next((e) => e.event === 'queued');
    for (const w of workers) w!.child.kill('SIGCONT');
    await stream.next((e) => e.event === 'running');
    await stream.next((e) => e.event === 'succeeded');
    const order = stream.events.map((e) => e.event).filter((e) => e !== 'progress');
    assert.deepEqual(order.slice(-2), ['running', 'succeeded'], `events in order: ${order.join(', ')}`);
    stream.close();
    assert.equal((await job(apis[0]!, id)).status, 'succeeded');
  });

  test('a Redis restart without persistence loses the waiting jobs from the queue: the workers put them back and run them, restarting nothing', { timeout: 180_000 }, async () => {
    const before = (await usage(apis[0]!)).generations as number;
    // Both workers paused, so the jobs are waiting in Redis (and queued in Postgres) when it goes.
    for (const w of workers) w!.child.kill('SIGSTOP');
    const ids = [await submit(apis[0]!, 'a kite Redis forgot'), await submit(apis[1]!, 'another kite Redis forgot')];
    await redis.restart();
    assert.equal(redis.cli('DBSIZE').trim(), '0', 'the new Redis holds nothing: the queue lost both jobs');
    for (const w of workers) w!.child.kill('SIGCONT');

    const views = await waitForStatus(ids, 'succeeded', 'both jobs succeeded after the restart');
    for (const view of views) assert.equal(view.attempts, 1, `job ${view.id} ran once`);
    assert.equal((await usage(apis[1]!)).generations, before + 2, 'two jobs, two ledger rows');
    // The queue works as before for the next job.
    const next = await submit(apis[1]!, 'a kite after the restart');
    await waitForStatus([next], 'succeeded', 'a job submitted after the restart succeeded');
  });
});
