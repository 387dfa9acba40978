/** MarkLedger in Postgres: the usage ledger looked up by the invisible mark its image carried. */
import type pg from 'pg';
import type { MarkedGeneration, MarkLedger } from '../../domain/ports.ts';

export function createPostgresMarkLedger(pool: pg.Pool): MarkLedger {
  return {
    async findByMark(payload, limit): Promise<MarkedGeneration[]> {
      const { rows } = await pool.query<{ key_id: string; job_id: string | null; model: string; width: number; height: number; created_at_ms: number }>(
        `SELECT key_id, job_id, model, width, height, created_at_ms FROM usage_ledger
         WHERE watermark_generation_id = $1 AND watermark_issuer_id = $2
         ORDER BY created_at_ms DESC, id DESC LIMIT $3`,
        [payload.generationId, payload.issuerId, limit],
      );
      return rows.map((r) => ({ keyId: r.key_id, jobId: r.job_id, model: r.model, width: r.width, height: r.height, createdAtMs: r.created_at_ms }));
    },
  };
}
