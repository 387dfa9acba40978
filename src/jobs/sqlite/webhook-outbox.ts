/**
 * The webhook outbox over the `webhook_deliveries` table of the server's SQLite file. The job store
 * inserts rows in the same transaction as the state change they announce; this side only reads what
 * is due and records the outcome of each attempt.
 *
 * Every update is guarded by `status = 'pending'`: a delivery that has reached delivered or failed
 * stays there, even if a late attempt (another process, a send that outlived a restart) reports back.
 */
import type { WebhookOutbox } from '../ports.ts';
import { toDelivery, type WebhookRow } from '../webhook-rows.ts';
import type { SqliteDatabase } from '../../store/sqlite/database.ts';

type Row = WebhookRow;

export function createSqliteWebhookOutbox(db: SqliteDatabase): WebhookOutbox {
  // Ordered by due time (the webhook_deliveries_due index), then creation: the longest-waiting first.
  const due = db.prepare(
    `SELECT * FROM webhook_deliveries
      WHERE status = 'pending' AND next_attempt_at_ms <= ?
      ORDER BY next_attempt_at_ms, created_at_ms, id
      LIMIT ?`,
  );
  const nextDue = db.prepare(`SELECT MIN(next_attempt_at_ms) AS at FROM webhook_deliveries WHERE status = 'pending'`);
  const delivered = db.prepare(
    `UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, last_status = ?, last_error = NULL
      WHERE id = ? AND status = 'pending'`,
  );
  const retry = db.prepare(
    `UPDATE webhook_deliveries SET attempts = ?, next_attempt_at_ms = ?, last_error = ?, last_status = ?
      WHERE id = ? AND status = 'pending'`,
  );
  const failed = db.prepare(
    `UPDATE webhook_deliveries SET status = 'failed', attempts = ?, last_error = ?, last_status = ?
      WHERE id = ? AND status = 'pending'`,
  );
  const forJob = db.prepare(`SELECT * FROM webhook_deliveries WHERE job_id = ? ORDER BY created_at_ms, id`);

  return {
    async due(nowMs, limit) {
      return (due.all(nowMs, limit) as Row[]).map(toDelivery);
    },
    async nextDueAtMs() {
      return (nextDue.get() as { at: number | null }).at;
    },
    async markDelivered(id, attempts, httpStatus) {
      delivered.run(attempts, httpStatus, id);
    },
    async markRetry(id, attempts, nextAttemptAtMs, error, httpStatus) {
      retry.run(attempts, nextAttemptAtMs, error, httpStatus, id);
    },
    async markFailed(id, attempts, error, httpStatus) {
      failed.run(attempts, error, httpStatus, id);
    },
    async listForJob(jobId) {
      return (forJob.all(jobId) as Row[]).map(toDelivery);
    },
  };
}
