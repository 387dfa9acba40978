/**
 * The webhook outbox in Postgres, shared by every process that runs a webhook dispatcher. The job store inserts
 * rows with the state change they announce; this side hands out what is due and records each attempt's outcome.
 *
 * Several dispatchers (one per API process) read the same table, so `due()` leases what it returns: each row is
 * marked with this outbox instance's id and a time (`leaseMs` ahead) until which no other instance takes it.
 * Rows are picked with `FOR UPDATE SKIP LOCKED`, so two instances asking at the same moment get different rows.
 * An instance sees its own leased rows as due still, exactly as the SQLite outbox shows a delivery in flight
 * (the dispatcher skips the ones it is sending), which keeps the dispatcher's contract unchanged. Recording an
 * outcome ends the lease; a process that dies mid-send leaves its lease to expire, and the delivery is then
 * sent by another (at-least-once, as before: the receiver drops duplicates by webhook-id).
 *
 * Every update is guarded by `status = 'pending'`: a delivery that reached delivered or failed stays there.
 */
import crypto from 'node:crypto';
import type pg from 'pg';
import type { WebhookOutbox } from '../ports.ts';
import { toDelivery, type WebhookRow } from '../webhook-rows.ts';

/**
 * How long a leased delivery is this instance's: well above one attempt (the dispatcher's timeout, 10 s by
 * default, plus rendering and signing), so a live sender never loses a delivery to another; also how long a
 * dead process's deliveries wait before another process sends them.
 */
export const DEFAULT_WEBHOOK_LEASE_MS = 60_000;

type Row = WebhookRow;

const byDueOrder = (a: Row, b: Row) =>
  a.next_attempt_at_ms - b.next_attempt_at_ms || a.created_at_ms - b.created_at_ms || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

const COLUMNS = 'id, job_id, key_id, url, event_type, created_at_ms, attempts, next_attempt_at_ms, status, last_error, last_status';

export interface PostgresWebhookOutboxOptions {
  leaseMs?: number;
  /** This instance's lease holder id; a random one by default (one per outbox, i.e. per process). */
  instanceId?: string;
}

export function createPostgresWebhookOutbox(pool: pg.Pool, options: PostgresWebhookOutboxOptions = {}): WebhookOutbox {
  const leaseMs = options.leaseMs ?? DEFAULT_WEBHOOK_LEASE_MS;
  const me = options.instanceId ?? `outbox_${crypto.randomUUID()}`;

  async function record(sql: string, values: unknown[]): Promise<void> {
    await pool.query(sql, values);
  }

  return {
    async due(nowMs, limit) {
      const { rows } = await pool.query<Row>(
        `UPDATE webhook_deliveries SET leased_by = $1, leased_until_ms = $2 + $3::bigint
          WHERE id IN (
            SELECT id FROM webhook_deliveries
             WHERE status = 'pending' AND next_attempt_at_ms <= $2
               AND (leased_by IS NULL OR leased_by = $1 OR leased_until_ms <= $2)
             ORDER BY next_attempt_at_ms, created_at_ms, id
             LIMIT $4
             FOR UPDATE SKIP LOCKED
          )
          RETURNING ${COLUMNS}`,
        [me, nowMs, leaseMs, limit],
      );
      // UPDATE ... RETURNING has no order: the longest-waiting first, as the SQLite outbox returns them.
      return rows.sort(byDueOrder).map(toDelivery);
    },
    async nextDueAtMs() {
      // Another instance's lease defers a delivery until it expires; this instance's own leases do not.
      const { rows } = await pool.query<{ at: number | null }>(
        `SELECT MIN(CASE WHEN leased_by IS NULL OR leased_by = $1 THEN next_attempt_at_ms
                         ELSE GREATEST(next_attempt_at_ms, leased_until_ms) END) AS at
           FROM webhook_deliveries WHERE status = 'pending'`,
        [me],
      );
      return rows[0]?.at ?? null;
    },
    async markDelivered(id, attempts, httpStatus) {
      await record(
        `UPDATE webhook_deliveries SET status = 'delivered', attempts = $1, last_status = $2, last_error = NULL, leased_by = NULL, leased_until_ms = NULL
          WHERE id = $3 AND status = 'pending'`,
        [attempts, httpStatus, id],
      );
    },
    async markRetry(id, attempts, nextAttemptAtMs, error, httpStatus) {
      await record(
        `UPDATE webhook_deliveries SET attempts = $1, next_attempt_at_ms = $2, last_error = $3, last_status = $4, leased_by = NULL, leased_until_ms = NULL
          WHERE id = $5 AND status = 'pending'`,
        [attempts, nextAttemptAtMs, error, httpStatus, id],
      );
    },
    async markFailed(id, attempts, error, httpStatus) {
      await record(
        `UPDATE webhook_deliveries SET status = 'failed', attempts = $1, last_error = $2, last_status = $3, leased_by = NULL, leased_until_ms = NULL
          WHERE id = $4 AND status = 'pending'`,
        [attempts, error, httpStatus, id],
      );
    },
    async listForJob(jobId) {
      return (await pool.query<Row>(`SELECT ${COLUMNS} FROM webhook_deliveries WHERE job_id = $1 ORDER BY created_at_ms, id`, [jobId])).rows.map(toDelivery);
    },
  };
}
