/**
 * The one place that chooses where state lives: Postgres when a database URL is given (several processes
 * share it), otherwise the server's SQLite file. Both give the same ports, pass the same conformance suites
 * (store/testing/store-conformance.ts, jobs/testing/job-store-conformance.ts) and migrate their schema on open.
 * The job queue is not here: it is Redis or the embedded queue (the latter lives in the SQLite file, hence
 * `sqliteDb`).
 */
import type { KeyStore, MarkLedger, UsageStore } from '../domain/ports.ts';
import type { JobStore, WebhookOutbox } from '../jobs/ports.ts';
import type { LimitUsageSource } from '../limits/ports.ts';
import type { PromptCache } from '../prompt/types.ts';
import { createPostgresJobStore } from '../jobs/postgres/job-store.ts';
import { createPostgresWebhookOutbox } from '../jobs/postgres/webhook-outbox.ts';
import { createSqliteJobStore } from '../jobs/sqlite/job-store.ts';
import { createSqliteWebhookOutbox } from '../jobs/sqlite/webhook-outbox.ts';
import { createPostgresKeyStore } from './postgres/key-store.ts';
import { createPostgresLimitUsage } from './postgres/limit-usage.ts';
import { createPostgresMarkLedger } from './postgres/mark-ledger.ts';
import { migratePostgres } from './postgres/migrations.ts';
import { createPostgresPool } from './postgres/pool.ts';
import { createPostgresPromptCache } from './postgres/prompt-cache.ts';
import { createPostgresUsageStore } from './postgres/usage-store.ts';
import { openDatabase, type SqliteDatabase } from './sqlite/database.ts';
import { createSqliteKeyStore } from './sqlite/key-store.ts';
import { createSqliteLimitUsage } from './sqlite/limit-usage.ts';
import { createSqliteMarkLedger } from './sqlite/mark-ledger.ts';
import { createSqlitePromptCache } from './sqlite/prompt-cache.ts';
import { createSqliteUsageStore } from './sqlite/usage-store.ts';

export interface Stores {
  kind: 'sqlite' | 'postgres';
  keys: KeyStore;
  usage: UsageStore;
  markLedger: MarkLedger;
  promptCache: PromptCache;
  limitUsage: LimitUsageSource;
  jobStore: JobStore;
  webhookOutbox: WebhookOutbox;
  /** Makes the env keys exactly API_KEYS (users) and ADMIN_API_KEYS (admins); see SqliteKeyStore.syncEnvKeys. */
  syncEnvKeys(apiKeys: string[], adminApiKeys: string[]): Promise<void>;
  /** Resolves when the database answers a trivial query (health checks); rejects with its error otherwise. */
  ping(): Promise<void>;
  /** Closes the database (the SQLite file, or every pooled Postgres connection). */
  close(): Promise<void>;
  /** The SQLite database, for the embedded job queue; only when kind is 'sqlite'. */
  sqliteDb?: SqliteDatabase;
}

export interface OpenStoresOptions {
  /** postgres:// or postgresql:// (config.database.url); undefined → SQLite at sqlitePath. */
  databaseUrl?: string;
  /** The SQLite file (DATA_DIR/server.sqlite); used when there is no databaseUrl. */
  sqlitePath: string;
  /** The HMAC key of stored API-key hashes (store/key-hash-secret.ts); every process must use the same one. */
  hashKey: Buffer;
  /** Postgres connections per process (default 10). */
  poolMax?: number;
  /** How long a webhook delivery handed to this process's dispatcher is its own (Postgres; default 60 s). */
  webhookLeaseMs?: number;
  /** Errors of idle pooled Postgres connections (server restart, network cut), for the log. */
  onDatabaseError?: (err: Error) => void;
}

export async function openStores(options: OpenStoresOptions): Promise<Stores> {
  return options.databaseUrl === undefined ? openSqliteStores(options) : openPostgresStores(options.databaseUrl, options);
}

function openSqliteStores(options: OpenStoresOptions): Stores {
  const db = openDatabase(options.sqlitePath);
  const keys = createSqliteKeyStore(db, { hashKey: options.hashKey });
  const ping = db.prepare('SELECT 1');
  return {
    kind: 'sqlite',
    keys,
    usage: createSqliteUsageStore(db),
    markLedger: createSqliteMarkLedger(db),
    promptCache: createSqlitePromptCache(db),
    limitUsage: createSqliteLimitUsage(db),
    jobStore: createSqliteJobStore(db),
    webhookOutbox: createSqliteWebhookOutbox(db),
    async syncEnvKeys(apiKeys, adminApiKeys) {
      keys.syncEnvKeys(apiKeys, adminApiKeys);
    },
    async ping() {
      ping.get();
    },
    async close() {
      if (db.open) db.close();
    },
    sqliteDb: db,
  };
}

async function openPostgresStores(url: string, options: OpenStoresOptions): Promise<Stores> {
  if (!/^postgres(ql)?:\/\//i.test(url)) throw new Error('the database URL must start with postgres:// or postgresql://');
  const pool = createPostgresPool(url, { max: options.poolMax, onIdleError: options.onDatabaseError });
  try {
    await migratePostgres(pool, url);
  } catch (err) {
    await pool.end();
    throw err;
  }
  const keys = createPostgresKeyStore(pool, { hashKey: options.hashKey });
  let closing: Promise<void> | null = null;
  return {
    kind: 'postgres',
    keys,
    usage: createPostgresUsageStore(pool),
    markLedger: createPostgresMarkLedger(pool),
    promptCache: createPostgresPromptCache(pool),
    limitUsage: createPostgresLimitUsage(pool),
    jobStore: createPostgresJobStore(pool),
    webhookOutbox: createPostgresWebhookOutbox(pool, { leaseMs: options.webhookLeaseMs }),
    syncEnvKeys: (apiKeys, adminApiKeys) => keys.syncEnvKeys(apiKeys, adminApiKeys),
    async ping() {
      await pool.query('SELECT 1');
    },
    close() {
      closing ??= pool.end();
      return closing;
    },
  };
}
