/**
 * JobStore in Postgres (tables from store/postgres/migrations.ts), for several API and worker processes sharing
 * one database. The same semantics as the SQLite store (jobs/sqlite/job-store.ts), with the atomic writes made
 * safe between processes:
 * - every state change is one `UPDATE ... WHERE status = ...`: Postgres locks the row, so of two processes
 *   changing one job, the second re-checks the status after the first commits and changes nothing;
 * - success and its ledger row, and any state change and its webhook delivery, commit in one transaction;
 *   the ledger's UNIQUE job_id is a second guard against charging twice;
 * - an idempotency claim is an INSERT on the (key_id, idem_key) primary key: a concurrent claim of the same
 *   key waits for the first to commit, then finds its record and answers `existing` (or `conflict`).
 */
import crypto from 'node:crypto';
import type pg from 'pg';
import { usdToMicros, wholeCredits } from '../../domain/money.ts';
import { webhookWants, type JobRecord, type JobStatus, type JobWebhook } from '../../domain/jobs.ts';
import { inTransaction } from '../../store/postgres/pool.ts';
import { decodeCursor, encodeCursor, parse, toRecord, type JobRow } from '../job-rows.ts';
import type { CreateJobOutcome, JobPage, JobStore, ListJobsQuery } from '../ports.ts';

export interface PostgresJobStoreOptions {
  now?: () => number;
}

type Queryable = Pick<pg.PoolClient, 'query'>;

const TERMINAL = `('succeeded', 'failed', 'canceled')`;

export function createPostgresJobStore(pool: pg.Pool, options: PostgresJobStoreOptions = {}): JobStore {
  const now = options.now ?? Date.now;

  async function jobById(db: Queryable, id: string): Promise<JobRecord | null> {
    const row = (await db.query<JobRow>(`SELECT * FROM jobs WHERE id = $1`, [id])).rows[0];
    return row ? toRecord(row) : null;
  }

  /** Inside the transaction of a state change: the outbox row for a webhook subscribed to the state entered. */
  async function enqueueWebhook(db: Queryable, row: Pick<JobRow, 'id' | 'key_id' | 'webhook'>, status: JobStatus, atMs: number): Promise<void> {
    const hook = parse<JobWebhook>(row.webhook);
    if (!hook || !webhookWants(hook.events, status)) return;
    await db.query(
      `INSERT INTO webhook_deliveries (id, job_id, key_id, url, event_type, created_at_ms, attempts, next_attempt_at_ms, status)
       VALUES ($1, $2, $3, $4, $5, $6, 0, $6, 'pending')`,
      [`msg_${crypto.randomUUID()}`, row.id, row.key_id, hook.url, `job.${status}`, atMs],
    );
  }

  /** A state change (an UPDATE ... RETURNING *) and its webhook delivery, in one transaction; the row, or null when nothing changed. */
  async function transition(sql: string, values: unknown[], status: JobStatus, atMs: number): Promise<JobRow | null> {
    return inTransaction(pool, async (client) => {
      const row = (await client.query<JobRow>(sql, values)).rows[0];
      if (!row) return null;
      await enqueueWebhook(client, row, status, atMs);
      return row;
    });
  }

  return {
    async create(job, idem): Promise<CreateJobOutcome> {
      return inTransaction(pool, async (client) => {
        if (idem) {
          // Waits for a concurrent claim of the same key to commit or roll back; then either inserts or sees it.
          const claimed = await client.query(
            `INSERT INTO idempotency_keys (key_id, idem_key, body_hash, job_id, created_at_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key_id, idem_key) DO NOTHING`,
            [idem.keyId, idem.key, idem.bodyHash, job.id, job.createdAtMs],
          );
          if ((claimed.rowCount ?? 0) === 0) {
            const seen = (
              await client.query<{ body_hash: string; job_id: string }>(
                `SELECT body_hash, job_id FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2 FOR UPDATE`,
                [idem.keyId, idem.key],
              )
            ).rows[0]!;
            if (seen.body_hash !== idem.bodyHash) return { kind: 'conflict', jobId: seen.job_id };
            const existing = await jobById(client, seen.job_id);
            if (existing) return { kind: 'existing', job: existing };
            // A record whose job was deleted by retention is replaced by the new job.
            await client.query(`UPDATE idempotency_keys SET body_hash = $3, job_id = $4, created_at_ms = $5 WHERE key_id = $1 AND idem_key = $2`, [
              idem.keyId, idem.key, idem.bodyHash, job.id, job.createdAtMs,
            ]);
          }
        }
        const row = (
          await client.query<JobRow>(
            `INSERT INTO jobs (id, key_id, request_id, model, status, params, webhook, created_at_ms)
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7) RETURNING *`,
            [job.id, job.keyId, job.requestId, job.params.model, JSON.stringify(job.params), job.webhook ? JSON.stringify(job.webhook) : null, job.createdAtMs],
          )
        ).rows[0]!;
        return { kind: 'created', job: toRecord(row) };
      });
    },
    async findIdempotent(keyId, key) {
      const row = (await pool.query<{ body_hash: string; job_id: string }>(`SELECT body_hash, job_id FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2`, [keyId, key])).rows[0];
      return row ? { bodyHash: row.body_hash, jobId: row.job_id } : null;
    },
    async get(id) {
      return jobById(pool, id);
    },
    async list(query: ListJobsQuery): Promise<JobPage> {
      const beforeSeq = query.after === undefined ? Number.MAX_SAFE_INTEGER : decodeCursor(query.after);
      if (beforeSeq === null) return { jobs: [], nextCursor: null };
      const { rows } = query.status
        ? await pool.query<JobRow>(`SELECT * FROM jobs WHERE key_id = $1 AND seq < $2 AND status = $3 ORDER BY seq DESC LIMIT $4`, [query.keyId, beforeSeq, query.status, query.limit + 1])
        : await pool.query<JobRow>(`SELECT * FROM jobs WHERE key_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, [query.keyId, beforeSeq, query.limit + 1]);
      const page = rows.slice(0, query.limit);
      return { jobs: page.map(toRecord), nextCursor: rows.length > query.limit ? encodeCursor(page.at(-1)!.seq) : null };
    },
    async markRunning(id, startedAtMs) {
      const row = await transition(
        `UPDATE jobs SET status = 'running', started_at_ms = $1, attempts = attempts + 1, progress = NULL
         WHERE id = $2 AND status = 'queued' RETURNING *`,
        [startedAtMs, id],
        'running',
        startedAtMs,
      );
      return row ? toRecord(row) : null;
    },
    // A run's writes apply only to its own attempt (ports.ts: the fence).
    async setProgress(id, progress, attempt) {
      const result = await pool.query(`UPDATE jobs SET progress = $1 WHERE id = $2 AND status = 'running' AND attempts = $3`, [JSON.stringify(progress), id, attempt]);
      return (result.rowCount ?? 0) > 0;
    },
    async succeed(id, o) {
      return inTransaction(pool, async (client) => {
        const row = (
          await client.query<JobRow>(
            `UPDATE jobs SET status = 'succeeded', completed_at_ms = $1, result = $2, output_keys = $3, timings = $4, progress = NULL
             WHERE id = $5 AND status = 'running' AND attempts = $6 RETURNING id, key_id, webhook`,
            [o.completedAtMs, JSON.stringify(o.result), JSON.stringify(o.outputKeys), JSON.stringify(o.timings), id, o.attempt],
          )
        ).rows[0];
        if (!row) return false;
        const u = o.usage;
        await client.query(
          `INSERT INTO usage_ledger (key_id, job_id, request_id, model, width, height, seed, credits, usd_micros, created_at_ms, watermark_issuer_id, watermark_generation_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [u.keyId, id, u.requestId, u.model, u.width, u.height, u.seed, wholeCredits(u.credits), usdToMicros(u.usd), u.createdAtMs,
            u.watermark?.issuerId ?? null, u.watermark?.generationId ?? null],
        );
        await enqueueWebhook(client, row, 'succeeded', o.completedAtMs);
        return true;
      });
    },
    async fail(id, error, completedAtMs, attempt) {
      const row = await transition(
        `UPDATE jobs SET status = 'failed', completed_at_ms = $1, error = $2, progress = NULL
         WHERE id = $3 AND ($4::integer IS NULL AND status IN ('queued', 'running') OR status = 'running' AND attempts = $4)
         RETURNING id, key_id, webhook`,
        [completedAtMs, JSON.stringify(error), id, attempt],
        'failed',
        completedAtMs,
      );
      return row !== null;
    },
    async cancel(id, completedAtMs) {
      const atMs = completedAtMs ?? now();
      const row = await transition(
        `UPDATE jobs SET status = 'canceled', completed_at_ms = $1, progress = NULL WHERE id = $2 AND status IN ('queued', 'running') RETURNING *`,
        [atMs, id],
        'canceled',
        atMs,
      );
      return row ? toRecord(row) : jobById(pool, id);
    },
    async requeue(id) {
      const result = await pool.query(`UPDATE jobs SET status = 'queued', started_at_ms = NULL, progress = NULL WHERE id = $1 AND status = 'running'`, [id]);
      return (result.rowCount ?? 0) > 0;
    },
    async reclaim(id, startedAtMs) {
      const row = (
        await pool.query<JobRow>(
          `UPDATE jobs SET started_at_ms = $1, attempts = attempts + 1, progress = NULL WHERE id = $2 AND status = 'running' RETURNING *`,
          [startedAtMs, id],
        )
      ).rows[0];
      return row ? toRecord(row) : null;
    },
    async listByStatus(status) {
      return (await pool.query<JobRow>(`SELECT * FROM jobs WHERE status = $1 ORDER BY seq`, [status])).rows.map(toRecord);
    },
    async deleteCompletedBefore(beforeMs, limit) {
      return inTransaction(pool, async (client) => {
        // SKIP LOCKED: two processes sweeping at once take different rows instead of waiting on each other.
        const { rows } = await client.query<JobRow>(
          `DELETE FROM jobs WHERE id IN (
             SELECT id FROM jobs WHERE status IN ${TERMINAL} AND completed_at_ms < $1
             ORDER BY completed_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED
           ) RETURNING *`,
          [beforeMs, limit],
        );
        if (rows.length > 0) await client.query(`DELETE FROM idempotency_keys WHERE job_id = ANY($1::text[])`, [rows.map((r) => r.id)]);
        // DELETE ... RETURNING has no order: oldest first, as the SQLite store returns them.
        return rows.sort((a, b) => a.completed_at_ms! - b.completed_at_ms! || a.seq - b.seq).map(toRecord);
      });
    },
    async listOutputKeys() {
      const keys = new Set<string>();
      const { rows } = await pool.query<{ output_keys: string }>(`SELECT output_keys FROM jobs WHERE output_keys <> '[]'`);
      for (const row of rows) for (const key of JSON.parse(row.output_keys) as string[]) keys.add(key);
      return keys;
    },
  };
}
