/**
 * The jobs table's row ↔ JobRecord mapping and the list cursor, shared by the SQLite and Postgres job stores
 * (the same columns in both: store/sqlite/database.ts migration 2, store/postgres/migrations.ts).
 */
import type { JobRecord, JobStatus } from '../domain/jobs.ts';

export interface JobRow {
  seq: number;
  id: string;
  key_id: string;
  request_id: string;
  model: string;
  status: JobStatus;
  params: string;
  webhook: string | null;
  created_at_ms: number;
  started_at_ms: number | null;
  completed_at_ms: number | null;
  attempts: number;
  progress: string | null;
  result: string | null;
  error: string | null;
  output_keys: string;
  timings: string | null;
}

export const parse = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

export function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    keyId: row.key_id,
    requestId: row.request_id,
    model: row.model,
    status: row.status,
    params: JSON.parse(row.params),
    webhook: parse(row.webhook),
    createdAtMs: row.created_at_ms,
    startedAtMs: row.started_at_ms,
    completedAtMs: row.completed_at_ms,
    attempts: row.attempts,
    progress: parse(row.progress),
    result: parse(row.result),
    error: parse(row.error),
    outputKeys: JSON.parse(row.output_keys),
    timings: parse(row.timings),
  };
}

/** The list cursor is the row's creation sequence number, opaque to callers. */
export const encodeCursor = (seq: number): string => Buffer.from(`s${seq}`).toString('base64url');
export function decodeCursor(cursor: string): number | null {
  const m = /^s(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : null;
}

