/**
 * The Postgres stores on a real PostgreSQL 15 (test/helpers/postgres.ts: a server per file, a database per test)
 * pass the store and job-store conformance suites; plus what only a shared database has: migrations raced by
 * two pools, the newer-schema refusal, and the webhook outbox leased between two dispatchers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type TestPostgres } from '../../../test/helpers/postgres.ts';
import { createPostgresJobStore } from '../../jobs/postgres/job-store.ts';
import { createPostgresWebhookOutbox } from '../../jobs/postgres/webhook-outbox.ts';
import { createSqliteJobQueue } from '../../jobs/sqlite/job-queue.ts';
import { runJobStoreConformance } from '../../jobs/testing/job-store-conformance.ts';
import { openDatabase } from '../sqlite/database.ts';
import { openStores } from '../open-stores.ts';
import { runStoreConformance } from '../testing/store-conformance.ts';
import { migratePostgres, POSTGRES_SCHEMA_VERSION } from './migrations.ts';
import { createPostgresPool } from './pool.ts';

const HASH_KEY = Buffer.from('postgres-stores-test-hash-key');

let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
});

runStoreConformance('postgres', async () => {
  const stores = await openStores({ databaseUrl: await server.createDatabase(), sqlitePath: '/nonexistent/unused.sqlite', hashKey: HASH_KEY });
  assert.equal(stores.kind, 'postgres');
  assert.equal(stores.sqliteDb, undefined);
  return { stores, teardown: () => stores.close() };
});

// The queue is not the store's: the conformance suite's queue cases run on the embedded queue here, so the
// store cases are what this run adds.
runJobStoreConformance('postgres', async () => {
  const url = await server.createDatabase();
  const pool = createPostgresPool(url);
  await migratePostgres(pool, url);
  const queueDb = openDatabase(':memory:');
  return {
    store: createPostgresJobStore(pool),
    queue: createSqliteJobQueue(queueDb),
    outbox: createPostgresWebhookOutbox(pool),
    ledgerRowsFor: async (jobId) => (await pool.query<{ n: number }>(`SELECT COUNT(*) AS n FROM usage_ledger WHERE job_id = $1`, [jobId])).rows[0]!.n,
    teardown: async () => {
      queueDb.close();
      await pool.end();
    },
  };
});

describe('Postgres schema migrations', () => {
  it('two pools migrating one new database at once make one schema; a later start finds it current', async () => {
    const url = await server.createDatabase();
    const pools = [createPostgresPool(url), createPostgresPool(url)];
    try {
      const outcomes = await Promise.all(pools.map((pool) => migratePostgres(pool, url)));
      assert.deepEqual(outcomes.map((o) => o.from).sort(), [0, POSTGRES_SCHEMA_VERSION], 'one migrated from 0, the other waited and found it done');
      const versions = (await pools[0]!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version);
      assert.deepEqual(versions, Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1));
      assert.deepEqual(await migratePostgres(pools[0]!, url), { from: POSTGRES_SCHEMA_VERSION, to: POSTGRES_SCHEMA_VERSION });
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it('openStores from three processes at once: all open, one set of tables', async () => {
    const url = await server.createDatabase();
    const all = await Promise.all([1, 2, 3].map(() => openStores({ databaseUrl: url, sqlitePath: '/unused', hashKey: HASH_KEY })));
    try {
      await Promise.all(all.map((stores) => stores.ping()));
      const client = new pg.Client(url);
      await client.connect();
      const { rows } = await client.query<{ n: string }>(`SELECT COUNT(*)::text AS n FROM schema_migrations`);
      await client.end();
      assert.equal(Number(rows[0]!.n), POSTGRES_SCHEMA_VERSION);
    } finally {
      await Promise.all(all.map((stores) => stores.close()));
    }
  });

  it('a database written by a newer release is refused, naming both versions, and left untouched', async () => {
    const url = await server.createDatabase();
    const pool = createPostgresPool(url);
    try {
      await migratePostgres(pool, url);
      await pool.query('INSERT INTO schema_migrations (version) VALUES ($1)', [POSTGRES_SCHEMA_VERSION + 5]);
      const expected = new RegExp(`has schema version ${POSTGRES_SCHEMA_VERSION + 5}, newer than this server's ${POSTGRES_SCHEMA_VERSION}: it was written by a newer release`);
      await assert.rejects(openStores({ databaseUrl: url, sqlitePath: '/unused', hashKey: HASH_KEY }), expected);
      const extra = [
        'SELECT version FROM schema_migrations ORDER BY version',
      ];
      const versions = (await pool.query<{ version: number }>(extra[0]!)).rows.map((r) => r.version);
      assert.equal(versions.at(-1), POSTGRES_SCHEMA_VERSION + 5);
    } finally {
      await pool.end();
    }
  });

  it('the refusal names the database without its password; an unreachable server says so', async () => {
    const url = await server.createDatabase();
    const withPassword = url.replace('postgres@', 'postgres:hunter2@');
    const pool = createPostgresPool(url);
    await migratePostgres(pool, url);
    await pool.query('INSERT INTO schema_migrations (version) VALUES (999)');
    await pool.end();
    await assert.rejects(openStores({ databaseUrl: withPassword, sqlitePath: '/unused', hashKey: HASH_KEY }), (err: Error) => {
      assert.match(err.message, /schema version 999/);
      assert.ok(!err.message.includes('hunter2'), err.message);
      return true;
    });
    // Port 1 on loopback: nothing listens there.
    await assert.rejects(openStores({ databaseUrl: 'postgres://postgres:hunter2@127.0.0.1:1/none', sqlitePath: '/unused', hashKey: HASH_KEY }), (err: Error) => {
      assert.match(err.message, /^could not connect to postgres:\/\/postgres@127\.0\.0\.1:1\/none/);
      assert.ok(!err.message.includes('hunter2'), err.message);
      return true;
    });
  });
});

describe('Postgres webhook outbox shared by several dispatchers', () => {
  async function withOutboxes(test: (ctx: { pool: pg.Pool; a: ReturnType<typeof createPostgresWebhookOutbox>; b: ReturnType<typeof createPostgresWebhookOutbox> }) => Promise<void>) {
    const url = await server.createDatabase();
    const pool = createPostgresPool(url);
    try {
      await migratePostgres(pool, url);
      await test({ pool, a: createPostgresWebhookOutbox(pool, { leaseMs: 1000 }), b: createPostgresWebhookOutbox(pool, { leaseMs: 1000 }) });
    } finally {
      await pool.end();
    }
  }
  async function insertDeliveries(pool: pg.Pool, count: number, atMs: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const id = `msg_${randomUUID()}`;
      ids.push(id);
      await pool.query(
        `INSERT INTO webhook_deliveries (id, job_id, key_id, url, event_type, created_at_ms, attempts, next_attempt_at_ms, status)
         VALUES ($1, 'job_x', 'key_x', 'https://hooks.example/x', 'job.succeeded', $2, 0, $2, 'pending')`,
        [id, atMs + i],
      );
    }
    return ids;
  }

  it('a delivery one instance took is not due for another until its lease ends; its own instance still sees it', async () => {
    await withOutboxes(async ({ pool, a, b }) => {
      const [id] = await insertDeliveries(pool, 1, 1000);
      assert.deepEqual((await a.due(5000, 10)).map((d) => d.id), [id]);
      assert.deepEqual(await b.due(5000, 10), [], 'leased by the other instance');
      assert.equal(await b.nextDueAtMs(), 6000, 'for the other instance it is due when the lease ends');
      assert.equal(await a.nextDueAtMs(), 1000);
      assert.deepEqual((await a.due(5500, 10)).map((d) => d.id), [id], 'the holder sees it as the SQLite outbox shows a send in flight');
      // The holder died: after the lease (renewed to 6500 by the last look) another instance takes it.
      assert.deepEqual((await b.due(6500, 10)).map((d) => d.id), [id]);
      assert.deepEqual(await a.due(6600, 10), []);
      await b.markRetry(id!, 1, 9000, 'HTTP 500', 500);
      assert.equal(await a.nextDueAtMs(), 9000, 'recording an outcome ends the lease');
      assert.deepEqual((await a.due(9000, 10)).map((d) => d.id), [id]);
      await a.markDelivered(id!, 2, 200);
      assert.deepEqual(await b.due(99_000, 10), []);
      assert.equal(await b.nextDueAtMs(), null);
      const [row] = await a.listForJob('job_x');
      assert.deepEqual([row!.status, row!.attempts, row!.lastStatus, row!.lastError], ['delivered', 2, 200, null]);
    });
  });

  it('two instances asking at once split the due deliveries: none is handed to both', async () => {
    await withOutboxes(async ({ pool, a, b }) => {
      const ids = await insertDeliveries(pool, 40, 1000);
      const seen = new Map<string, number>();
      for (let round = 0; round < 5; round++) {
        const [fromA, fromB] = await Promise.all([a.due(2000, 5), b.due(2000, 5)]);
        for (const d of [...fromA, ...fromB]) seen.set(d.id, (seen.get(d.id) ?? 0) + 1);
        // Each sends what it got: recorded as delivered, as the dispatcher does.
        await Promise.all([...fromA.map((d) => a.markDelivered(d.id, 1, 204)), ...fromB.map((d) => b.markDelivered(d.id, 1, 204))]);
      }
      assert.equal(seen.size, 40, 'every delivery was handed out');
      assert.ok([...seen.values()].every((n) => n === 1), 'none twice');
      assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
    });
  });

  it('due() returns the longest-waiting first, at most the limit', async () => {
    await withOutboxes(async ({ pool, a }) => {
      const ids = await insertDeliveries(pool, 5, 1000);
      assert.deepEqual((await a.due(1002, 10)).map((d) => d.id), ids.slice(0, 3));
      assert.deepEqual((await a.due(5000, 2)).map((d) => d.id), ids.slice(0, 2));
    });
  });
});

describe('the CLI with DATABASE_URL', () => {
  it('keys create and usage work on the Postgres database, not on a SQLite file in DATA_DIR', async () => {
    const url = await server.createDatabase();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-cli-pg-'));
    const repo = path.resolve(import.meta.dirname, '../../..');
    const env = { ...process.env, DATABASE_URL: url, DATA_DIR: dataDir, KEY_HASH_SECRET: HASH_KEY.toString('utf8') };
    const cli = (...args: string[]) => promisify(execFile)(path.join(repo, 'node_modules/.bin/tsx'), [path.join(repo, 'src/cli/main.ts'), ...args], { env, cwd: repo });
    try {
      const made = JSON.parse((await cli('keys', 'create', '--name', 'from-cli')).stdout) as { id: string; key: string };
      const stores = await openStores({ databaseUrl: url, sqlitePath: '/unused', hashKey: HASH_KEY });
      try {
        assert.equal((await stores.keys.verify(made.key))?.id, made.id);
      } finally {
        await stores.close();
      }
      assert.equal(JSON.parse((await cli('usage', made.id)).stdout).generations, 0);
      assert.ok(!fs.existsSync(path.join(dataDir, 'server.sqlite')), 'no SQLite file was made');
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
