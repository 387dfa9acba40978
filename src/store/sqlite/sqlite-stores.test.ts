/**
 * The SQLite stores, opened through openStores on a real file, pass the store conformance suite; migration 6
 * turns the ledger's REAL money into whole credits and micro-USD.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openStores } from '../open-stores.ts';
import { runStoreConformance } from '../testing/store-conformance.ts';
import { openDatabase, SQLITE_SCHEMA_VERSION } from './database.ts';

const HASH_KEY = Buffer.from('sqlite-stores-test-hash-key');

runStoreConformance('sqlite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-stores-'));
  const stores = await openStores({ sqlitePath: path.join(dir, 'server.sqlite'), hashKey: HASH_KEY });
  return {
    stores,
    teardown: async () => {
      await stores.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

test('migration 6 converts REAL credits and USD to whole credits and micro-USD, keeping every row', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-money-'));
  const file = path.join(dir, 'server.sqlite');
  try {
    // A version-5 file as that release wrote it: the ledger's amounts REAL, rounded where they were computed.
    openDatabase(file).close();
    const old = new Database(file);
    old.exec(`DROP INDEX usage_ledger_key; DROP INDEX usage_ledger_watermark; DROP TABLE usage_ledger;
      CREATE TABLE usage_ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT, key_id TEXT NOT NULL, job_id TEXT UNIQUE, request_id TEXT NOT NULL, model TEXT NOT NULL,
        width INTEGER NOT NULL, height INTEGER NOT NULL, seed INTEGER NOT NULL, credits REAL NOT NULL, usd REAL NOT NULL,
        created_at_ms INTEGER NOT NULL, watermark_issuer_id INTEGER, watermark_generation_id INTEGER);
      CREATE INDEX usage_ledger_key ON usage_ledger (key_id, created_at_ms);`);
    const insert = old.prepare(`INSERT INTO usage_ledger (key_id, job_id, request_id, model, width, height, seed, credits, usd, created_at_ms, watermark_issuer_id, watermark_generation_id)
      VALUES (?, ?, 'req', 'alibaba/qwen-image-2-0', 64, 64, 1, ?, ?, ?, ?, ?)`);
    insert.run('key_a', 'job_1', 91000, 0.0455, 10, 7, 42);
    insert.run('key_a', 'job_2', 91000.0000004, 0.045500000000000006, 20, null, null);
    insert.run('key_a', null, 273000, 0.1365, 30, null, null); // a row from before jobs
    insert.run('key_b', 'job_3', 0.8, 0.0000004, 40, null, null);
    old.pragma('user_version = 5');
    old.close();

    const stores = await openStores({ sqlitePath: file, hashKey: HASH_KEY });
    try {
      const rows = stores.sqliteDb!.prepare(`SELECT job_id, credits, usd_micros, typeof(credits) AS tc, typeof(usd_micros) AS tu, watermark_generation_id FROM usage_ledger ORDER BY id`).all();
      assert.deepEqual(rows, [
        { job_id: 'job_1', credits: 91000, usd_micros: 45500, tc: 'integer', tu: 'integer', watermark_generation_id: 42 },
        { job_id: 'job_2', credits: 91000, usd_micros: 45500, tc: 'integer', tu: 'integer', watermark_generation_id: null },
        { job_id: null, credits: 273000, usd_micros: 136500, tc: 'integer', tu: 'integer', watermark_generation_id: null },
        { job_id: 'job_3', credits: 1, usd_micros: 0, tc: 'integer', tu: 'integer', watermark_generation_id: null },
      ]);
      assert.equal(stores.sqliteDb!.pragma('user_version', { simple: true }), SQLITE_SCHEMA_VERSION);
      assert.deepEqual(await stores.usage.totals('key_a'), {
        keyId: 'key_a', generations: 3, credits: 455000, usd: 0.2275,
        byModel: [{ model: 'alibaba/qwen-image-2-0', generations: 3, credits: 455000, usd: 0.2275 }],
      });
      assert.deepEqual((await stores.markLedger.findByMark({ issuerId: 7, generationId: 42 }, 5)).map((g) => g.jobId), ['job_1']);
    } finally {
      await stores.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a SQLite file of a newer schema version is refused, naming both versions', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-newer-'));
  try {
    const file = path.join(dir, 'server.sqlite');
    const db = new Database(file);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    db.close();
    await assert.rejects(
      openStores({ sqlitePath: file, hashKey: HASH_KEY }),
      new RegExp(`schema version ${SQLITE_SCHEMA_VERSION + 1}, newer than this server's ${SQLITE_SCHEMA_VERSION}`),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
