/**
 * ROLE=api and ROLE=worker as two real processes (`node --import tsx src/main.ts`) over ONE data
 * directory: the embedded SQLite database and the filesystem images.
 *
 * What this can honestly show without Redis/Postgres/S3: the api process validates, stores and
 * enqueues and runs nothing; the worker takes what the api enqueued, runs it and writes the result;
 * the api serves the result and the image. The embedded store is not built for two processes writing
 * at once (its read-then-write transactions can meet SQLITE_BUSY under concurrent writers), so the
 * steps are sequenced: the jobs are submitted before the worker starts, and while the worker writes,
 * the api only reads. Concurrent writers, SSE and cancel across processes need the shared adapters
 * (docs/deploy.md); the runner's side of those is covered by src/jobs/job-runner-shared.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MODEL, TEST_KEY } from '../helpers/server.ts';
import { waitUntil } from '../helpers/wait-until.ts';
import { killSpawnedServers, serverProcessEnv as baseEnv, spawnServer, startServerProcess } from '../helpers/server-process.ts';

after(killSpawnedServers);

const auth = { authorization: `Bearer ${TEST_KEY}` };
const getJson = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { headers });
  return { status: res.status, json: (await res.json()) as any };
};

test('a ROLE that is not api, worker or all stops the start with the accepted values', async () => {
  const proc = spawnServer(baseEnv(fs.mkdtempSync(path.join(os.tmpdir(), 'qis-roles-')), { ROLE: 'gpu' }));
  const { code } = await proc.exited;
  assert.equal(code, 1);
  assert.match(proc.log(), /ROLE must be one of api, worker, all, got "gpu"/);
});

test('api enqueues and runs nothing; a worker over the same data dir runs the jobs; the api serves their results', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-roles-'));
  const api = await startServerProcess(baseEnv(dataDir, { ROLE: 'api' }));

  const apiHealth = await getJson(`${api.url}/healthz`);
  assert.equal(apiHealth.status, 200);
  assert.equal(apiHealth.json.status, 'ok');
  assert.equal(apiHealth.json.role, 'api');
  for (const name of ['database', 'queue', 'blobs']) assert.equal(apiHealth.json.checks[name]?.ok, true, name);
  assert.equal(apiHealth.json.checks.engines, undefined, 'an api process loads no engine');
  assert.equal((await fetch(`${api.url}/readyz`)).status, 200);
  const models = await getJson(`${api.url}/v1/models`, auth);
  assert.equal(models.json.data[0].engine.kind, 'worker-pool');
  assert.match(api.log(), /"role":"api"/);

  const ids: string[] = [];
  for (const prompt of ['a red house', 'a green tree']) {
    const res = await fetch(`${api.url}/v1/images/generations`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: MODEL, prompt, image_size: 'square', enhance_prompt: false }),
    });
    assert.equal(res.status, 202);
    ids.push(((await res.json()) as { id: string }).id);
  }
  for (const id of ids) assert.equal((await getJson(`${api.url}/v1/jobs/${id}`, auth)).json.status, 'queued');

  // The worker writes image URLs that name the api side.
  const worker = await startServerProcess(baseEnv(dataDir, { ROLE: 'worker', PUBLIC_URL: api.url, WORKER_POLL_MS: '50' }));
  const workerHealth = await getJson(`${worker.url}/healthz`);
  assert.equal(workerHealth.status, 200);
  assert.equal(workerHealth.json.role, 'worker');
  assert.equal(workerHealth.json.checks.database?.ok, true);
  assert.equal(workerHealth.json.checks.engines?.[MODEL]?.ok, true);
  assert.equal((await fetch(`${worker.url}/readyz`)).status, 200);
  const noApi = await fetch(`${worker.url}/v1/models`, { headers: auth });
  assert.equal(noApi.status, 404, 'a worker serves no public API');
  assert.equal(((await noApi.json()) as any).error.code, 'not_found');

  for (const id of ids) {
    await waitUntil(async () => (await getJson(`${api.url}/v1/jobs/${id}`, auth)).json.status === 'succeeded', `job ${id} to succeed on the worker`);
    const job = (await getJson(`${api.url}/v1/jobs/${id}`, auth)).json;
    const url: string = job.result.data[0].url;
    assert.ok(url.startsWith(`${api.url}/files/`), url);
    const image = await fetch(url);
    assert.equal(image.status, 200);
    assert.equal(image.headers.get('content-type'), 'image/png');
    assert.ok((await image.arrayBuffer()).byteLength > 0);
  }
  assert.match(worker.log(), /"msg":"image generated"/);
  assert.doesNotMatch(api.log(), /"msg":"image generated"/, 'the api process drew nothing');

  worker.child.kill('SIGTERM');
  api.child.kill('SIGTERM');
  assert.equal((await worker.exited).code, 0, worker.log().slice(-2000));
  assert.equal((await api.exited).code, 0, api.log().slice(-2000));
  const db = new Database(path.join(dataDir, 'server.sqlite'), { readonly: true });
  try {
    for (const id of ids) assert.equal((db.prepare('SELECT COUNT(*) AS n FROM usage_ledger WHERE job_id = ?').get(id) as { n: number }).n, 1, `${id} charged once`);
  } finally {
    db.close();
  }
});

test('ROLE=worker without PUBLIC_URL is refused: its image URLs must name the api side', async () => {
  const proc = spawnServer(baseEnv(fs.mkdtempSync(path.join(os.tmpdir(), 'qis-roles-')), { ROLE: 'worker' }));
  assert.equal((await proc.exited).code, 1);
  assert.match(proc.log(), /ROLE=worker needs PUBLIC_URL/);
});
