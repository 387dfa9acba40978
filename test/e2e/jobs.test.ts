/**
 * The job API over HTTP against the real server (bundled tiny model): async submit and poll,
 * Prefer: wait, SSE events in order (and a late subscriber), cancel of a queued and of a running
 * job, idempotent replay (sequential and concurrent), reused x-request-ids, listing, validation.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../../src/domain/types.ts';
import { startTestServer, MODEL, TEST_KEY, OTHER_KEY, type TestServer } from '../helpers/server.ts';
import { readEvents, waitForStatus, waitUntil } from '../helpers/jobs.ts';

const body = { model: MODEL, prompt: 'a red house', enhance_prompt: false, image_size: 'square', seed: 11 };

/** Holds every generation until `release()`; counts starts and aborts. */
function gatedEngine() {
  const state = { started: 0, aborted: 0, waiters: [] as Array<() => void>, onStart: [] as Array<() => void> };
  let open = false;
  const wrap = (engine: Engine): Engine => ({
    id: engine.id,
    kind: engine.kind,
    description: engine.description,
    load: () => engine.load(),
    capabilities: () => engine.capabilities(),
    health: () => engine.health(),
    close: () => engine.close(),
    async generate(request, signal, onProgress) {
      state.started++;
      for (const f of state.onStart.splice(0)) f();
      if (!open) {
        await new Promise<void>((resolve, reject) => {
          state.waiters.push(resolve);
          signal.addEventListener('abort', () => {
            state.aborted++;
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          }, { once: true });
        });
      }
      return engine.generate(request, signal, onProgress);
    },
  });
  return {
    state,
    wrap,
    /** Resolves once `n` generations have started in total. */
    startedAtLeast: (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (state.started >= n ? resolve() : state.onStart.push(check));
        check();
      }),
    releaseAll: () => {
      open = true;
      for (const w of state.waiters.splice(0)) w();
    },
    close: () => {
      open = false;
    },
  };
}

describe('async jobs on the builtin engine', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close();
  });

  test('Prefer: respond-async answers 202 with the job; polling reaches succeeded with the synchronous body', async () => {
    const res = await server.post('/v1/images/generations', body, { prefer: 'respond-async' });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('preference-applied'), 'respond-async');
    const job = res.json;
    assert.match(job.id, /^job_[0-9a-f-]{36}$/);
    assert.equal(res.headers.get('location'), `/v1/jobs/${job.id}`);
    assert.ok(['queued', 'running', 'succeeded'].includes(job.status));
    assert.equal(typeof job.created_at, 'number');
    assert.deepEqual(Object.keys(job.urls).sort(), ['cancel', 'events', 'get']);
    assert.equal(job.urls.get, `${server.url}/v1/jobs/${job.id}`);
    assert.equal(job.input.seed, 11);

    const done = await waitForStatus(server, job.id, 'succeeded');
    assert.equal(done.result.data[0].seed, 11);
    assert.match(done.result.data[0].url, /\/files\/generations\/.+\.png$/);
    assert.deepEqual(done.result.meta.usage, { credits_used: 91000, usd_spent: 0.0455 });
    assert.ok(done.started_at >= done.created_at && done.completed_at >= done.started_at);
    assert.equal(done.attempts, 1);
    assert.equal(done.error, null);
    const image = await fetch(done.result.data[0].url);
    assert.equal(image.status, 200);
    assert.equal(image.headers.get('content-type'), 'image/png');

    const sync = await server.post('/v1/images/generations', body);
    assert.equal(sync.status, 200);
    assert.deepEqual(Object.keys(sync.json).sort(), Object.keys(done.result).sort());
    assert.deepEqual(sync.json.data[0].seed, done.result.data[0].seed);
  });

  test('Prefer: wait=N answers 200 with the result when it is ready in time', async () => {
    const res = await server.post('/v1/images/generations', { ...body, response_format: 'b64_json' }, { prefer: 'wait=60' });
    assert.equal(res.status, 200);
    assert.ok(res.json.data[0].b64_json.length > 100);
  });

  test('a key sees only its own jobs; the list is newest first with cursor pages and a status filter', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) mine.push((await server.post('/v1/images/generations', { ...body, seed: 100 + i }, { prefer: 'respond-async' })).json.id);
    for (const id of mine) await waitForStatus(server, id, 'succeeded');
    const other = await server.get(`/v1/jobs/${mine[0]}`, { authorization: `Bearer ${OTHER_KEY}` });
    assert.equal(other.status, 404);
    assert.equal(other.json.error.code, 'not_found');
    const otherList = await server.get('/v1/jobs', { authorization: `Bearer ${OTHER_KEY}` });
    assert.ok(!otherList.json.data.some((j: any) => mine.includes(j.id)));

    const page1 = await server.get('/v1/jobs?limit=2');
    assert.equal(page1.status, 200);
    assert.deepEqual(page1.json.data.map((j: any) => j.id), [mine[2], mine[1]]);
    assert.equal(page1.json.has_more, true);
    const page2 = await server.get(`/v1/jobs?limit=2&after=${page1.json.next_cursor}`);
    assert.equal(page2.json.data[0].id, mine[0]);
    const succeeded = await server.get('/v1/jobs?status=succeeded&limit=100');
    assert.ok(succeeded.json.data.every((j: any) => j.status === 'succeeded'));
    assert.equal((await server.get('/v1/jobs?limit=0')).json.error.param, 'limit');
    assert.equal((await server.get('/v1/jobs?status=done')).json.error.param, 'status');
    assert.equal((await server.get('/v1/jobs?page=2')).json.error.code, 'unknown_field');
    assert.equal((await server.get('/v1/jobs/job_nope')).status, 404);
  });

  test('SSE: events come in order and end with the terminal job; a late subscriber gets the current state', async () => {
    const job = (await server.post('/v1/images/generations', { ...body, seed: 5 }, { prefer: 'respond-async' })).json;
    const events = await readEvents(`${server.url}/v1/jobs/${job.id}/events`, TEST_KEY);
    const types = events.map((e) => e.event);
    assert.ok(['queued', 'running', 'succeeded'].includes(types[0]!), `first event ${types[0]}`);
    assert.equal(types.at(-1), 'succeeded');
    const order = ['queued', 'running', 'progress', 'succeeded'];
    for (let i = 1; i < types.length; i++) assert.ok(order.indexOf(types[i]!) >= order.indexOf(types[i - 1]!), `order: ${types.join(',')}`);
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data);
    if (types.includes('running') && types[0] !== 'succeeded') {
      assert.ok(progress.length > 0, 'the builtin engine reports steps');
      assert.ok(progress.every((p: any, i: number) => i === 0 || p.step > progress[i - 1].step));
      assert.equal(progress.at(-1).step, progress.at(-1).steps);
    }
    const last = events.at(-1)!.data;
    assert.equal(last.status, 'succeeded');
    assert.equal(last.result.data[0].seed, 5);

    const late = await readEvents(`${server.url}/v1/jobs/${job.id}/events`, TEST_KEY);
    assert.deepEqual(late.map((e) => e.event), ['succeeded']);
    assert.equal(late[0]!.data.id, job.id);
  });

  test('idempotency: a replay returns the same job and charges once; a different body is a 422', async () => {
    const before = (await server.get('/v1/usage')).json.generations;
    const headers = { 'idempotency-key': 'order-42' };
    const a = await server.post('/v1/images/generations', { ...body, seed: 42 }, headers);
    assert.equal(a.status, 200);
    const b = await server.post('/v1/images/generations', { seed: 42, prompt: body.prompt, image_size: body.image_size, enhance_prompt: false, model: MODEL }, headers);
    assert.equal(b.status, 200);
    assert.equal(b.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(b.json, a.json);
    const c = await server.post('/v1/images/generations', { ...body, seed: 43 }, headers);
    assert.equal(c.status, 422);
    assert.equal(c.json.error.code, 'idempotency_key_reused');
    assert.equal(c.json.error.param, 'Idempotency-Key');
    // Another API key may use the same Idempotency-Key for its own request.
    const other = await server.post('/v1/images/generations', { ...body, seed: 43 }, { ...headers, authorization: `Bearer ${OTHER_KEY}` });
    assert.equal(other.status, 200);
    assert.equal((await server.get('/v1/usage')).json.generations - before, 1);

    const concurrent = await Promise.all(
      [0, 1, 2, 3].map(() => server.post('/v1/images/generations', { ...body, seed: 44 }, { 'idempotency-key': 'burst-1', prefer: 'respond-async' })),
    );
    assert.ok(concurrent.every((r) => r.status === 202), concurrent.map((r) => r.status).join(','));
    assert.equal(new Set(concurrent.map((r) => r.json.id)).size, 1, 'one job for all four');
    await waitForStatus(server, concurrent[0]!.json.id, 'succeeded');
    assert.equal((await server.get('/v1/usage')).json.generations - before, 2);
    assert.equal((await server.post('/v1/images/generations', body, { 'idempotency-key': 'has space' })).json.error.param, 'Idempotency-Key');
  });

  test('a reused x-request-id, from the same key or another, never gives a 5xx and charges each', async () => {
    const before = (await server.get('/v1/usage')).json.generations;
    const headers = { 'x-request-id': 'shared-request-id' };
    const a = await server.post('/v1/images/generations', body, headers);
    const b = await server.post('/v1/images/generations', body, headers);
    const c = await server.post('/v1/images/generations', body, { ...headers, authorization: `Bearer ${OTHER_KEY}` });
    assert.deepEqual([a.status, b.status, c.status], [200, 200, 200]);
    assert.equal((await server.get('/v1/usage')).json.generations - before, 2);
  });

  test('a webhook with a bad URL is refused before anything is stored', async () => {
    const before = (await server.get('/v1/jobs?limit=100')).json.data.length;
    const res = await server.post('/v1/images/generations', { ...body, webhook: { url: 'ftp://example.com/x' } });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.param, 'webhook.url');
    const events = await server.post('/v1/images/generations', { ...body, webhook: { url: 'https://example.com/x', events: ['done'] } });
    assert.equal(events.status, 400);
    assert.match(events.json.error.param, /^webhook\.events/);
    assert.equal((await server.get('/v1/jobs?limit=100')).json.data.length, before);
  });
});

describe('cancel', () => {
  const gate = gatedEngine();
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ ENGINE_CONCURRENCY: '1', ENGINE_MAX_QUEUE: '4' }, { wrapEngine: gate.wrap });
  });
  after(async () => {
    gate.releaseAll();
    await server.close();
  });

  test('a queued job is canceled at once; a running one has its engine aborted; neither is charged', async () => {
    const usageBefore = (await server.get('/v1/usage')).json.generations;
    const running = (await server.post('/v1/images/generations', body, { prefer: 'respond-async' })).json;
    await gate.startedAtLeast(1);
    const queued = (await server.post('/v1/images/generations', { ...body, seed: 2 }, { prefer: 'respond-async' })).json;
    assert.equal(queued.status, 'queued');
    assert.equal(queued.queue_position, 0);

    const streamed = readEvents(`${server.url}/v1/jobs/${queued.id}/events`, TEST_KEY);
    const c1 = await server.post(`/v1/jobs/${queued.id}/cancel`, undefined);
    assert.equal(c1.status, 200);
    assert.equal(c1.json.status, 'canceled');
    assert.deepEqual((await streamed).map((e) => e.event), ['queued', 'canceled']);

    assert.equal((await server.get(`/v1/jobs/${running.id}`)).json.status, 'running');
    const c2 = await server.post(`/v1/jobs/${running.id}/cancel`, undefined);
    assert.equal(c2.status, 200);
    assert.equal(c2.json.status, 'canceled');
    await waitUntil(() => gate.state.aborted === 1, 'the engine sees the cancel');
    assert.equal(gate.state.started, 1, 'the canceled queued job never started');
    const again = await server.post(`/v1/jobs/${running.id}/cancel`, undefined);
    assert.equal(again.status, 200, 'canceling a canceled job is a no-op');
    assert.equal((await server.get('/v1/usage')).json.generations, usageBefore);

    gate.releaseAll();
    const ok = await server.post('/v1/images/generations', body);
    assert.equal(ok.status, 200);
    const job = (await server.get('/v1/jobs?limit=1')).json.data[0];
    const finished = await server.post(`/v1/jobs/${job.id}/cancel`, undefined);
    assert.equal(finished.status, 409);
    assert.equal(finished.json.error.code, 'job_finished');
    gate.close();
  });

  test('a synchronous caller waiting on a canceled job gets 409 job_canceled', async () => {
    const sync = server.post('/v1/images/generations', { ...body, seed: 77 });
    await gate.startedAtLeast(gate.state.started + 1);
    const job = (await server.get('/v1/jobs?limit=1&status=running')).json.data[0];
    await server.post(`/v1/jobs/${job.id}/cancel`, undefined);
    const res = await sync;
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'job_canceled');
  });
});


describe('retention', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ JOB_RETENTION: '1s' });
  });
  after(async () => {
    await server.close();
  });

  test('a finished job, its image and its idempotency record are deleted after JOB_RETENTION; the ledger keeps the charge', async () => {
    const res = await server.post('/v1/images/generations', body, { 'idempotency-key': 'keep-me' });
    assert.equal(res.status, 200);
    const url = res.json.data[0].url;
    assert.equal((await fetch(url)).status, 200);
    const job = (await server.get('/v1/jobs?limit=1')).json.data[0];
    // The sweeper runs every second here; look until it has, rather than sleeping a guessed time.
    await waitUntil(async () => (await server.get(`/v1/jobs/${job.id}`)).status === 404, 'the sweeper deletes the job', 50);
    // The row goes first (a crash between the two leaves a file the orphan sweep removes), then the image.
    await waitUntil(async () => (await fetch(url)).status === 404, 'the sweeper deletes the image', 20);
    assert.equal((await server.get('/v1/usage')).json.generations, 1);
    const again = await server.post('/v1/images/generations', { ...body, seed: 99 }, { 'idempotency-key': 'keep-me' });
    assert.equal(again.status, 200, 'the expired key is free again');
  });
});
