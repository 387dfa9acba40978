import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from './database.ts';
import { createSqliteKeyStore } from './key-store.ts';

const ENV_SECRET = 'correct-horse-battery-staple';
const envId = async (store: ReturnType<typeof createSqliteKeyStore>) => (await store.list()).find((k) => k.source === 'env')!.id;

test('an API_KEYS key revoked by the operator stays revoked at the next start; one that left API_KEYS comes back', async () => {
  const store = createSqliteKeyStore(openDatabase(':memory:'));
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
  const store = createSqliteKeyStore(openDatabase(':memory:'));
  store.syncEnvKeys([ENV_SECRET]);
  const id = await envId(store);
  store.syncEnvKeys([]);
  assert.equal(await store.revoke(id), true);
  assert.equal(await store.revoke(id), false, 'already revoked by the operator');
  store.syncEnvKeys([ENV_SECRET]);
  assert.equal(await store.verify(ENV_SECRET), null);
});

test('revoke takes an exact id only; prefixes show nothing of an operator-chosen secret', async () => {
  const store = createSqliteKeyStore(openDatabase(':memory:'));
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
  createSqliteKeyStore(db).syncEnvKeys([ENV_SECRET]);
  // Back to version 2 as it was written: the prefix held the secret's first 8 characters; sync had revoked it.
  db.exec(`ALTER TABLE api_keys DROP COLUMN revoked_by; UPDATE api_keys SET prefix = 'correct-', revoked_at_ms = 1`);
  // Undo what the later migrations added too (4: the ledger's watermark columns), so they can run again.
  db.exec(`DROP INDEX usage_ledger_watermark; ALTER TABLE usage_ledger DROP COLUMN watermark_issuer_id; ALTER TABLE usage_ledger DROP COLUMN watermark_generation_id`);
  db.pragma('user_version = 2');
  db.close();
  const store = createSqliteKeyStore(openDatabase(file));
  const [env] = await store.list();
  assert.equal(env!.prefix, '');
  assert.equal(env!.revokedBy, null);
  store.syncEnvKeys([ENV_SECRET]);
  assert.equal(await store.verify(ENV_SECRET), null, 'who revoked it is unknown: it stays revoked');
});
