/**
 * Per-key limits over HTTP against the real server: requests per minute (a sliding window on an injected clock,
 * so nothing waits a minute), concurrent jobs (held by an engine that waits on a gate), daily and monthly credit
 * budgets (including the prices held by queued jobs). Each refusal: the status, Retry-After, a message naming
 * the limit, and nothing stored, fetched or charged.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Engine } from '../../src/domain/types.ts';
import { utcNextDayStart, utcNextMonthStart } from '../../src/limits/utc-periods.ts';
import { startTestServer, MODEL, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { waitForStatus } from '../helpers/jobs.ts';

const ADMIN_KEY = 'test-admin-key-gamma';
const body = { model: MODEL, prompt: 'a red house', enhance_prompt: false, image_size: 'square', response_format: 'b64_json' };
/** 0.0455 USD × 2,000,000 credits per USD. */
const PRICE = 91000;

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

/** Makes a key through the admin API; limits not given are "no limit" here, so KEY_DEFAULT_RPM does not apply. */
async function makeKey(server: TestServer, limits: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const res = await server.post(
    '/v1/admin/keys',
    { name: 'limits-test', requests_per_minute: null, max_concurrent_jobs: null, daily_credits: null, monthly_credits: null, ...limits },
    auth(ADMIN_KEY),
  );
  assert.equal(res.status, 201, JSON.stringify(res.json));
  return { id: res.json.id, key: res.json.key };
}

/** What a refused request must not have changed: the key's jobs, its ledger, its credits. */
async function footprint(server: TestServer, key: string) {
  const jobs = await server.get('/v1/jobs?limit=100', auth(key));
  const usage = await server.get('/v1/usage', auth(key));
  return { jobs: jobs.json.data.length, generations: usage.json.generations, credits: usage.json.credits_used };
}

describe('requests per minute: a sliding window', () => {
  let server: TestServer;
  let clockMs = Date.now();
  let imageHits = 0;
  let images: http.Server;
  before(async () => {
    images = http.createServer((_req, res) => {
      imageHits++;
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
    server = await startTestServer({ ADMIN_API_KEYS: ADMIN_KEY, KEY_DEFAULT_RPM: '2' }, { limitsClock: () => clockMs });
  });
  after(async () => {
    await server.close();
    await new Promise((resolve) => images.close(resolve));
  });

  test('an API_KEYS key gets KEY_DEFAULT_RPM; the third request in a minute is a 429 with Retry-After, and nothing is fetched, stored or charged', async () => {
    const t0 = clockMs;
    assert.equal((await server.post('/v1/images/generations', body)).status, 200);
    clockMs = t0 + 10_000;
    assert.equal((await server.post('/v1/images/generations', body)).status, 200);
    clockMs = t0 + 20_000;
    const before = await footprint(server, TEST_KEY);
    const imageUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}/reference.png`;
    const refused = await server.post('/v1/images/generations', { ...body, image_urls: [imageUrl] });
    assert.equal(refused.status, 429);
    assert.equal(refused.json.error.code, 'rate_limited');
    assert.equal(refused.json.error.type, 'rate_limit_error');
    const keyId = (await server.get('/v1/usage')).json.key_id;
    assert.match(refused.json.error.message, new RegExp(`^key ${keyId} is limited to 2 requests per minute`));
    // The first request leaves the window at t0 + 60 s: 40 s from now.
    assert.equal(refused.headers.get('retry-after'), '40');
    assert.deepEqual(await footprint(server, TEST_KEY), before);
    assert.equal(imageHits, 0, 'the reference image was never fetched');

    const usage = (await server.get('/v1/usage')).json;
    assert.deepEqual(usage.limits.requests_per_minute, { limit: 2, used: 2, remaining: 0, resets_in_s: 40 });

    // Sliding, not fixed: just past t0 + 60 s one request fits (the one from t0 left), the next does not.
    clockMs = t0 + 60_001;
    assert.equal((await server.post('/v1/images/generations', body)).status, 200);
    const again = await server.post('/v1/images/generations', body);
    assert.equal(again.status, 429);
    assert.equal(again.headers.get('retry-after'), '10', 'the request from t0 + 10 s leaves at t0 + 70 s');
  });

  test('a key whose own limit is "none" is not limited by the default; a refused request does not use up the window', async () => {
    const free = await makeKey(server, {});
    for (let i = 0; i < 4; i++) assert.equal((await server.post('/v1/images/generations', body, auth(free.key))).status, 200);

    const tight = await makeKey(server, { requests_per_minute: 1 });
    assert.equal((await server.post('/v1/images/generations', body, auth(tight.key))).status, 200);
    for (let i = 0; i < 3; i++) {
      const res = await server.post('/v1/images/generations', body, auth(tight.key));
      assert.equal(res.status, 429);
      assert.equal(res.json.error.message, `key ${tight.id} is limited to 1 requests per minute; retry in 60 s`);
    }
    clockMs += 60_000;
    assert.equal((await server.post('/v1/images/generations', body, auth(tight.key))).status, 200, 'the refusals were not counted');
  });
});

describe('credit budgets per UTC day and month', () => {
  let server: TestServer;
  const startMs = Date.now();
  let clockMs = startMs;
  before(async () => {
    server = await startTestServer({ ADMIN_API_KEYS: ADMIN_KEY }, { limitsClock: () => clockMs });
  });
  after(async () => {
    await server.close();
  });

  test('past the daily budget: 402 with the remaining balance and Retry-After to the next UTC day, nothing charged; the next day it is fresh', async () => {
    clockMs = startMs;
    const { id, key } = await makeKey(server, { daily_credits: 200_000 });
    for (let i = 0; i < 2; i++) assert.equal((await server.post('/v1/images/generations', body, auth(key))).status, 200);
    const before = await footprint(server, key);
    assert.deepEqual(before, { jobs: 2, generations: 2, credits: 2 * PRICE });

    const refused = await server.post('/v1/images/generations', body, auth(key));
    assert.equal(refused.status, 402);
    assert.equal(refused.json.error.code, 'budget_exceeded');
    assert.equal(refused.json.error.type, 'insufficient_quota');
    const resetMs = utcNextDayStart(clockMs);
    assert.equal(
      refused.json.error.message,
      `key ${id} has 18000 of its 200000 daily credits left; this request costs 91000 credits. The daily budget resets at ${new Date(resetMs).toISOString()}`,
    );
    assert.equal(refused.headers.get('retry-after'), String(Math.ceil((resetMs - clockMs) / 1000)));
    assert.deepEqual(await footprint(server, key), before, 'nothing stored or charged');

    const usage = (await server.get('/v1/usage', auth(key))).json;
    assert.deepEqual(usage.limits.daily_credits, { limit: 200_000, used: 182_000, held: 0, remaining: 18_000, resets_at: new Date(resetMs).toISOString() });
    assert.equal(usage.limits.monthly_credits.limit, null);
    assert.equal(usage.limits.monthly_credits.remaining, null);

    // Two days on (past any midnight the real clock may cross while the test runs): yesterday's spending is gone.
    clockMs = startMs + 2 * 86_400_000;
    assert.equal((await server.post('/v1/images/generations', body, auth(key))).status, 200);
  });

  test('past the monthly budget: 402 naming the monthly budget; the next month it is fresh', async () => {
    clockMs = startMs;
    const { id, key } = await makeKey(server, { monthly_credits: 100_000, daily_credits: 1_000_000 });
    assert.equal((await server.post('/v1/images/generations', body, auth(key))).status, 200);
    const refused = await server.post('/v1/images/generations', body, auth(key));
    assert.equal(refused.status, 402);
    assert.match(refused.json.error.message, new RegExp(`^key ${id} has 9000 of its 100000 monthly credits left; this request costs 91000 credits\\. The monthly budget resets at `));
    assert.equal(refused.headers.get('retry-after'), String(Math.ceil((utcNextMonthStart(clockMs) - clockMs) / 1000)));
    assert.deepEqual(await footprint(server, key), { jobs: 1, generations: 1, credits: PRICE });

    clockMs = utcNextMonthStart(startMs + 86_400_000);
    assert.equal((await server.post('/v1/images/generations', body, auth(key))).status, 200);
  });

  test('a budget of 0 credits refuses every priced request; raising it over the admin API lets the next one through', async () => {
    clockMs = startMs;
    const { id, key } = await makeKey(server, { daily_credits: 0 });
    const refused = await server.post('/v1/images/generations', body, auth(key));
    assert.equal(refused.status, 402);
    assert.match(refused.json.error.message, /has 0 of its 0 daily credits left/);
    const patched = await fetch(`${server.url}/v1/admin/keys/${id}`, {
      method: 'PATCH',
      headers: { ...auth(ADMIN_KEY), 'content-type': 'application/json' },
      body: JSON.stringify({ daily_credits: PRICE }),
    });
    assert.equal(patched.status, 200);
    assert.equal((await server.post('/v1/images/generations', body, auth(key))).status, 200);
    assert.equal((await server.post('/v1/images/generations', body, auth(key))).status, 402);
  });
});

/** Holds every generation until `open()`. */
function gate() {
  let isOpen = false;
  const waiting: Array<() => void> = [];
  const started: Array<() => void> = [];
  let count = 0;
  return {
    wrap: (engine: Engine): Engine => ({
      id: engine.id,
      kind: engine.kind,
      description: engine.description,
      load: () => engine.load(),
      capabilities: () => engine.capabilities(),
      health: () => engine.health(),
      close: () => engine.close(),
      async generate(request, signal, onProgress) {
        count++;
        for (const f of started.splice(0)) f();
        if (!isOpen) {
          await new Promise<void>((resolve, reject) => {
            waiting.push(resolve);
            signal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), { once: true });
          });
        }
        return engine.generate(request, signal, onProgress);
      },
    }),
    startedAtLeast: (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (count >= n ? resolve() : started.push(check));
        check();
      }),
    open() {
      isOpen = true;
      for (const f of waiting.splice(0)) f();
    },
    close() {
      isOpen = false;
    },
  };
}

describe('concurrent jobs and held credits (an engine held on a gate)', () => {
  let server: TestServer;
  const held = gate();
  before(async () => {
    server = await startTestServer({ ADMIN_API_KEYS: ADMIN_KEY, ENGINE_CONCURRENCY: '1', ENGINE_MAX_QUEUE: '16' }, { wrapEngine: held.wrap });
  });
  after(async () => {
    held.open();
    await server.close();
  });
  const submitAsync = (key: string) => server.post('/v1/images/generations', body, { ...auth(key), prefer: 'respond-async' });

  test('queued and running jobs both count: the third is a 429 naming the limit, with Retry-After, and stores nothing', async () => {
    held.close();
    const { id, key } = await makeKey(server, { max_concurrent_jobs: 2 });
    const running = await submitAsync(key);
    const queued = await submitAsync(key);
    assert.equal(running.status, 202);
    assert.equal(queued.status, 202);
    await held.startedAtLeast(1);

    const before = await footprint(server, key);
    for (const res of [await server.post('/v1/images/generations', body, auth(key)), await submitAsync(key)]) {
      assert.equal(res.status, 429);
      assert.equal(res.json.error.code, 'too_many_concurrent_jobs');
      assert.equal(res.json.error.message, `key ${id} is limited to 2 concurrent jobs and has 2 queued or running; retry when one of them ends`);
      assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    }
    assert.deepEqual(await footprint(server, key), before);
    assert.deepEqual((await server.get('/v1/usage', auth(key))).json.limits.max_concurrent_jobs, { limit: 2, in_use: 2, remaining: 0 });

    held.open();
    await waitForStatus(server, running.json.id, 'succeeded', key);
    await waitForStatus(server, queued.json.id, 'succeeded', key);
    assert.equal((await server.post('/v1/images/generations', body, auth(key))).status, 200, 'slots free again');
  });

  test('concurrent submits cannot both take the last slot', async () => {
    held.close();
    const { key } = await makeKey(server, { max_concurrent_jobs: 1 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => submitAsync(key)));
    const statuses = answers.map((r) => r.status).sort();
    assert.deepEqual(statuses, [202, 429, 429, 429, 429, 429]);
    const accepted = answers.find((r) => r.status === 202)!;
    held.open();
    await waitForStatus(server, accepted.json.id, 'succeeded', key);
  });

  test('a queued job holds its price against the budget until it ends; canceling it gives it back', async () => {
    held.close();
    const { id, key } = await makeKey(server, { daily_credits: 100_000 });
    const first = await submitAsync(key);
    assert.equal(first.status, 202);
    const usage = (await server.get('/v1/usage', auth(key))).json;
    assert.equal(usage.limits.daily_credits.held, PRICE);
    assert.equal(usage.limits.daily_credits.remaining, 100_000 - PRICE);

    const before = await footprint(server, key);
    const refused = await submitAsync(key);
    assert.equal(refused.status, 402);
    assert.match(refused.json.error.message, new RegExp(`^key ${id} has 9000 of its 100000 daily credits left \\(91000 more are held by its queued or running jobs\\); this request costs 91000 credits`));
    assert.deepEqual(await footprint(server, key), before);

    assert.equal((await server.post(`/v1/jobs/${first.json.id}/cancel`, undefined, auth(key))).status, 200);
    await waitForStatus(server, first.json.id, 'canceled', key);
    const again = await submitAsync(key);
    assert.equal(again.status, 202, 'a canceled job is never charged and holds nothing');
    held.open();
    await waitForStatus(server, again.json.id, 'succeeded', key);
    assert.equal((await server.get('/v1/usage', auth(key))).json.limits.daily_credits.remaining, 100_000 - PRICE);
  });
});
