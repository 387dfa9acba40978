/** Migration 4 and the ledger looked up by mark, with the scoping trace-mark.ts applies on top. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from './database.ts';
import { createSqliteMarkLedger } from './mark-ledger.ts';
import { traceMark } from '../../provenance/trace-mark.ts';

test('rows keep their mark; rows from before migration 4 have none; a trace shows a key only its own jobs', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qis-marks-')), 'server.sqlite');
  const db = openDatabase(file);
  const insert = db.prepare(
    `INSERT INTO usage_ledger (key_id, job_id, request_id, model, width, height, seed, credits, usd_micros, created_at_ms, watermark_issuer_id, watermark_generation_id)
     VALUES (?, ?, 'req', 'm', 64, 48, 1, 200000, 100000, ?, ?, ?)`,
  );
  insert.run('key_a', 'job_old', 1, null, null);
  insert.run('key_a', 'job_a1', 2, 7, 42);
  insert.run('key_b', 'job_b1', 3, 7, 42);
  insert.run('key_a', 'job_a2', 4, 7, 42);
  insert.run('key_a', 'job_other_issuer', 5, 8, 42);
  const ledger = createSqliteMarkLedger(db);

  assert.deepEqual((await ledger.findByMark({ issuerId: 7, generationId: 42 }, 10)).map((r) => r.jobId), ['job_a2', 'job_b1', 'job_a1']);
  const mine = await traceMark(ledger, { issuerId: 7, generationId: 42 }, 7, { kind: 'key', keyId: 'key_a' });
  assert.equal(mine.status, 'yours');
  assert.deepEqual(mine.generations.map((g) => g.job_id), ['job_a2', 'job_a1']);
  assert.ok(mine.generations.every((g) => g.key_id === undefined));
  const stranger = await traceMark(ledger, { issuerId: 7, generationId: 42 }, 7, { kind: 'key', keyId: 'key_c' });
  assert.deepEqual({ status: stranger.status, generations: stranger.generations }, { status: 'other_key', generations: [] });
  const operator = await traceMark(ledger, { issuerId: 7, generationId: 42 }, 7, { kind: 'operator' });
  assert.equal(operator.status, 'found');
  assert.deepEqual(operator.generations.map((g) => g.key_id), ['key_a', 'key_b', 'key_a']);
  assert.equal((await traceMark(ledger, { issuerId: 7, generationId: 43 }, 7, { kind: 'key', keyId: 'key_a' })).status, 'not_found');
  assert.equal((await traceMark(ledger, { issuerId: 9, generationId: 42 }, 7, { kind: 'operator' })).status, 'foreign_issuer');
  db.close();
});
