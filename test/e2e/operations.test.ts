/** Health, backpressure, time limits, client disconnects, draining on SIGTERM, restarts, docs. */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import sharp from 'sharp';
import type { Engine } from '../../src/domain/types.ts';
import { startTestServer, MODEL, REPO_ROOT, TINY_MODEL_DIR, TEST_KEY, type TestServer } from '../helpers/server.ts';
import { waitUntil } from '../helpers/wait-until.ts';

/** Wraps an engine so each generation first waits `delayMs` (abortable), and records aborts. */
function slowEngine(delayMs: number, seen: { aborted: number; started: number }) {
  return (engine: Engine): Engine => ({
    id: engine.id,
    kind: engine.kind,
    description: engine.description,
    load: () => engine.load(),
    capabilities: () => engine.capabilities(),
    health: () => engine.health(),
    close: () => engine.close(),
    async generate(request, signal, onProgress) {
      seen.started++;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, delayMs);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          seen.aborted++;
          reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        }, { once: true });
      });
      return engine.generate(request, signal, onProgress);
    },
  });
}

const body = { model: MODEL, prompt: 'a house', response_format: 'b64_json', enhance_prompt: false, image_size: 'square' };

describe('health, models, docs', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close();
  });
  test('GET /healthz is 200 once loaded', async () => {
    const res = await fetch(`${server.url}/healthz`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, 'ok');
    assert.equal(body.role, 'all');
    for (const name of ['database', 'queue', 'blobs']) assert.equal(body.checks[name]?.ok, true, name);
    assert.equal(body.checks.engines['alibaba/qwen-image-2-0']?.ok, true);
  });
  test('GET /v1/models lists the public model with the engine behind it', async () => {
    const res = await server.get('/v1/models');
    assert.equal(res.status, 200);
    assert.equal(res.json.object, 'list');
    const m = res.json.data.find((d: any) => d.id === MODEL);
    assert.ok(m, 'model listed');
    assert.equal(m.healthy, true);
    assert.match(JSON.stringify(m), /builtin/);
    assert.match(JSON.stringify(m), /GPU backend/);
  });
  test('GET /openapi.json comes from the same schema that validates', async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as any;
    const req = doc.components.schemas.GenerationRequest;
    assert.equal(req.properties.prompt.maxLength, 2000);
    assert.equal(req.properties.seed.maximum, 2147483647);
    assert.deepEqual(req.properties.image_size.anyOf[1].enum, ['square_hd', 'square', 'portrait_4_3', 'portrait_16_9', 'landscape_4_3', 'landscape_16_9']);
    assert.equal(req.properties.image_size.anyOf[0].properties.width.multipleOf, 32);
    assert.ok(doc.paths['/v1/images/generations'].post);
    const page = await (await fetch(`${server.url}/docs`)).text();
    assert.match(page, /openapi\.json/);
  });
  test('a caller x-request-id is echoed; otherwise one is made', async () => {
    const a = await server.post('/v1/images/generations', { model: 'nope' }, { 'x-request-id': 'abc-123' });
    assert.equal(a.headers.get('x-request-id'), 'abc-123');
    const b = await server.post('/v1/images/generations', { model: 'nope' }, { 'x-request-id': 'bad id with spaces' });
    assert.match(b.headers.get('x-request-id')!, /^req_[0-9a-f-]{36}$/);
  });
});

describe('backpressure and time limits', () => {
  const seen = { aborted: 0, started: 0 };
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ ENGINE_CONCURRENCY: '1', ENGINE_MAX_QUEUE: '1', REQUEST_TIMEOUT_MS: '4000' }, { wrapEngine: slowEngine(700, seen) });
  });
  after(async () => {
    await server.close();
  });
  test('a full queue answers 503 with Retry-After, and charges nothing', async () => {
    const usageBefore = (await server.get('/v1/usage')).json.generations;
    const results = await Promise.all([0, 1, 2].map(() => server.post('/v1/images/generations', body)));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 503]);
    const busy = results.find((r) => r.status === 503)!;
    assert.equal(busy.json.error.code, 'queue_full');
    assert.ok(Number(busy.headers.get('retry-after')) >= 1);
    assert.equal((await server.get('/v1/usage')).json.generations - usageBefore, 2);
  });
  test('a client that disconnects mid-generation aborts the engine and is not charged', async () => {
    const usageBefore = (await server.get('/v1/usage')).json.generations;
    const abortedBefore = seen.aborted;
    const startedBefore = seen.started;
    await new Promise<void>((resolve) => {
      const req = http.request(`${server.url}/v1/images/generations`, { method: 'POST', headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' } });
      req.on('error', () => resolve());
      req.end(JSON.stringify(body));
      const poll = setInterval(() => {
        if (seen.started > startedBefore) {
          clearInterval(poll);
          req.destroy();
          resolve();
        }
      }, 10);
    });
    await waitUntil(() => seen.aborted > abortedBefore, 'the engine sees the abort');
    assert.equal(seen.aborted - abortedBefore, 1, 'engine saw the abort');
    // Charged or not is settled once the job is: a canceled job can no longer write a ledger row.
    let job: { status: string } | undefined;
    await waitUntil(async () => {
      job = (await server.get('/v1/jobs?limit=1')).json.data[0];
      return job?.status === 'canceled';
    }, 'the abandoned job is canceled');
    assert.equal((await server.get('/v1/usage')).json.generations, usageBefore);
  });
});

describe('time limit', () => {
  const seen = { aborted: 0, started: 0 };
  let server: TestServer;
  before(async () => {
    // The engine would take 10 minutes: only the deadline's abort can end the request.
    server = await startTestServer({ REQUEST_TIMEOUT_MS: '600' }, { wrapEngine: slowEngine(600_000, seen) });
  });
  after(async () => {
    await server.close();
  });
  test('a request past REQUEST_TIMEOUT_MS is a 504, the engine is aborted, nothing is charged', async () => {
    const res = await server.post('/v1/images/generations', body);
    assert.equal(res.status, 504);
    assert.equal(res.json.error.code, 'generation_timeout');
    assert.match(res.json.error.message, /within 600 ms/);
    assert.equal(seen.aborted, 1);
    assert.equal((await server.get('/v1/usage')).json.generations, 0);
  });
});

describe('process lifecycle', () => {
  test('npm start style process: SIGTERM drains the in-flight request, then exits 0; a restart gives the same pixels', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-proc-'));
    const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, API_KEYS: TEST_KEY, BUILTIN_MODEL_DIR: TINY_MODEL_DIR, LOG_LEVEL: 'info' };
    // As scripts/start.sh runs it: the server in the spawned process itself.
    const start = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/main.ts')], { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      // Listened for from the start, so an exit that comes while the test is busy elsewhere is not missed.
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const ready = new Promise<string>((resolve, reject) => {
        const onData = (d: Buffer) => {
          out += d;
          const url = /"msg":"server ready"/.test(out) ? /"url":"(http:[^"]+)"/.exec(out)?.[1] : undefined;
          if (url) resolve(url);
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        void exited.then((code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      return { child, ready, exited, log: () => out };
    };
    const post = (url: string) =>
      fetch(`${url}/v1/images/generations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...body, seed: 4242, image_size: 'square_hd' }),
      });
    const first = start();
    const inFlight = post(await first.ready);
    // SIGTERM only once the server has the request: the drain is about requests in flight.
    await waitUntil(() => first.log().includes('incoming request'), 'the server logs the request');
    first.child.kill('SIGTERM');
    const res = await inFlight;
    assert.equal(res.status, 200, 'in-flight request completed during drain');
    const a = (await res.json()) as any;
    assert.equal(await first.exited, 0, first.log().slice(-1500));
    const lines = first.log().split('\n').filter((l) => l.startsWith('{'));
    assert.ok(lines.length > 0);
    const generated = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'image generated');
    assert.ok(generated?.requestId, 'structured JSON log lines carry the request id');

    const second = start();
    const b = (await (await post(await second.ready)).json()) as any;
    second.child.kill('SIGTERM');
    const pa = await sharp(Buffer.from(a.data[0].b64_json, 'base64')).raw().toBuffer();
    const pb = await sharp(Buffer.from(b.data[0].b64_json, 'base64')).raw().toBuffer();
    assert.ok(pa.equals(pb), 'same pixels across restarts');
    assert.equal(await second.exited, 0, second.log().slice(-1500));
  });
});
