/**
 * Jobs over remote GPU backends, end to end over HTTP (fakes that follow the backends' protocols
 * stand in for the GPUs): the job runner fills exactly the routing file's concurrency and no more,
 * queued jobs see their place in line, cancel reaches the backend (a ComfyUI interrupt, an aborted
 * OpenAI-compatible request) or keeps a queued job from ever reaching it, and a full queue says no
 * with 503 and Retry-After before anything is stored.
 *
 * No timed assertions: concurrency is read from the fakes' own count of open requests, and every
 * wait is for an event (an SSE event, a fake seeing a request) or a bounded poll.
 */
import { test, before, after, afterEach, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, MODEL, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { openEvents, waitUntil } from '../helpers/jobs.ts';
import { startFakeOpenaiImages, type FakeOpenaiImages } from '../fakes/fake-openai-images.ts';
import { startFakeComfyui, type FakeComfyui } from '../fakes/fake-comfyui.ts';
import { writeRoutingFile } from '../helpers/routing.ts';

const body = { model: MODEL, prompt: 'a lighthouse on a cliff', image_size: 'square', enhance_prompt: false };
const ASYNC = { prefer: 'respond-async' };
/** Long enough that a job on the fake only ends when the test cancels it. */
const HOLD_MS = 60_000;


const openaiLine = (id: string, fake: FakeOpenaiImages, concurrency: number) =>
  `{ id: ${id}, type: openai, url: "${fake.url}", model: Qwen/Qwen-Image, priority: 0, concurrency: ${concurrency}, extraFields: [seed] }`;

/** A failing test ends within this instead of waiting on a job the fakes hold for a minute. */
const TEST_TIMEOUT = { timeout: 30_000 };

/**
 * After each test: cancel whatever this key still has waiting or running (waiting first, so none
 * starts meanwhile), so a failure leaves a clean backend to the next test.
 */
async function cancelLeftovers(server: TestServer | undefined, fakes: FakeOpenaiImages[]): Promise<void> {
  for (const fake of fakes) fake.delayMs = 10;
  if (!server) return;
  for (const status of ['queued', 'running']) {
    const left = (await server.get(`/v1/jobs?status=${status}&limit=100`)).json.data ?? [];
    for (const job of left) await server.post(`/v1/jobs/${job.id}/cancel`, undefined);
  }
  await waitUntil(() => fakes.every((f) => f.inFlight === 0), 'the backends closed every canceled request');
}

async function generations(server: TestServer): Promise<number> {
  const res = await server.get('/v1/usage');
  assert.equal(res.status, 200);
  return res.json.generations;
}

async function cancel(server: TestServer, jobId: string): Promise<any> {
  const res = await server.post(`/v1/jobs/${jobId}/cancel`, undefined);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json;
}

describe('two OpenAI-compatible backends, concurrency 2 each, same priority', () => {
  let gpuA: FakeOpenaiImages;
  let gpuB: FakeOpenaiImages;
  let server: TestServer;
  const fakes = () => [gpuA, gpuB];
  const inFlight = () => gpuA.inFlight + gpuB.inFlight;
  const cancels = () => gpuA.cancels + gpuB.cancels;

  before(async () => {
    gpuA = await startFakeOpenaiImages();
    gpuB = await startFakeOpenaiImages();
    server = await startTestServer({ BACKENDS_CONFIG: writeRoutingFile([openaiLine('gpu-a', gpuA, 2), openaiLine('gpu-b', gpuB, 2)]) });
  });
  afterEach(() => cancelLeftovers(server, fakes()));
  after(async () => {
    await server.close();
    await gpuA.close();
    await gpuB.close();
  });

  test('8 concurrent synchronous requests all succeed; each backend runs 2 at once and never more', TEST_TIMEOUT, async () => {
    for (const fake of fakes()) {
      fake.reset();
      fake.delayMs = 1000;
    }
    const usageBefore = await generations(server);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => server.post('/v1/images/generations', { ...body, seed: 100 + i })));
    assert.deepEqual(results.map((r) => r.status), Array(8).fill(200), JSON.stringify(results.find((r) => r.status !== 200)?.json));
    assert.deepEqual(results.map((r) => r.json.data[0].seed), Array.from({ length: 8 }, (_, i) => 100 + i));
    assert.equal(gpuA.requests.length + gpuB.requests.length, 8, 'each request drawn once, none retried');
    // The runner filled the summed concurrency (2 + 2), and the router kept each backend to its own.
    assert.equal(gpuA.maxInFlight, 2, `gpu-a peak ${gpuA.maxInFlight}`);
    assert.equal(gpuB.maxInFlight, 2, `gpu-b peak ${gpuB.maxInFlight}`);
    assert.equal(inFlight(), 0);
    assert.equal(await generations(server), usageBefore + 8);
  });

  test('8 async jobs submitted at once: 4 run, 4 wait and see their place in line move up', TEST_TIMEOUT, async () => {
    for (const fake of fakes()) {
      fake.reset();
      fake.delayMs = HOLD_MS;
    }
    const jobs: any[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await server.post('/v1/images/generations', { ...body, seed: 200 + i }, ASYNC);
      assert.equal(res.status, 202, JSON.stringify(res.json));
      jobs.push(res.json);
    }
    // The last four cannot have started (the first four hold every slot), so each 202 shows a place.
    for (const job of jobs.slice(4)) {
      assert.equal(job.status, 'queued');
      assert.equal(typeof job.queue_position, 'number', `job ${job.id}: ${JSON.stringify(job)}`);
    }
    await waitUntil(() => inFlight() === 4, 'four requests open on the backends');
    assert.deepEqual([gpuA.inFlight, gpuB.inFlight], [2, 2]);

    const seen = await Promise.all(jobs.map(async (j) => (await server.get(`/v1/jobs/${j.id}`)).json));
    assert.deepEqual(seen.map((j) => j.status), [...Array(4).fill('running'), ...Array(4).fill('queued')]);
    assert.deepEqual(seen.map((j) => j.queue_position), [null, null, null, null, 0, 1, 2, 3]);
    const listed = (await server.get('/v1/jobs?status=queued&limit=100')).json.data;
    assert.deepEqual(listed.map((j: any) => [j.id, j.queue_position]), [...jobs.slice(4)].reverse().map((j, i) => [j.id, 3 - i]));

    // The last job watches its place; when a running job ends, the first waiting one takes its slot.
    const stream = await openEvents(`${server.url}/v1/jobs/${jobs[7].id}/events`, TEST_KEY);
    await stream.next((e) => e.event === 'queued' && e.data.queue_position === 3);
    assert.equal((await cancel(server, jobs[0].id)).status, 'canceled');
    await stream.next((e) => e.event === 'queued' && e.data.queue_position === 2);
    assert.equal((await server.get(`/v1/jobs/${jobs[4].id}`)).json.status, 'running');
    await waitUntil(() => gpuA.requests.length + gpuB.requests.length === 5, 'the fifth job reached a backend');
    await waitUntil(() => inFlight() === 4, 'the freed slot filled again');
    assert.ok(gpuA.maxInFlight <= 2 && gpuB.maxInFlight <= 2, `peaks ${gpuA.maxInFlight}, ${gpuB.maxInFlight}`);

    // Waiting ones first, so none of them starts while the running ones are canceled.
    for (const job of [...jobs.slice(5)].reverse()) assert.equal((await cancel(server, job.id)).status, 'canceled');
    for (const job of jobs.slice(1, 5)) assert.equal((await cancel(server, job.id)).status, 'canceled');
    const events = await stream.ended;
    assert.equal(events.at(-1)!.event, 'canceled');
    await waitUntil(() => inFlight() === 0, 'every backend request closed');
    assert.equal(gpuA.requests.length + gpuB.requests.length, 5, 'the jobs canceled while waiting never reached a backend');
  });

  test('canceling a job running on an OpenAI-compatible backend aborts its request there; nothing is charged', TEST_TIMEOUT, async () => {
    for (const fake of fakes()) {
      fake.reset();
      fake.delayMs = HOLD_MS;
    }
    const usageBefore = await generations(server);
    const job = (await server.post('/v1/images/generations', { ...body, seed: 300 }, ASYNC)).json;
    await waitUntil(() => inFlight() === 1, 'the request reached a backend');
    const stream = await openEvents(`${server.url}/v1/jobs/${job.id}/events`, TEST_KEY);
    await stream.next((e) => e.event === 'running');

    const canceled = await cancel(server, job.id);
    assert.equal(canceled.status, 'canceled');
    assert.equal(canceled.result, null);
    const events = await stream.ended;
    assert.equal(events.at(-1)!.event, 'canceled');
    assert.equal(events.at(-1)!.data.status, 'canceled');
    await waitUntil(() => cancels() === 1, 'the backend saw its client go away');
    assert.equal(inFlight(), 0);
    assert.equal(gpuA.requests.length + gpuB.requests.length, 1, 'not retried on the other backend');
    assert.equal(await generations(server), usageBefore);
    const after = (await server.get(`/v1/jobs/${job.id}`)).json;
    assert.equal(after.status, 'canceled');
    assert.equal(after.result, null);
  });
});

describe('a ComfyUI backend', () => {
  let comfy: FakeComfyui;
  let server: TestServer;
  before(async () => {
    // 50 steps of 100 ms: a job runs for 5 s unless it is canceled.
    comfy = await startFakeComfyui({ steps: 50, stepDelayMs: 100 });
    server = await startTestServer({ BACKENDS_CONFIG: writeRoutingFile([`{ id: comfy, type: comfyui, url: "${comfy.url}" }`]) });
  });
  afterEach(() => cancelLeftovers(server, []));
  after(async () => {
    await server.close();
    await comfy.close();
  });

  test('canceling a running job interrupts its prompt on ComfyUI; nothing is charged; the backend is free again', TEST_TIMEOUT, async () => {
    const usageBefore = await generations(server);
    const job = (await server.post('/v1/images/generations', { ...body, seed: 400 }, ASYNC)).json;
    const stream = await openEvents(`${server.url}/v1/jobs/${job.id}/events`, TEST_KEY);
    // A progress event comes from ComfyUI's own websocket: the prompt is on the GPU.
    const progress = await stream.next((e) => e.event === 'progress');
    assert.equal(progress.data.steps, 50);
    assert.equal(comfy.prompts.length, 1);
    const promptId = comfy.prompts[0]!.promptId;

    assert.equal((await cancel(server, job.id)).status, 'canceled');
    const events = await stream.ended;
    assert.equal(events.at(-1)!.event, 'canceled');
    assert.ok(!events.some((e) => e.event === 'succeeded' || e.event === 'failed'));
    await waitUntil(() => comfy.interrupts.length > 0, 'ComfyUI received an interrupt');
    assert.deepEqual(comfy.interrupts, [{ promptId }], 'only our prompt is interrupted');
    assert.equal(await generations(server), usageBefore);
    assert.equal((await server.get(`/v1/jobs/${job.id}`)).json.status, 'canceled');

    comfy.steps = 2;
    comfy.stepDelayMs = 5;
    const next = await server.post('/v1/images/generations', { ...body, seed: 401 });
    assert.equal(next.status, 200, JSON.stringify(next.json));
    assert.equal(comfy.prompts.length, 2);
    assert.equal(await generations(server), usageBefore + 1);
  });
});

describe('one OpenAI-compatible backend, concurrency 1, ENGINE_MAX_QUEUE=1', () => {
  let gpu: FakeOpenaiImages;
  let server: TestServer;
  before(async () => {
    gpu = await startFakeOpenaiImages();
    server = await startTestServer({ ENGINE_MAX_QUEUE: '1', BACKENDS_CONFIG: writeRoutingFile([openaiLine('gpu', gpu, 1)]) });
  });
  afterEach(() => cancelLeftovers(server, [gpu]));
  after(async () => {
    await server.close();
    await gpu.close();
  });

  test('a job queued behind a busy backend is canceled at once and never reaches it', TEST_TIMEOUT, async () => {
    gpu.reset();
    gpu.delayMs = HOLD_MS;
    const usageBefore = await generations(server);
    const running = (await server.post('/v1/images/generations', { ...body, seed: 500 }, ASYNC)).json;
    await waitUntil(() => gpu.inFlight === 1, 'the first job reached the backend');
    const queued = (await server.post('/v1/images/generations', { ...body, seed: 501 }, ASYNC)).json;
    assert.equal(queued.status, 'queued');
    assert.equal(queued.queue_position, 0);

    const stream = await openEvents(`${server.url}/v1/jobs/${queued.id}/events`, TEST_KEY);
    const canceled = await cancel(server, queued.id);
    assert.equal(canceled.status, 'canceled', 'the answer itself says canceled: nothing had to stop');
    assert.equal(canceled.queue_position, null);
    assert.deepEqual((await stream.ended).map((e) => e.event), ['queued', 'canceled']);
    assert.equal((await server.get(`/v1/jobs/${running.id}`)).json.status, 'running', 'the running job is untouched');

    // Free the backend; a later job runs next. Had the canceled one stayed in line, it would have gone first.
    gpu.delayMs = 10;
    assert.equal((await cancel(server, running.id)).status, 'canceled');
    const later = await server.post('/v1/images/generations', { ...body, seed: 502 });
    assert.equal(later.status, 200, JSON.stringify(later.json));
    assert.deepEqual(gpu.requests.map((r) => r.seed), [500, 502]);
    assert.equal(await generations(server), usageBefore + 1);
  });

  test('past ENGINE_MAX_QUEUE a submit is 503 queue_full with Retry-After, and nothing is stored for it', TEST_TIMEOUT, async () => {
    gpu.reset();
    gpu.delayMs = HOLD_MS;
    const running = (await server.post('/v1/images/generations', { ...body, seed: 600 }, ASYNC)).json;
    await waitUntil(() => gpu.inFlight === 1, 'the first job reached the backend');
    const waiting = await server.post('/v1/images/generations', { ...body, seed: 601 }, ASYNC);
    assert.equal(waiting.status, 202);
    assert.equal(waiting.json.status, 'queued');
    const listBefore = (await server.get('/v1/jobs?limit=100')).json.data.map((j: any) => j.id);

    for (const headers of [ASYNC, {}]) {
      const full = await server.post('/v1/images/generations', { ...body, seed: 602 }, headers);
      assert.equal(full.status, 503, JSON.stringify(full.json));
      assert.equal(full.json.error.code, 'queue_full');
      const retryAfter = full.headers.get('retry-after');
      assert.match(retryAfter ?? '', /^\d+$/, `Retry-After: ${retryAfter}`);
      assert.ok(Number(retryAfter) >= 1);
      assert.equal(full.headers.get('location'), null);
    }
    // Also with an Idempotency-Key: a refused submit leaves no record behind, so a retry later is a fresh job.
    const keyed = await server.post('/v1/images/generations', { ...body, seed: 603 }, { ...ASYNC, 'idempotency-key': 'full-queue-1' });
    assert.equal(keyed.status, 503);
    assert.deepEqual((await server.get('/v1/jobs?limit=100')).json.data.map((j: any) => j.id), listBefore);
    assert.deepEqual(gpu.requests.map((r) => r.seed), [600]);

    assert.equal((await cancel(server, waiting.json.id)).status, 'canceled');
    gpu.delayMs = 10;
    assert.equal((await cancel(server, running.id)).status, 'canceled');
    const retried = await server.post('/v1/images/generations', { ...body, seed: 603 }, { 'idempotency-key': 'full-queue-1' });
    assert.equal(retried.status, 200, JSON.stringify(retried.json));
    assert.equal(retried.headers.get('idempotent-replayed'), null);
    await waitUntil(() => gpu.inFlight === 0, 'the backend is idle');
  });
});
