/**
 * JobStore on SQLite, in the server's one database file (tables from migration 2 in
 * store/sqlite/database.ts). better-sqlite3 is synchronous, so each method is one short transaction;
 * the state changes that must be atomic with another write (the ledger row on success, the webhook
 * delivery for a subscribed state) happen inside the same transaction.
 */
import crypto from 'node:crypto';
import { usdToMicros, wholeCredits } from '../../domain/money.ts';
import type { UsageEntry } from '../../domain/ports.ts';
import { webhookWants, type JobError, type JobRecord, type JobStatus, type JobWebhook, type NewJob } from '../../domain/jobs.ts';
import type { SqliteDatabase } from '../../store/sqlite/database.ts';
import { decodeCursor, encodeCursor, parse, toRecord, type JobRow } from '../job-rows.ts';
import type { CreateJobOutcome, IdempotencyClaim, JobPage, JobStore, ListJobsQuery, SucceedJob } from '../ports.ts';

export interface SqliteJobStoreOptions {
  now?: () => number;
}

export function createSqliteJobStore(db: SqliteDatabase, options: SqliteJobStoreOptions = {}): JobStore {
  const now = options.now ?? Date.now;
  const insertJob = db.prepare(
    `INSERT INTO jobs (id, key_id, request_id, model, status, params, webhook, created_at_ms)
     VALUES (@id, @keyId, @requestId, @model, 'queued', @params, @webhook, @createdAtMs)`,
  );
  const byId = db.prepare(`SELECT * FROM jobs WHERE id = ?`);
  const findIdem = db.prepare(`SELECT body_hash, job_id FROM idempotency_keys WHERE key_id = ? AND idem_key = ?`);
  const insertIdem = db.prepare(
    `INSERT INTO idempotency_keys (key_id, idem_key, body_hash, job_id, created_at_ms) VALUES (?, ?, ?, ?, ?)`,
  );
  const toRunning = db.prepare(
    `UPDATE jobs SET status = 'running', started_at_ms = ?, attempts = attempts + 1, progress = NULL
     WHERE id = ? AND status = 'queued'`,
  );
  // A run's writes apply only to its own attempt (ports.ts: the fence).
  const setProgress = db.prepare(`UPDATE jobs SET progress = ? WHERE id = ? AND status = 'running' AND attempts = ?`);
  const toSucceeded = db.prepare(
    `UPDATE jobs SET status = 'succeeded', completed_at_ms = ?, result = ?, output_keys = ?, timings = ?, progress = NULL
     WHERE id = ? AND status = 'running' AND attempts = ?`,
  );
  const insertUsage = db.prepare(
    `INSERT INTO usage_ledger (key_id, job_id, request_id, model, width, height, seed, credits, usd_micros, created_at_ms, watermark_issuer_id, watermark_generation_id)
     VALUES (@keyId, @jobId, @requestId, @model, @width, @height, @seed, @credits, @usdMicros, @createdAtMs, @watermarkIssuerId, @watermarkGenerationId)`,
  );
  const toFailed = db.prepare(
    `UPDATE jobs SET status = 'failed', completed_at_ms = @atMs, error = @error, progress = NULL
     WHERE id = @id AND (@attempt IS NULL AND status IN ('queued', 'running') OR status = 'running' AND attempts = @attempt)`,
  );
  const toCanceled = db.prepare(
    `UPDATE jobs SET status = 'canceled', completed_at_ms = ?, progress = NULL WHERE id = ? AND status IN ('queued', 'running')`,
  );
  const reclaimRunning = db.prepare(
    `UPDATE jobs SET started_at_ms = ?, attempts = attempts + 1, progress = NULL WHERE id = ? AND status = 'running'`,
  );
  const toQueued = db.prepare(`UPDATE jobs SET status = 'queued', started_at_ms = NULL, progress = NULL WHERE id = ? AND status = 'running'`);
  const byStatus = db.prepare(`SELECT * FROM jobs WHERE status = ? ORDER BY seq`);
  const expired = db.prepare(
    `SELECT * FROM jobs WHERE status IN ('succeeded', 'failed', 'canceled') AND completed_at_ms < ? ORDER BY completed_at_ms LIMIT ?`,
  );
  const deleteJob = db.prepare(`DELETE FROM jobs WHERE id = ?`);
  const deleteIdem = db.prepare(`DELETE FROM idempotency_keys WHERE job_id = ?`);
  const insertDelivery = db.prepare(
    `INSERT INTO webhook_deliveries (id, job_id, key_id, url, event_type, created_at_ms, attempts, next_attempt_at_ms, status)
     VALUES (?, ?, ?, ?, ?, ?, 0, ?, 'pending')`,
  );
  const webhookOf = db.prepare(`SELECT webhook, key_id FROM jobs WHERE id = ?`);
  const allOutputs = db.prepare(`SELECT output_keys FROM jobs WHERE output_keys != '[]'`);

  /** Inside a transaction: the outbox row for a webhook subscribed to the state the job just entered. */
  function enqueueWebhook(jobId: string, status: JobStatus, atMs: number): void {
    const row = webhookOf.get(jobId) as { webhook: string | null; key_id: string } | undefined;
    const hook = parse<JobWebhook>(row?.webhook ?? null);
    if (!row || !hook || !webhookWants(hook.events, status)) return;
    insertDelivery.run(`msg_${crypto.randomUUID()}`, jobId, row.key_id, hook.url, `job.${status}`, atMs, atMs);
  }

  const create = db.transaction((job: NewJob, idem: IdempotencyClaim | undefined): CreateJobOutcome => {
    if (idem) {
      const seen = findIdem.get(idem.keyId, idem.key) as { body_hash: string; job_id: string } | undefined;
      if (seen) {
        if (seen.body_hash !== idem.bodyHash) return { kind: 'conflict', jobId: seen.job_id };
        const existing = byId.get(seen.job_id) as JobRow | undefined;
        if (existing) return { kind: 'existing', job: toRecord(existing) };
      }
    }
    insertJob.run({
      id: job.id,
      keyId: job.keyId,
      requestId: job.requestId,
      model: job.params.model,
      params: JSON.stringify(job.params),
      webhook: job.webhook ? JSON.stringify(job.webhook) : null,
      createdAtMs: job.createdAtMs,
    });
    if (idem) {
      // A record whose job was deleted by retention is replaced by the new job.
      db.prepare(`DELETE FROM idempotency_keys WHERE key_id = ? AND idem_key = ?`).run(idem.keyId, idem.key);
      insertIdem.run(idem.keyId, idem.key, idem.bodyHash, job.id, job.createdAtMs);
    }
    return { kind: 'created', job: toRecord(byId.get(job.id) as JobRow) };
  });

  const succeed = db.transaction((id: string, o: SucceedJob, usage: UsageEntry & { jobId: string }): boolean => {
    const changed = toSucceeded.run(o.completedAtMs, JSON.stringify(o.result), JSON.stringify(o.outputKeys), JSON.stringify(o.timings), id, o.attempt).changes;
    if (changed === 0) return false;
    const { watermark, usd, credits, ...row } = usage;
    insertUsage.run({
      ...row,
      credits: wholeCredits(credits),
      usdMicros: usdToMicros(usd),
      watermarkIssuerId: watermark?.issuerId ?? null,
      watermarkGenerationId: watermark?.generationId ?? null,
    });
    enqueueWebhook(id, 'succeeded', o.completedAtMs);
    return true;
  });

  const fail = db.transaction((id: string, error: JobError, atMs: number, attempt: number | null): boolean => {
    if (toFailed.run({ atMs, error: JSON.stringify(error), id, attempt }).changes === 0) return false;
    enqueueWebhook(id, 'failed', atMs);
    return true;
  });

  const cancel = db.transaction((id: string, atMs: number): JobRecord | null => {
    if (toCanceled.run(atMs, id).changes > 0) enqueueWebhook(id, 'canceled', atMs);
    const row = byId.get(id) as JobRow | undefined;
    return row ? toRecord(row) : null;
  });

  const markRunning = db.transaction((id: string, atMs: number): JobRecord | null => {
    if (toRunning.run(atMs, id).changes === 0) return null;
    enqueueWebhook(id, 'running', atMs);
    return toRecord(byId.get(id) as JobRow);
  });

  const deleteExpired = db.transaction((beforeMs: number, limit: number): JobRecord[] => {
    const rows = (expired.all(beforeMs, limit) as JobRow[]).map(toRecord);
    for (const job of rows) {
      deleteIdem.run(job.id);
      deleteJob.run(job.id);
    }
    return rows;
  });

  return {
    async create(job, idempotency) {
      return create(job, idempotency);
    },
    async findIdempotent(keyId, key) {
      const row = findIdem.get(keyId, key) as { body_hash: string; job_id: string } | undefined;
      return row ? { bodyHash: row.body_hash, jobId: row.job_id } : null;
    },
    async get(id) {
      const row = byId.get(id) as JobRow | undefined;
      return row ? toRecord(row) : null;
    },
    async list(query: ListJobsQuery): Promise<JobPage> {
      const beforeSeq = query.after === undefined ? Number.MAX_SAFE_INTEGER : decodeCursor(query.after);
      if (beforeSeq === null) return { jobs: [], nextCursor: null };
      const rows = (
        query.status
          ? db.prepare(`SELECT * FROM jobs WHERE key_id = ? AND seq < ? AND status = ? ORDER BY seq DESC LIMIT ?`).all(query.keyId, beforeSeq, query.status, query.limit + 1)
          : db.prepare(`SELECT * FROM jobs WHERE key_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`).all(query.keyId, beforeSeq, query.limit + 1)
      ) as JobRow[];
      const page = rows.slice(0, query.limit);
      return { jobs: page.map(toRecord), nextCursor: rows.length > query.limit ? encodeCursor(page.at(-1)!.seq) : null };
    },
    async markRunning(id, startedAtMs) {
      return markRunning(id, startedAtMs);
    },
    async setProgress(id, progress, attempt) {
      return setProgress.run(JSON.stringify(progress), id, attempt).changes > 0;
    },
    async succeed(id, outcome) {
      return succeed(id, outcome, { ...outcome.usage, jobId: id });
    },
    async fail(id, error, completedAtMs, attempt) {
      return fail(id, error, completedAtMs, attempt);
    },
    async cancel(id, completedAtMs) {
      return cancel(id, completedAtMs ?? now());
    },
    async requeue(id) {
      return toQueued.run(id).changes > 0;
    },
    async reclaim(id, startedAtMs) {
      if (reclaimRunning.run(startedAtMs, id).changes === 0) return null;
      return toRecord(byId.get(id) as JobRow);
    },
    async listByStatus(status) {
      return (byStatus.all(status) as JobRow[]).map(toRecord);
    },
    async deleteCompletedBefore(beforeMs, limit) {
      return deleteExpired(beforeMs, limit);
    },
    async listOutputKeys() {
      const keys = new Set<string>();
      for (const row of allOutputs.iterate() as Iterable<{ output_keys: string }>) {
        for (const key of JSON.parse(row.output_keys) as string[]) keys.add(key);
      }
      return keys;
    },
  };
}
