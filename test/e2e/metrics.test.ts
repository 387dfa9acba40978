/**
 * GET /metrics over HTTP: the numbers move as requests are made (counter deltas, histogram counts), the
 * scrape is protected as documented (METRICS_TOKEN on the API port, or the METRICS_PORT listener), and
 * no label carries a raw id or URL.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ApiError } from '../../src/domain/errors.ts';
import type { Engine } from '../../src/domain/types.ts';
import { startTestServer, MODEL, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { startFakeChatServer, type FakeChatServer } from '../fakes/fake-chat-server.ts';
import { waitUntil } from '../helpers/wait-until.ts';

const TOKEN = 'metrics-token-1';
const body = { model: MODEL, prompt: 'a red house', image_size: 'square', enhance_prompt: false, response_format: 'b64_json' };

/** One sample line of the text exposition: `name{a="b",c="d"} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels` (0 when none: a counter not yet touched). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string, token = TOKEN): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, samples: parseExposition(text) };
}

/**
 * The model's engine, except for two prompts: "fail please" fails as a backend error, and "hold please"
 * draws nothing until its job is aborted (a cancel).
 */
function scriptedFaults(engine: Engine): Engine {
  return Object.assign(Object.create(engine) as Engine, {
    generate: async (request: Parameters<Engine['generate']>[0], signal: AbortSignal, onProgress?: Parameters<Engine['generate']>[2]) => {
      if (request.prompt === 'fail please') throw new ApiError('backend_error', 'scripted failure');
      if (request.prompt === 'hold please') {
        await new Promise((_resolve, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      }
      return engine.generate(request, signal, onProgress);
    },
  });
}

describe('metrics on the API port, behind METRICS_TOKEN', () => {
  let server: TestServer;
  let chat: FakeChatServer;
  before(async () => {
    // An LLM that always answers 500: enhance_prompt then falls back, and says why.
    chat = await startFakeChatServer({ behaviour: { kind: 'error', status: 500, message: 'scripted outage' } });
    server = await startTestServer(
      { METRICS_TOKEN: TOKEN, PROMPT_ENHANCER_URL: chat.url, PROMPT_ENHANCER_MODEL: 'qwen-plus', PROMPT_ENHANCER_TIMEOUT_MS: '5000' },
      { wrapEngine: scriptedFaults },
    );
  });
  after(async () => {
    await server.close();
    await chat.close();
  });

  test('only the token opens /metrics: none, an API key or a wrong token is a 401', async () => {
    for (const authorization of [undefined, `Bearer ${TEST_KEY}`, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN]) {
      const res = await fetch(`${server.url}/metrics`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401, String(authorization));
      const json = (await res.json()) as any;
      assert.equal(json.error.code, 'invalid_api_key');
      assert.equal(json.error.param, 'authorization');
    }
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: `bearer ${TOKEN}` } })).status, 200);
  });

  test('a success, a 400 and a 401 move the request, generation, engine, queue and charge figures', async () => {
    const before = (await scrape(server.url)).samples;
    const route = '/v1/images/generations';
    const ok = await server.post(route, { ...body, watermark: true });
    assert.equal(ok.status, 200);
    const bad = await server.post(route, { ...body, image_size: 'huge' });
    assert.equal(bad.status, 400);
    const anonymous = await server.post(route, body, { authorization: '' });
    assert.equal(anonymous.status, 401);
    const after = (await scrape(server.url)).samples;
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);

    for (const status of ['200', '400', '401']) {
      assert.equal(delta('qis_http_requests_total', { method: 'POST', route, status }), 1, `POST ${status}`);
    }
    assert.equal(delta('qis_http_request_duration_seconds_count', { method: 'POST', route, status_class: '2xx' }), 1);
    assert.equal(delta('qis_http_request_duration_seconds_count', { method: 'POST', route, status_class: '4xx' }), 2);
    // Only the valid request made a job.
    assert.equal(delta('qis_generations_total', { model: MODEL }), 1);
    assert.equal(delta('qis_generations_total', { model: MODEL, outcome: 'succeeded', code: 'none' }), 1);
    assert.equal(delta('qis_engine_duration_seconds_count', { model: MODEL }), 1);
    assert.ok(delta('qis_engine_duration_seconds_sum', { model: MODEL }) > 0);
    assert.equal(delta('qis_queue_wait_seconds_count', { model: MODEL }), 1);
    assert.equal(delta('qis_watermark_embed_duration_seconds_count'), 1);
    assert.equal(delta('qis_credits_charged_total', { model: MODEL }), ok.json.meta.usage.credits_used);
    assert.ok(Math.abs(delta('qis_usd_charged_total', { model: MODEL }) - ok.json.meta.usage.usd_spent) < 1e-9);
  });

  test('a failed and a canceled job are counted by outcome and code, and charge nothing', async () => {
    const before = (await scrape(server.url)).samples;
    const failed = await server.post('/v1/images/generations', { ...body, prompt: 'fail please' });
    assert.equal(failed.status, 502);
    assert.equal(failed.json.error.code, 'backend_error');

    const held = await server.post('/v1/images/generations', { ...body, prompt: 'hold please' }, { prefer: 'respond-async' });
    assert.equal(held.status, 202);
    await waitUntil(async () => (await server.get(`/v1/jobs/${held.json.id}`)).json.status === 'running', 'the held job runs');
    // While it runs, the gauges read at scrape time see it.
    const during = (await scrape(server.url)).samples;
    assert.equal(valueOf(during, 'qis_jobs_running', { model: MODEL }), 1);
    assert.equal(valueOf(during, 'qis_backend_in_flight', { model: MODEL }), 0, 'the scripted engine holds it before the router');
    assert.equal((await server.post(`/v1/jobs/${held.json.id}/cancel`, undefined)).status, 200);

    const isCounted = async () =>
      valueOf((await scrape(server.url)).samples, 'qis_generations_total', { outcome: 'canceled' }) > valueOf(before, 'qis_generations_total', { outcome: 'canceled' });
    await waitUntil(isCounted, 'the canceled job is counted once its engine has stopped');
    const after = (await scrape(server.url)).samples;
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);
    assert.equal(delta('qis_generations_total', { model: MODEL, backend: 'none', outcome: 'failed', code: 'backend_error' }), 1);
    assert.equal(delta('qis_generations_total', { model: MODEL, backend: 'none', outcome: 'canceled', code: 'none' }), 1);
    assert.equal(delta('qis_generations_total', { outcome: 'succeeded' }), 0);
    assert.equal(delta('qis_credits_charged_total'), 0);
    assert.equal(delta('qis_jobs_running', { model: MODEL }), 0);
  });

  test('enhance_prompt with an LLM that fails: the outcome and the fallback reason are counted', async () => {
    const before = (await scrape(server.url)).samples;
    const res = await server.post('/v1/images/generations', { ...body, enhance_prompt: true, prompt: 'a green tree' });
    assert.equal(res.status, 200);
    const after = (await scrape(server.url)).samples;
    assert.equal(valueOf(after, 'qis_prompt_enhancements_total', { source: 'offline', outcome: 'ok' }) - valueOf(before, 'qis_prompt_enhancements_total', { source: 'offline', outcome: 'ok' }), 1);
    const fallbacks = after.filter((s) => s.name === 'qis_prompt_enhancer_fallbacks_total');
    assert.equal(fallbacks.reduce((n, s) => n + s.value, 0) - valueOf(before, 'qis_prompt_enhancer_fallbacks_total'), 1);
    assert.ok(fallbacks.every((s) => /^[a-z0-9_]+$/.test(s.labels.reason ?? '')), JSON.stringify(fallbacks));
  });

  test('watermark detection is timed', async () => {
    const made = await server.post('/v1/images/generations', { ...body, watermark: true, seed: 5 });
    assert.equal(made.status, 200);
    const before = valueOf((await scrape(server.url)).samples, 'qis_watermark_detect_duration_seconds_count');
    const res = await server.post('/v1/watermark/detect', { image_url: `data:image/png;base64,${made.json.data[0].b64_json}` });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(valueOf((await scrape(server.url)).samples, 'qis_watermark_detect_duration_seconds_count') - before, 1);
  });

  test('labels are route patterns and configured names: no job id, request id, file name or unknown URL', async () => {
    const job = (await server.post('/v1/images/generations', { ...body, response_format: 'url' }, { 'x-request-id': 'req-metrics-label-check' })).json;
    const fileUrl = new URL(job.data[0].url);
    const download = await fetch(fileUrl);
    assert.equal(download.status, 200);
    // Read to the end: a streamed download is counted when its response finishes.
    await download.arrayBuffer();
    const listed = (await server.get('/v1/jobs?limit=1')).json.data[0];
    assert.equal((await server.get(`/v1/jobs/${listed.id}`)).status, 200);
    const stray = `/v1/no-such-${crypto.randomUUID()}`;
    assert.equal((await server.get(stray)).status, 404);

    const { text, samples } = await scrape(server.url);
    for (const raw of [listed.id, 'req-metrics-label-check', fileUrl.pathname, fileUrl.pathname.split('/').pop()!, stray, TEST_KEY, TOKEN]) {
      assert.ok(!text.includes(raw), `${raw} appears in the metrics`);
    }
    assert.equal(valueOf(samples, 'qis_http_requests_total', { method: 'GET', route: '/v1/jobs/:id', status: '200' }) >= 1, true);
    assert.equal(valueOf(samples, 'qis_http_requests_total', { method: 'GET', route: '/files/*', status: '200' }) >= 1, true);
    assert.equal(valueOf(samples, 'qis_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }) >= 1, true);
    const routes = new Set(samples.filter((s) => s.name === 'qis_http_requests_total').map((s) => s.labels.route));
    for (const r of routes) assert.ok(r === 'unmatched' || /^\/[a-z0-9/_:*.-]*$/.test(r!), `route label ${r}`);
  });

  test('backend state and process metrics are there', async () => {
    const { samples } = await scrape(server.url);
    assert.equal(valueOf(samples, 'qis_backend_up', { model: MODEL, backend: 'builtin' }), 1);
    assert.equal(valueOf(samples, 'qis_backend_circuit_state', { model: MODEL, backend: 'builtin', state: 'closed' }), 1);
    assert.equal(valueOf(samples, 'qis_backend_circuit_state', { model: MODEL, backend: 'builtin', state: 'open' }), 0);
    assert.equal(valueOf(samples, 'qis_backend_concurrency', { model: MODEL, backend: 'builtin' }), 1);
    assert.equal(valueOf(samples, 'qis_queue_depth', { model: MODEL }), 0);
    assert.ok(valueOf(samples, 'process_resident_memory_bytes') > 0);
    assert.ok(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds'));
  });
});

describe('metrics on a separate port (METRICS_PORT), no token', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ METRICS_PORT: '0' });
  });
  after(async () => {
    await server.close();
  });

  test('the metrics port needs no auth and serves only /metrics; the API port serves none', async () => {
    assert.ok(server.metricsUrl);
    assert.notEqual(server.metricsUrl, server.url);
    const res = await fetch(`${server.metricsUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^# HELP /m);
    assert.equal((await fetch(`${server.metricsUrl}/v1/models`)).status, 404);
    assert.equal((await fetch(`${server.metricsUrl}/metrics`, { method: 'POST' })).status, 405);
    assert.equal((await server.get('/metrics')).status, 404, 'without METRICS_TOKEN the API port has no /metrics');
  });

  test('each server counts only its own requests', async () => {
    const before = parseExposition(await (await fetch(`${server.metricsUrl}/metrics`)).text());
    assert.equal((await server.get('/v1/models')).status, 200);
    const after = parseExposition(await (await fetch(`${server.metricsUrl}/metrics`)).text());
    const labels = { method: 'GET', route: '/v1/models', status: '200' };
    assert.equal(valueOf(after, 'qis_http_requests_total', labels) - valueOf(before, 'qis_http_requests_total', labels), 1);
    // The other describe's server ran generations in this process; none of them shows here.
    assert.equal(valueOf(after, 'qis_generations_total'), 0);
  });
});

describe('metrics with both a token and a separate port', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ METRICS_PORT: '0', METRICS_TOKEN: TOKEN });
  });
  after(async () => {
    await server.close();
  });

  test('the token holds on both listeners', async () => {
    assert.equal((await fetch(`${server.metricsUrl}/metrics`)).status, 401);
    assert.equal((await fetch(`${server.metricsUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    await scrape(server.url);
  });
});
