import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from './database.ts';
import { createSqliteKeyStore, keyedHash } from './key-store.ts';

const ENV_SECRET = 'correct-horse-battery-staple';
const HASH = { hashKey: Buffer.from('key-store-test-hash-key') };
/**
 * Back to schema version 3: undoes migration 6 (integer money: the ledger is empty here, so only the column's
 * name matters), 5 (the ledger's watermark columns) and 4 (roles, limits, keyed hashes). The hashes stay what
 * they are: the caller rewrites them as version 3 had them.
 */
function undoMigration4(db: ReturnType<typeof openDatabase>): void {
  db.exec(`ALTER TABLE usage_ledger RENAME COLUMN usd_micros TO usd;
           DROP INDEX usage_ledger_watermark; ALTER TABLE usage_ledger DROP COLUMN watermark_issuer_id; ALTER TABLE usage_ledger DROP COLUMN watermark_generation_id;
           DROP INDEX jobs_key_status;
           ALTER TABLE api_keys DROP COLUMN role; ALTER TABLE api_keys DROP COLUMN hash_kind;
           ALTER TABLE api_keys DROP COLUMN limit_rpm; ALTER TABLE api_keys DROP COLUMN limit_concurrent;
           ALTER TABLE api_keys DROP COLUMN limit_daily_credits; ALTER TABLE api_keys DROP COLUMN limit_monthly_credits;`);
  db.pragma('user_version = 3');
}

const envId = async (store: ReturnType<typeof createSqliteKeyStore>) => (await store.list()).find((k) => k.source === 'env')!.id;

test('an API_KEYS key revoked by the operator stays revoked at the next start; one that left API_KEYS comes back', async () => {
  const store = createSqliteKeyStore(openDatabase(':memory:'), HASH);
  store.syncEnvKeys([ENV_SECRET, 'second-env-secret']);
  const idOf = async (name: string) => (await store.list()).find((k) => k.name === name)!;
  const first = await idOf('API_KEYS[0]');
  const second = await idOf('API_KEYS[1]');
  assert.equal(await store.revoke(first.id), true);
  store.syncEnvKeys([ENV_SECRET, 'second-env-secret']); // the restart
  assert.equal(await store.verify(ENV_SECRET), null, 'the operator revoked it');
  assert.equal((await idOf('API_KEYS[0]')).revokedBy, 'cli');

  store.syncEnvKeys([ENV_SECRET]); // second-env-secret leaves API_KEYS…
  assert.equal(await store.verify('second-env-secret'), null);
  store.syncEnvKeys([ENV_SECRET, 'second-env-secret']); // …and comes back
  assert.equal((await store.verify('second-env-secret'))?.id, second.id);
});

test('the operator can claim a key that sync revoked, so listing it again does not revive it', async () => {
  const store = createSqliteKeyStore(openDatabase(':memory:'), HASH);
  store.syncEnvKeys([ENV_SECRET]);
  const id = await envId(store);
  store.syncEnvKeys([]);
  assert.equal(await store.revoke(id), true);
  assert.equal(await store.revoke(id), false, 'already revoked by the operator');
  store.syncEnvKeys([ENV_SECRET]);
  assert.equal(await store.verify(ENV_SECRET), null);
});

test('revoke takes an exact id only; prefixes show nothing of an operator-chosen secret', async () => {
  const store = createSqliteKeyStore(openDatabase(':memory:'), HASH);
  store.syncEnvKeys([ENV_SECRET]);
  const a = await store.create('a', 'cli');
  const b = await store.create('b', 'cli');
  assert.match(a.record.prefix, /^qis_[A-Za-z0-9_-]{4}$/);
  assert.ok(a.secret.startsWith(a.record.prefix));
  const env = (await store.list()).find((k) => k.source === 'env')!;
  assert.equal(env.prefix, '', 'nothing of correct-horse-… is shown');
  assert.equal((await store.create('chosen', 'cli', 'qis_operator-picked')).record.prefix, '');

  for (const guess of ['qis_', a.record.prefix, a.record.id.slice(0, 8), 'correct-', '']) assert.equal(await store.revoke(guess), false, guess);
  assert.ok(await store.verify(a.secret));
  assert.ok(await store.verify(ENV_SECRET));
  assert.equal(await store.revoke(a.record.id), true);
  assert.equal(await store.verify(a.secret), null);
  assert.ok(await store.verify(b.secret), 'another key is untouched');
});

test('migration 3 blanks the env prefixes written before it and keeps older revocations', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qis-keys-')), 'server.sqlite');
  const db = openDatabase(file);
  createSqliteKeyStore(db, HASH).syncEnvKeys([ENV_SECRET]);
  // Back to version 2 as it was written: the prefix held the secret's first 8 characters; sync had revoked it.
  undoMigration4(db);
  db.exec(`ALTER TABLE api_keys DROP COLUMN revoked_by; UPDATE api_keys SET prefix = 'correct-', revoked_at_ms = 1`);
  db.pragma('user_version = 2');
  db.close();
  const store = createSqliteKeyStore(openDatabase(file), HASH);
  const [env] = await store.list();
  assert.equal(env!.prefix, '');
  assert.equal(env!.revokedBy, null);
  store.syncEnvKeys([ENV_SECRET]);
  assert.equal(await store.verify(ENV_SECRET), null, 'who revoked it is unknown: it stays revoked');
});

test('migration 4: keys hashed with plain SHA-256 still verify, keep their ids, and are re-hashed with HMAC on first use', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qis-keys-')), 'server.sqlite');
  const db = openDatabase(file);
  const before = createSqliteKeyStore(db, HASH);
  before.syncEnvKeys([ENV_SECRET]);
  const cli = await before.create('cli-made', 'cli');
  // Version 3 as it was written: hex SHA-256 of each secret.
  undoMigration4(db);
  const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
  const envRow = (await before.list()).find((k) => k.source === 'env')!;
  db.prepare('UPDATE api_keys SET hash = ? WHERE id = ?').run(sha256(ENV_SECRET), envRow.id);
  db.prepare('UPDATE api_keys SET hash = ? WHERE id = ?').run(sha256(cli.secret), cli.record.id);
  db.close();

  const reopened = openDatabase(file);
  const store = createSqliteKeyStore(reopened, HASH);
  const kinds = () => Object.fromEntries((reopened.prepare('SELECT id, hash_kind, hash FROM api_keys').all() as Array<{ id: string; hash_kind: string; hash: string }>).map((r) => [r.id, r]));
  assert.equal(kinds()[cli.record.id]!.hash_kind, 'sha256');
  assert.equal((await store.verify(cli.secret))?.id, cli.record.id, 'the old hash verifies');
  assert.equal(kinds()[cli.record.id]!.hash_kind, 'hmac-sha256');
  assert.equal(kinds()[cli.record.id]!.hash, keyedHash(HASH.hashKey, cli.secret));
  assert.equal((await store.verify(cli.secret))?.id, cli.record.id, 'and so does the new one');

  store.syncEnvKeys([ENV_SECRET]); // the next start: the env key is re-hashed, not replaced
  assert.equal(kinds()[envRow.id]!.hash_kind, 'hmac-sha256');
  assert.equal((await store.verify(ENV_SECRET))?.id, envRow.id, 'same id, same usage history');
  assert.equal((await store.list()).length, 2);
  for (const k of await store.list()) assert.equal(k.role, 'user', 'existing keys become user keys');
  reopened.close();
});

test('stored hashes are keyed: another hash secret verifies nothing, and no hash is a plain SHA-256', async () => {
  const db = openDatabase(':memory:');
  const store = createSqliteKeyStore(db, HASH);
  store.syncEnvKeys([ENV_SECRET]);
  const { secret } = await store.create('x', 'cli');
  const hashes = (db.prepare('SELECT hash FROM api_keys').all() as Array<{ hash: string }>).map((r) => r.hash);
  for (const s of [ENV_SECRET, secret]) assert.ok(!hashes.includes(crypto.createHash('sha256').update(s).digest('hex')));
  const other = createSqliteKeyStore(db, { hashKey: Buffer.from('some-other-hash-key') });
  assert.equal(await other.verify(secret), null);
  assert.equal(await other.verify(ENV_SECRET), null);
});

test('roles and limits: ADMIN_API_KEYS makes admins, limits round-trip (number, none, default), env roles are not editable', async () => {
  const store = createSqliteKeyStore(openDatabase(':memory:'), HASH);
  store.syncEnvKeys(['user-env-secret-1', 'both-env-secret-2'], ['admin-env-secret-3', 'both-env-secret-2']);
  assert.equal((await store.verify('user-env-secret-1'))?.role, 'user');
  assert.equal((await store.verify('admin-env-secret-3'))?.role, 'admin');
  assert.equal((await store.verify('both-env-secret-2'))?.role, 'admin', 'listed in both: admin');
  store.syncEnvKeys(['admin-env-secret-3'], []); // moved from ADMIN_API_KEYS to API_KEYS
  assert.equal((await store.verify('admin-env-secret-3'))?.role, 'user');
  assert.equal(await store.verify('user-env-secret-1'), null, 'no longer listed');

  const { record } = await store.create('limited', 'cli', undefined, { role: 'admin', limits: { requests_per_minute: 10, daily_credits: 0 } });
  assert.equal(record.role, 'admin');
  assert.deepEqual((await store.get(record.id))!.limits, { requests_per_minute: 10, max_concurrent_jobs: 'default', daily_credits: 0, monthly_credits: 'default' });
  const updated = await store.update(record.id, { name: 'renamed', role: 'user', limits: { requests_per_minute: null, max_concurrent_jobs: 3, daily_credits: 'default' } });
  assert.equal(updated!.name, 'renamed');
  assert.equal(updated!.role, 'user');
  assert.deepEqual(updated!.limits, { requests_per_minute: null, max_concurrent_jobs: 3, daily_credits: 'default', monthly_credits: 'default' });
  assert.equal(await store.update('key_nope', { name: 'x' }), null);
  assert.equal(await store.get('key_nope'), null);

  const env = (await store.list()).find((k) => k.source === 'env' && k.revokedAtMs === null)!;
  await assert.rejects(store.update(env.id, { role: 'admin' }), /ADMIN_API_KEYS/);
  assert.equal((await store.update(env.id, { limits: { monthly_credits: 500 } }))!.limits.monthly_credits, 500, 'an env key\'s limits can be set');
  store.syncEnvKeys(['admin-env-secret-3'], []);
  assert.equal((await store.get(env.id))!.limits.monthly_credits, 500, 'and a restart keeps them');
});
