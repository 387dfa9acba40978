/**
 * The Postgres schema as numbered migrations, applied at start. Each applied migration is a row of
 * `schema_migrations`; the schema version is the highest. A database of a newer version than this build
 * knows (written by a newer release) is refused, as the SQLite file is (store/sqlite/database.ts).
 *
 * Several processes (API and worker roles) start against one database: the migrations run in one
 * transaction under a transaction-scoped advisory lock, so exactly one process migrates and the others,
 * waiting on the lock, then find the schema current. A migration that fails rolls back entirely.
 *
 * Conventions, the same as the SQLite schema's so the stores read alike: times are BIGINT ms since the epoch,
 * JSON documents are TEXT (kept byte for byte: jsonb would reorder the keys of a stored response body), money
 * is whole credits and micro-USD in BIGINT columns (domain/money.ts).
 */
import type pg from 'pg';
import { describeDatabaseUrl, inTransaction } from './pool.ts';

/** An arbitrary constant naming "this schema's migrations" among advisory locks; the same in every release. */
const MIGRATION_LOCK_ID = 716_973_001;

const MIGRATIONS: string[] = [
  // 1: everything the SQLite file held at its version 6, less the embedded job queue (a shared queue is Redis).
  // Key hashes are HMAC-SHA256 from the start, so there is no hash_kind column. webhook_deliveries gains a lease
  // (leased_by, leased_until_ms): several dispatchers share the outbox without sending one delivery twice.
  `CREATE TABLE api_keys (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     prefix TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,            -- HMAC-SHA256 of the secret under KEY_HASH_SECRET, hex
     source TEXT NOT NULL CHECK (source IN ('env', 'cli')),
     role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
     created_at_ms BIGINT NOT NULL,
     revoked_at_ms BIGINT,
     revoked_by TEXT CHECK (revoked_by IN ('cli', 'env')),
     limit_rpm BIGINT,                     -- NULL: the server's KEY_DEFAULT_*; -1: no limit
     limit_concurrent BIGINT,
     limit_daily_credits BIGINT,
     limit_monthly_credits BIGINT,
     webhook_secret TEXT,                  -- whsec_...: HMAC key, must be readable to sign
     webhook_url TEXT,
     webhook_events TEXT                   -- JSON array
   );

   CREATE TABLE usage_ledger (
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     key_id TEXT NOT NULL,
     job_id TEXT UNIQUE,                   -- one row per succeeded job: the constraint that charges once
     request_id TEXT NOT NULL,
     model TEXT NOT NULL,
     width INTEGER NOT NULL,
     height INTEGER NOT NULL,
     seed BIGINT NOT NULL,
     credits BIGINT NOT NULL,              -- whole credits
     usd_micros BIGINT NOT NULL,           -- micro-USD (1e-6 USD)
     created_at_ms BIGINT NOT NULL,
     watermark_issuer_id BIGINT,
     watermark_generation_id BIGINT
   );
   CREATE INDEX usage_ledger_key ON usage_ledger (key_id, created_at_ms);
   CREATE INDEX usage_ledger_watermark ON usage_ledger (watermark_generation_id, watermark_issuer_id)
     WHERE watermark_generation_id IS NOT NULL;

   CREATE TABLE jobs (
     seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- creation order: the list cursor
     id TEXT NOT NULL UNIQUE,
     key_id TEXT NOT NULL,
     request_id TEXT NOT NULL,
     model TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
     params TEXT NOT NULL,                 -- JSON JobParams
     webhook TEXT,                         -- JSON JobWebhook
     created_at_ms BIGINT NOT NULL,
     started_at_ms BIGINT,
     completed_at_ms BIGINT,
     attempts INTEGER NOT NULL DEFAULT 0,
     progress TEXT,                        -- JSON JobProgress
     result TEXT,                          -- JSON: the synchronous response body
     error TEXT,                           -- JSON JobError
     output_keys TEXT NOT NULL DEFAULT '[]',
     timings TEXT
   );
   CREATE INDEX jobs_key ON jobs (key_id, seq);
   CREATE INDEX jobs_status ON jobs (status, completed_at_ms);
   CREATE INDEX jobs_key_status ON jobs (key_id, status);

   CREATE TABLE idempotency_keys (
     key_id TEXT NOT NULL,
     idem_key TEXT NOT NULL,
     body_hash TEXT NOT NULL,
     job_id TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL,
     PRIMARY KEY (key_id, idem_key)        -- two concurrent claims of one key: the second waits, then sees the first
   );
   CREATE INDEX idempotency_job ON idempotency_keys (job_id);

   CREATE TABLE webhook_deliveries (
     id TEXT PRIMARY KEY,                  -- msg_<uuid>: the webhook-id header, the same on every retry
     job_id TEXT NOT NULL,
     key_id TEXT NOT NULL,
     url TEXT NOT NULL,
     event_type TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at_ms BIGINT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
     last_error TEXT,
     last_status INTEGER,
     leased_by TEXT,                       -- the outbox instance sending it now
     leased_until_ms BIGINT                -- after this, another instance may take it (its sender died)
   );
   CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at_ms);
   CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);

   CREATE TABLE prompt_cache (
     key TEXT PRIMARY KEY,                 -- promptCacheKey(): sha256 hex
     value TEXT NOT NULL,                  -- the accepted rewrite
     created_at_ms BIGINT NOT NULL
   );`,
];

/** The schema version this build writes: the number of migrations it knows. */
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

export interface MigrationOutcome {
  /** The version found before migrating (0: a new database). */
  from: number;
  to: number;
}

/**
 * Brings the database to this build's schema version, or throws when it is newer. `url` only names the
 * database in the refusal (without its password).
 */
export async function migratePostgres(pool: pg.Pool, url: string, migrations: readonly string[] = MIGRATIONS): Promise<MigrationOutcome> {
  // Checked first so that an unreachable server reads as that, not as a failed migration.
  await pool.query('SELECT 1').catch((err: Error) => {
    throw new Error(`could not connect to ${describeDatabaseUrl(url)}: ${err.message}`, { cause: err });
  });
  return inTransaction(pool, async (client) => {
    // Held to the end of this transaction; a second process starting now waits here, then sees the result.
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version INTEGER PRIMARY KEY,
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    );
    const found = (await client.query<{ version: number | null }>('SELECT MAX(version) AS version FROM schema_migrations')).rows[0]?.version ?? 0;
    if (found > migrations.length) {
      throw new Error(
        `${describeDatabaseUrl(url)} has schema version ${found}, newer than this server's ${migrations.length}: it was written by a newer release; run that release, or restore a backup made for this one`,
      );
    }
    for (let v = found; v < migrations.length; v++) {
      await client.query(migrations[v]!);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v + 1]);
    }
    return { from: found, to: migrations.length };
  });
}
