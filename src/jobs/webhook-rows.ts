/** A `webhook_deliveries` row as both stores keep it (SQLite and Postgres share the column names), and its mapping. */
import type { WebhookDelivery } from './ports.ts';

export interface WebhookRow {
  id: string;
  job_id: string;
  key_id: string;
  url: string;
  event_type: string;
  created_at_ms: number;
  attempts: number;
  next_attempt_at_ms: number;
  status: WebhookDelivery['status'];
  last_error: string | null;
  last_status: number | null;
}

export function toDelivery(row: WebhookRow): WebhookDelivery {
  return {
    id: row.id,
    jobId: row.job_id,
    keyId: row.key_id,
    url: row.url,
    eventType: row.event_type,
    createdAtMs: row.created_at_ms,
    attempts: row.attempts,
    nextAttemptAtMs: row.next_attempt_at_ms,
    status: row.status,
    lastError: row.last_error,
    lastStatus: row.last_status,
  };
}
