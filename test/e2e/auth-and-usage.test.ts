/** Bearer auth, CLI-managed keys stored as hashes, and the usage ledger in SQLite. */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, MODEL, REPO_ROOT, TEST_KEY, OTHER_KEY, type TestServer } from '../helpers/server.ts';

const run = promisify(execFile);
let server: TestServer;
before(async () => {
  server = await startTestServer({ PRICES_USD: '{"alibaba/qwen-image-2-0": 0.0455}' });
});
after(async () => {
  await server.close();
});

const cli = (...args: string[]) =>
  run(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'src/cli/main.ts'), ...args], { env: { ...process.env, DATA_DIR: server.dataDir }, cwd: REPO_ROOT });
const generate = (key: string, extra: object = {}) =>
  server.post('/v1/images/generations', { model: MODEL, prompt: 'a sun', response_format: 'b64_json', enhance_prompt: false, image_size: 'square', ...extra }, { authorization: `Bearer ${key}` });

describe('authentication', () => {
  const rejected: Array<[string, Record<string, string>, string]> = [
    ['no Authorization header', { authorization: '' }, 'missing_api_key'],
    ['unknown key', { authorization: 'Bearer nope' }, 'invalid_api_key'],
    ['Basic scheme', { authorization: `Basic ${TEST_KEY}` }, 'invalid_api_key'],
    ['key without scheme', { authorization: TEST_KEY }, 'invalid_api_key'],
    ['Bearer with no key', { authorization: 'Bearer ' }, 'invalid_api_key'],
    ['key with a trailing word', { authorization: `Bearer ${TEST_KEY} extra` }, 'invalid_api_key'],
  ];
  for (const [name, headers, code] of rejected) {
    test(`${name} → 401 ${code}`, async () => {
      const res = await fetch(`${server.url}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(headers.authorization ? headers : {}) },
        body: JSON.stringify({ model: MODEL, prompt: 'x' }),
      });
      assert.equal(res.status, 401);
      const body = (await res.json()) as any;
      assert.equal(body.error.code, code);
      assert.equal(body.error.type, 'authentication_error');
      assert.equal(body.error.param, 'authorization');
    });
  }
  test('the scheme is case-insensitive', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      const res = await generate(TEST_KEY, {});
      assert.equal(res.status, 200);
      const r2 = await server.get('/v1/usage', { authorization: `${scheme} ${TEST_KEY}` });
      assert.equal(r2.status, 200, scheme);
    }
  });
  test('models and usage need a key too; health, docs and files do not', async () => {
    assert.equal((await server.get('/v1/models', { authorization: '' })).status, 401);
    assert.equal((await server.get('/v1/usage', { authorization: 'Bearer bad' })).status, 401);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.url}/openapi.json`)).status, 200);
  });
});

describe('CLI keys', () => {
  test('create → works; list shows it without the secret; revoke → 401; the secret is not in the database', async () => {
    const created = JSON.parse((await cli('keys', 'create', '--name', 'ci')).stdout) as { id: string; key: string };
    assert.match(created.key, /^qis_[A-Za-z0-9_-]{32}$/);
    assert.equal((await generate(created.key)).status, 200);
    const list = JSON.parse((await cli('keys', 'list')).stdout) as Array<{ id: string; prefix: string; source: string }>;
    const entry = list.find((k) => k.id === created.id)!;
    assert.equal(entry.source, 'cli');
    assert.ok(!JSON.stringify(list).includes(created.key));
    const raw = Buffer.concat(
      ['server.sqlite', 'server.sqlite-wal'].filter((f) => fs.existsSync(path.join(server.dataDir, f))).map((f) => fs.readFileSync(path.join(server.dataDir, f))),
    );
    assert.ok(!raw.includes(Buffer.from(created.key)), 'CLI key stored only as a hash');
    assert.ok(!raw.includes(Buffer.from(TEST_KEY)), 'env key stored only as a hash');
    await cli('keys', 'revoke', created.id);
    const res = await generate(created.key);
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'invalid_api_key');
  });
});

describe('usage ledger', () => {
  test('each success writes one row with key, request id, model, size, seed, credits, USD, time', async () => {
    const sentAtMs = Date.now();
    const res = await fetch(`${server.url}/v1/images/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OTHER_KEY}`, 'content-type': 'application/json', 'x-request-id': 'ledger-check-1' },
      body: JSON.stringify({ model: MODEL, prompt: 'a moon', seed: 99, image_size: { width: 640, height: 512 }, response_format: 'b64_json' }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-request-id'), 'ledger-check-1');
    const db = new Database(path.join(server.dataDir, 'server.sqlite'), { readonly: true });
    const row = db.prepare('SELECT * FROM usage_ledger WHERE request_id = ?').get('ledger-check-1') as any;
    db.close();
    assert.ok(row.key_id.startsWith('key_env_'));
    // Money is stored as integers (domain/money.ts): whole credits and micro-USD.
    assert.deepEqual([row.model, row.width, row.height, row.seed, row.credits, row.usd_micros], [MODEL, 640, 512, 99, 91000, 45500]);
    assert.ok(row.created_at_ms >= sentAtMs && row.created_at_ms <= Date.now(), 'written between the request and now');
  });
  test('GET /v1/usage returns the caller\'s own totals', async () => {
    const before = (await server.get('/v1/usage', { authorization: `Bearer ${OTHER_KEY}` })).json;
    for (let i = 0; i < 3; i++) assert.equal((await generate(OTHER_KEY)).status, 200);
    const after = (await server.get('/v1/usage', { authorization: `Bearer ${OTHER_KEY}` })).json;
    assert.equal(after.generations - before.generations, 3);
    assert.equal(Math.round((after.usd_spent - before.usd_spent) * 1e6) / 1e6, 0.1365);
    assert.equal(after.credits_used - before.credits_used, 273000);
    assert.equal(after.by_model[0].model, MODEL);
    const mine = (await server.get('/v1/usage')).json;
    assert.notEqual(mine.key_id, after.key_id);
  });
});

describe('configured prices', () => {
  let priced: TestServer;
  before(async () => {
    priced = await startTestServer({ PRICES_USD: '{"alibaba/qwen-image-2-0": 0.01}' });
  });
  after(async () => {
    await priced.close();
  });
  test('an operator price changes credits and USD (credits = USD × 2,000,000)', async () => {
    const res = await priced.post('/v1/images/generations', { model: MODEL, prompt: 'x', response_format: 'b64_json', image_size: 'square' });
    assert.deepEqual(res.json.meta.usage, { credits_used: 20000, usd_spent: 0.01 });
  });
});
