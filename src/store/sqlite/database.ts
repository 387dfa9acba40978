/**
 * Opens the SQLite database file (WAL) and applies the schema: numbered migrations, the version kept in
 * `PRAGMA user_version`; a file of a newer version than this build knows is refused.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';

export type SqliteDatabase = Database.Database;

const MIGRATIONS: string[] = [
  `CREATE TABLE IF NOT EXISTS api_keys (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     prefix TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,          -- SHA-256 of the secret, hex; the secret itself is never stored
     source TEXT NOT NULL CHECK (source IN ('env', 'cli')),
     created_at_ms INTEGER NOT NULL,
     revoked_at_ms INTEGER
   );
   CREATE TABLE IF NOT EXISTS usage_ledger (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     key_id TEXT NOT NULL,
     request_id TEXT NOT NULL UNIQUE,
     model TEXT NOT NULL,
     width INTEGER NOT NULL,
     height INTEGER NOT NULL,
     seed INTEGER NOT NULL,
     credits REAL NOT NULL,
     usd REAL NOT NULL,
     created_at_ms INTEGER NOT NULL
   );
   CREATE INDEX IF NOT EXISTS usage_ledger_key ON usage_ledger (key_id, created_at_ms);`,
  // 2: jobs. The ledger is keyed by job (one row per succeeded job); the request id is only a log
  // correlation id, so it loses its UNIQUE constraint (SQLite cannot drop one: the table is rebuilt).
  `CREATE TABLE usage_ledger_v2 (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     key_id TEXT NOT NULL,
     job_id TEXT UNIQUE,                 -- NULL for rows written before jobs existed
     request_id TEXT NOT NULL,
     model TEXT NOT NULL,
     width INTEGER NOT NULL,
     height INTEGER NOT NULL,
     seed INTEGER NOT NULL,
     credits REAL NOT NULL,
     usd REAL NOT NULL,
     created_at_ms INTEGER NOT NULL
   );
   INSERT INTO usage_ledger_v2 (id, key_id, job_id, request_id, model, width, height, seed, credits, usd, created_at_ms)
     SELECT id, key_id, NULL, request_id, model, width, height, seed, credits, usd, created_at_ms FROM usage_ledger;
   DROP TABLE usage_ledger;
   ALTER TABLE usage_ledger_v2 RENAME TO usage_ledger;
   CREATE INDEX usage_ledger_key ON usage_ledger (key_id, created_at_ms);

   CREATE TABLE jobs (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order: the list cursor
     id TEXT NOT NULL UNIQUE,
     key_id TEXT NOT NULL,
     request_id TEXT NOT NULL,
     model TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
     params TEXT NOT NULL,                   -- JSON JobParams
     webhook TEXT,                           -- JSON JobWebhook
     created_at_ms INTEGER NOT NULL,
     started_at_ms INTEGER,
     completed_at_ms INTEGER,
     attempts INTEGER NOT NULL DEFAULT 0,
     progress TEXT,                          -- JSON JobProgress
     result TEXT,                            -- JSON: the synchronous response body
     error TEXT,                             -- JSON JobError
     output_keys TEXT NOT NULL DEFAULT '[]', -- JSON array of blob keys
     timings TEXT                            -- JSON ms per stage
   );
   CREATE INDEX jobs_key ON jobs (key_id, seq);
   CREATE INDEX jobs_status ON jobs (status, completed_at_ms);

   CREATE TABLE job_queue (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     job_id TEXT NOT NULL UNIQUE,
     model TEXT NOT NULL
   );
   CREATE INDEX job_queue_model ON job_queue (model, seq);

   CREATE TABLE idempotency_keys (
     key_id TEXT NOT NULL,
     idem_key TEXT NOT NULL,
     body_hash TEXT NOT NULL,
     job_id TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     PRIMARY KEY (key_id, idem_key)
   );
   CREATE INDEX idempotency_job ON idempotency_keys (job_id);

   CREATE TABLE webhook_deliveries (
     id TEXT PRIMARY KEY,                    -- msg_<uuid>: the webhook-id header, the same on every retry
     job_id TEXT NOT NULL,
     key_id TEXT NOT NULL,
     url TEXT NOT NULL,
     event_type TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at_ms INTEGER NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
     last_error TEXT,
     last_status INTEGER
   );
   CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at_ms);
   CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);

   ALTER TABLE api_keys ADD COLUMN webhook_secret TEXT;   -- whsec_...: HMAC key, must be readable to sign
   ALTER TABLE api_keys ADD COLUMN webhook_url TEXT;      -- the key's default webhook
   ALTER TABLE api_keys ADD COLUMN webhook_events TEXT;   -- JSON array`,
  // 3: who revoked a key. 'env': syncEnvKeys, because the key left API_KEYS (undone when it is listed again);
  // 'cli': the operator (never undone). Keys revoked before this column existed keep NULL, read as the
  // operator's choice: un-revoking a key someone meant to kill is the worse mistake. Env keys' prefixes held up
  // to 8 characters of an operator-chosen secret, so they are blanked (the key's id names it).
  `ALTER TABLE api_keys ADD COLUMN revoked_by TEXT CHECK (revoked_by IN ('cli', 'env'));
   UPDATE api_keys SET prefix = '' WHERE source = 'env';`,
  // 4: roles, per-key limits and keyed hashes. Every existing key becomes a 'user' (ADMIN_API_KEYS makes env keys
  // admins again at the next start). Limits: NULL follows the server's KEY_DEFAULT_* setting, -1 is "no limit".
  // Hashes written so far are plain SHA-256 ('sha256'); without the secrets they cannot be re-hashed here, so the
  // key store accepts both and re-hashes a row with HMAC-SHA256 the first time its secret is presented.
  `ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user'));
   ALTER TABLE api_keys ADD COLUMN hash_kind TEXT NOT NULL DEFAULT 'sha256' CHECK (hash_kind IN ('sha256', 'hmac-sha256'));
   ALTER TABLE api_keys ADD COLUMN limit_rpm INTEGER;
   ALTER TABLE api_keys ADD COLUMN limit_concurrent INTEGER;
   ALTER TABLE api_keys ADD COLUMN limit_daily_credits INTEGER;
   ALTER TABLE api_keys ADD COLUMN limit_monthly_credits INTEGER;
   CREATE INDEX IF NOT EXISTS jobs_key_status ON jobs (key_id, status);`,
  // 5: the invisible mark each ledger row's image carries (NULL: unmarked, or written before this column), so a
  // mark found in a stripped copy traces back to its job and key (provenance/trace-mark.ts). The ledger, not the
  // jobs table, because jobs are deleted after JOB_RETENTION and the ledger keeps its rows.
  `ALTER TABLE usage_ledger ADD COLUMN watermark_issuer_id INTEGER;
   ALTER TABLE usage_ledger ADD COLUMN watermark_generation_id INTEGER;
   CREATE INDEX usage_ledger_watermark ON usage_ledger (watermark_generation_id, watermark_issuer_id)
     WHERE watermark_generation_id IS NOT NULL;`,
  // 6: money as integers (domain/money.ts). The ledger held REAL USD and REAL credits, each rounded where it was
  // computed; it now holds whole micro-USD (usd_micros) and whole credits, so sums are exact. SQLite cannot change
  // a column's type: the table is rebuilt, each amount rounded to the nearest whole unit.
  `CREATE TABLE usage_ledger_v6 (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     key_id TEXT NOT NULL,
     job_id TEXT UNIQUE,
     request_id TEXT NOT NULL,
     model TEXT NOT NULL,
     width INTEGER NOT NULL,
     height INTEGER NOT NULL,
     seed INTEGER NOT NULL,
     credits INTEGER NOT NULL,           -- whole credits
     usd_micros INTEGER NOT NULL,        -- micro-USD (1e-6 USD)
     created_at_ms INTEGER NOT NULL,
     watermark_issuer_id INTEGER,
     watermark_generation_id INTEGER
   );
   INSERT INTO usage_ledger_v6 (id, key_id, job_id, request_id, model, width, height, seed, credits, usd_micros, created_at_ms, watermark_issuer_id, watermark_generation_id)
     SELECT id, key_id, job_id, request_id, model, width, height, seed, CAST(ROUND(credits) AS INTEGER), CAST(ROUND(usd * 1000000) AS INTEGER),
            created_at_ms, watermark_issuer_id, watermark_generation_id
     FROM usage_ledger;
   DROP TABLE usage_ledger;
   ALTER TABLE usage_ledger_v6 RENAME TO usage_ledger;
   CREATE INDEX usage_ledger_key ON usage_ledger (key_id, created_at_ms);
   CREATE INDEX usage_ledger_watermark ON usage_ledger (watermark_generation_id, watermark_issuer_id)
     WHERE watermark_generation_id IS NOT NULL;`,
];

/** The schema version this build writes: the number of migrations it knows. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

export function openDatabase(file: string): SqliteDatabase {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // FULL: a ledger row is on disk before the response that reports the charge is sent.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    db.close();
    throw new Error(`${file} has schema version ${version}, newer than this server's ${MIGRATIONS.length}: it was written by a newer release; run that release, or restore a backup made for this one`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return db;
}
