/**
 * Admin keys over HTTP and the CLI: /v1/admin/... for admin keys only (401 without a key, 403 for user keys),
 * keys made, listed, updated and revoked by exact id, secrets shown once, everyone's usage for admins and only
 * their own for users; keys stored as HMAC-SHA256 under the DATA_DIR secret file (or KEY_HASH_SECRET).
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, MODEL, REPO_ROOT, TEST_KEY, OTHER_KEY, type TestServer } from '../helpers/server.ts';

const runFile = promisify(execFile);
const ADMIN_KEY = 'test-admin-key-delta';
const body = { model: MODEL, prompt: 'a sun', enhance_prompt: false, image_size: 'square', response_format: 'b64_json' };

let server: TestServer;
before(async () => {
  server = await startTestServer({ ADMIN_API_KEYS: ADMIN_KEY, KEY_DEFAULT_DAILY_CREDITS: '5000000' });
});
after(async () => {
  await server.close();
});

async function call(method: string, pathname: string, key: string | null, payload?: unknown) {
  const res = await fetch(server.url + pathname, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, text };
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await runFile(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'src/cli/main.ts'), ...args], {
      env: { ...process.env, DATA_DIR: server.dataDir, KEY_DEFAULT_DAILY_CREDITS: '5000000' },
      cwd: REPO_ROOT,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const ADMIN_ROUTES: Array<[string, string]> = [
  ['GET', '/v1/admin/keys'],
  ['POST', '/v1/admin/keys'],
  ['GET', '/v1/admin/keys/key_x'],
  ['PATCH', '/v1/admin/keys/key_x'],
  ['POST', '/v1/admin/keys/key_x/revoke'],
  ['GET', '/v1/admin/keys/key_x/usage'],
  ['GET', '/v1/admin/usage'],
];

describe('who may use /v1/admin', () => {
  test('no key → 401; a user key → 403 permission_error on every admin route, and nothing is made', async () => {
    const before = (await call('GET', '/v1/admin/keys', ADMIN_KEY)).json.data.length;
    for (const [method, route] of ADMIN_ROUTES) {
      const payload = method === 'GET' ? undefined : { name: 'sneaky', role: 'admin' };
      assert.equal((await call(method, route, null, payload)).status, 401, `${method} ${route}`);
      const res = await call(method, route, TEST_KEY, payload);
      assert.equal(res.status, 403, `${method} ${route}`);
      assert.equal(res.json.error.code, 'forbidden');
      assert.equal(res.json.error.type, 'permission_error');
      assert.match(res.json.error.message, /is a user key; .* needs an admin key/);
    }
    assert.equal((await call('GET', '/v1/admin/keys', ADMIN_KEY)).json.data.length, before);
  });

  test('ADMIN_API_KEYS keys are admins; API_KEYS keys are users', async () => {
    const list = (await call('GET', '/v1/admin/keys', ADMIN_KEY)).json.data as Array<{ name: string; role: string; source: string }>;
    assert.deepEqual(
      list.filter((k) => k.source === 'env').map((k) => `${k.name}:${k.role}`).sort(),
      ['ADMIN_API_KEYS[0]:admin', 'API_KEYS[0]:user', 'API_KEYS[1]:user'],
    );
  });
});

describe('managing keys over HTTP', () => {
  test('create: 201 with the secret once; the key works; list and get never show it; limits follow the defaults unless set', async () => {
    const created = await call('POST', '/v1/admin/keys', ADMIN_KEY, { name: 'partner', requests_per_minute: 30, monthly_credits: null });
    assert.equal(created.status, 201);
    assert.match(created.json.key, /^qis_[A-Za-z0-9_-]{32}$/);
    assert.match(created.json.webhook_secret, /^whsec_/);
    assert.equal(created.json.role, 'user');
    assert.deepEqual(created.json.limits, { requests_per_minute: 30, max_concurrent_jobs: null, daily_credits: 5_000_000, monthly_credits: null });
    assert.deepEqual(created.json.limits_from_defaults, ['max_concurrent_jobs', 'daily_credits']);
    assert.equal((await call('POST', '/v1/images/generations', created.json.key, body)).status, 200);

    const list = await call('GET', '/v1/admin/keys', ADMIN_KEY);
    const one = await call('GET', `/v1/admin/keys/${created.json.id}`, ADMIN_KEY);
    assert.equal(one.status, 200);
    for (const text of [list.text, one.text]) {
      assert.ok(!text.includes(created.json.key), 'the secret is shown only at creation');
      assert.ok(!text.includes(created.json.webhook_secret));
    }
    assert.equal(one.json.id, created.json.id);
    assert.equal(one.json.key, undefined);
  });

  test('update: limits, "default" and null; the key\'s /v1/usage shows them', async () => {
    const { json: key } = await call('POST', '/v1/admin/keys', ADMIN_KEY, { name: 'to-update' });
    const res = await call('PATCH', `/v1/admin/keys/${key.id}`, ADMIN_KEY, { max_concurrent_jobs: 3, daily_credits: null, name: 'updated' });
    assert.equal(res.status, 200);
    assert.equal(res.json.name, 'updated');
    assert.deepEqual(res.json.limits, { requests_per_minute: null, max_concurrent_jobs: 3, daily_credits: null, monthly_credits: null });
    const usage = (await call('GET', '/v1/usage', key.key)).json;
    assert.equal(usage.key_id, key.id);
    assert.deepEqual(usage.limits.max_concurrent_jobs, { limit: 3, in_use: 0, remaining: 3 });
    assert.equal(usage.limits.daily_credits.limit, null);
    const back = await call('PATCH', `/v1/admin/keys/${key.id}`, ADMIN_KEY, { daily_credits: 'default' });
    assert.equal(back.json.limits.daily_credits, 5_000_000);
    assert.ok(back.json.limits_from_defaults.includes('daily_credits'));
  });

  test('bad bodies are 400s naming the field and the rule; nothing changes', async () => {
    const { json: key } = await call('POST', '/v1/admin/keys', ADMIN_KEY, { name: 'untouched', requests_per_minute: 7 });
    const cases: Array<[unknown, string, string | null, RegExp]> = [
      [{ requests_per_minute: 0 }, 'invalid_value', 'requests_per_minute', /requests_per_minute must be an integer from 1 to 1000000, null \(no limit\) or "default"/],
      [{ requests_per_minute: 1.5 }, 'invalid_value', 'requests_per_minute', /got 1\.5/],
      [{ max_concurrent_jobs: '2' }, 'invalid_value', 'max_concurrent_jobs', /got "2"/],
      [{ daily_credits: -1 }, 'invalid_value', 'daily_credits', /from 0 to/],
      [{ monthly_credits: 'none' }, 'invalid_value', 'monthly_credits', /must be an integer/],
      [{ role: 'root' }, 'invalid_value', 'role', /role must be one of admin, user/],
      [{ name: '' }, 'invalid_value', 'name', /name must be a string of 1 to 100 characters/],
      [{ name: 'a\nb' }, 'invalid_value', 'name', /without control characters/],
      [{ rpm: 5 }, 'unknown_field', 'rpm', /unknown field "rpm"; allowed: name, role, requests_per_minute/],
      [[1], 'invalid_value', null, /request body must be a JSON object/],
      [{}, 'invalid_value', null, /must set at least one of/],
      [{ requests_per_minute: 5, daily_credits: -5 }, 'invalid_value', 'daily_credits', /daily_credits/],
    ];
    for (const [payload, code, param, message] of cases) {
      const res = await call('PATCH', `/v1/admin/keys/${key.id}`, ADMIN_KEY, payload);
      assert.equal(res.status, 400, JSON.stringify(payload));
      assert.equal(res.json.error.code, code, JSON.stringify(payload));
      assert.equal(res.json.error.param, param, JSON.stringify(payload));
      assert.match(res.json.error.message, message);
    }
    const keysBefore = (await call('GET', '/v1/admin/keys', ADMIN_KEY)).json.data.length;
    for (const payload of [{ requests_per_minute: 0 }, null, 'str', { role: 'admin', daily_credits: 1.5 }]) {
      assert.equal((await call('POST', '/v1/admin/keys', ADMIN_KEY, payload)).status, 400, JSON.stringify(payload));
    }
    assert.equal((await call('GET', '/v1/admin/keys', ADMIN_KEY)).json.data.length, keysBefore, 'no key was made');
    const after = (await call('GET', `/v1/admin/keys/${key.id}`, ADMIN_KEY)).json;
    assert.equal(after.name, 'untouched');
    assert.equal(after.limits.requests_per_minute, 7);

    const missing = await call('PATCH', '/v1/admin/keys/key_missing', ADMIN_KEY, { name: 'x' });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.param, 'id');
    const envUser = (await call('GET', '/v1/admin/keys', ADMIN_KEY)).json.data.find((k: any) => k.name === 'API_KEYS[0]');
    const envRole = await call('PATCH', `/v1/admin/keys/${envUser.id}`, ADMIN_KEY, { role: 'admin' });
    assert.equal(envRole.status, 400);
    assert.equal(envRole.json.error.param, 'role');
    assert.match(envRole.json.error.message, /ADMIN_API_KEYS/);
  });

  test('an admin key made over HTTP can manage keys; demoted to user it gets 403', async () => {
    const { json: admin } = await call('POST', '/v1/admin/keys', ADMIN_KEY, { name: 'second admin', role: 'admin' });
    assert.equal(admin.role, 'admin');
    assert.equal((await call('GET', '/v1/admin/keys', admin.key)).status, 200);
    await call('PATCH', `/v1/admin/keys/${admin.id}`, ADMIN_KEY, { role: 'user' });
    assert.equal((await call('GET', '/v1/admin/keys', admin.key)).status, 403);
  });

  test('revoke takes the exact id: a prefix of it is a 404 and revokes nothing; the exact id gives 401 to the key at once', async () => {
    const a = (await call('POST', '/v1/admin/keys', ADMIN_KEY, { name: 'a' })).json;
    const b = (await call('POST', '/v1/admin/keys', ADMIN_KEY, { name: 'b' })).json;
    for (const guess of [a.id.slice(0, -1), a.prefix, 'key_']) {
      assert.equal((await call('POST', `/v1/admin/keys/${encodeURIComponent(guess)}/revoke`, ADMIN_KEY)).status, 404, guess);
    }
    const revoked = await call('POST', `/v1/admin/keys/${a.id}/revoke`, ADMIN_KEY);
    assert.equal(revoked.status, 200);
    assert.equal(typeof revoked.json.revoked_at, 'number');
    assert.equal(revoked.json.revoked_by, 'cli');
    assert.equal((await call('POST', `/v1/admin/keys/${a.id}/revoke`, ADMIN_KEY)).status, 200, 'again: the key as it is');
    assert.equal((await call('GET', '/v1/usage', a.key)).status, 401);
    assert.equal((await call('GET', '/v1/usage', b.key)).status, 200, 'another key is untouched');
  });
});

describe('usage: admins read everyone\'s, users their own', () => {
  test('GET /v1/admin/usage lists every key with its totals and limits; /v1/admin/keys/{id}/usage one; /v1/usage only the caller', async () => {
    assert.equal((await call('POST', '/v1/images/generations', OTHER_KEY, body)).status, 200);
    const mine = (await call('GET', '/v1/usage', OTHER_KEY)).json;
    assert.ok(mine.generations >= 1);
    const all = (await call('GET', '/v1/admin/usage', ADMIN_KEY)).json;
    assert.equal(all.object, 'list');
    const other = all.data.find((u: any) => u.key_id === mine.key_id);
    assert.equal(other.generations, mine.generations);
    assert.equal(other.name, 'API_KEYS[1]');
    assert.equal(other.limits.daily_credits.limit, 5_000_000, 'env keys get KEY_DEFAULT_DAILY_CREDITS');
    assert.ok(all.data.length >= 3);
    const one = (await call('GET', `/v1/admin/keys/${mine.key_id}/usage`, ADMIN_KEY)).json;
    assert.equal(one.generations, mine.generations);
    assert.equal((await call('GET', '/v1/admin/keys/key_missing/usage', ADMIN_KEY)).status, 404);
    // A user cannot name another key: /v1/usage is always the caller's.
    assert.equal((await call('GET', `/v1/usage?key_id=${encodeURIComponent(one.key_id)}`, TEST_KEY)).json.key_id !== one.key_id, true);
  });
});

describe('CLI keys create / update', () => {
  test('create with role and limits, update (a number, none, default), and bad values are usage errors naming the flag', async () => {
    const made = await cli('keys', 'create', '--name', 'cli-admin', '--admin', '--rpm', '5', '--daily-credits', '1000');
    assert.equal(made.code, 0, made.stderr);
    const created = JSON.parse(made.stdout);
    assert.equal(created.role, 'admin');
    assert.deepEqual(created.limits, { requests_per_minute: 5, max_concurrent_jobs: null, daily_credits: 1000, monthly_credits: null });
    assert.equal((await call('GET', '/v1/admin/keys', created.key)).status, 200, 'the running server accepts it at once');

    const updated = await cli('keys', 'update', created.id, '--rpm', 'none', '--max-concurrent', '2', '--daily-credits', 'default', '--role', 'user');
    assert.equal(updated.code, 0, updated.stderr);
    const view = JSON.parse(updated.stdout);
    assert.deepEqual(view.limits, { requests_per_minute: null, max_concurrent_jobs: 2, daily_credits: 5_000_000, monthly_credits: null });
    assert.equal(view.role, 'user');
    assert.equal((await call('GET', '/v1/admin/keys', created.key)).status, 403);
    const usage = (await call('GET', '/v1/usage', created.key)).json;
    assert.equal(usage.limits.max_concurrent_jobs.limit, 2);

    for (const [args, pattern] of [
      [['--rpm', '0'], /--rpm must be an integer from 1 to 1000000, "none" \(no limit\) or "default"; got "0"/],
      [['--daily-credits', '-3'], /--daily-credits must be an integer/],
      [['--role', 'root'], /--role must be one of admin, user/],
      [['--rpm'], /--rpm needs a value/],
      [['--bogus', '1'], /unknown option --bogus/],
    ] as Array<[string[], RegExp]>) {
      const res = await cli('keys', 'update', created.id, ...args);
      assert.equal(res.code, 2, args.join(' '));
      assert.match(res.stderr, pattern);
    }
    const missing = await cli('keys', 'update', 'key_missing', '--rpm', '3');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no key with id key_missing/);

    const list = JSON.parse((await cli('keys', 'list')).stdout) as Array<{ id: string; role: string; limits: Record<string, unknown> }>;
    const entry = list.find((k) => k.id === created.id)!;
    assert.equal(entry.role, 'user');
    assert.equal(entry.limits.max_concurrent_jobs, 2);
    assert.ok(!JSON.stringify(list).includes(created.key));
  });
});

describe('keyed hashes', () => {
  test('the DATA_DIR secret file is 0600 and the stored hash is HMAC-SHA256 under it, not a plain SHA-256', async () => {
    const file = path.join(server.dataDir, 'key-hash-secret');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const hashKey = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'utf8');
    const db = new Database(path.join(server.dataDir, 'server.sqlite'), { readonly: true });
    const rows = db.prepare('SELECT hash, hash_kind FROM api_keys').all() as Array<{ hash: string; hash_kind: string }>;
    db.close();
    const hashes = rows.map((r) => r.hash);
    assert.ok(hashes.includes(crypto.createHmac('sha256', hashKey).update(TEST_KEY).digest('hex')));
    assert.ok(!hashes.includes(crypto.createHash('sha256').update(TEST_KEY).digest('hex')));
    assert.ok(rows.every((r) => r.hash_kind === 'hmac-sha256'));
  });

  test('with KEY_HASH_SECRET no file is written, and a restart with the same secret accepts the same keys', async () => {
    const env = { KEY_HASH_SECRET: 'an-operator-chosen-hash-secret' };
    const first = await startTestServer(env);
    try {
      assert.equal(fs.existsSync(path.join(first.dataDir, 'key-hash-secret')), false);
      assert.equal((await first.get('/v1/usage')).status, 200);
    } finally {
      await first.close();
    }
    const again = await startTestServer({ ...env, DATA_DIR: first.dataDir });
    try {
      const keys = (await again.get('/v1/usage')).json;
      assert.match(keys.key_id, /^key_env_/);
    } finally {
      await again.close();
    }
  });
});
