/** MarkLedger on SQLite: the usage ledger looked up by the invisible mark its image carried (migration 4). */
import type { MarkedGeneration, MarkLedger, WatermarkPayload } from '../../domain/ports.ts';
import type { SqliteDatabase } from './database.ts';

export function createSqliteMarkLedger(db: SqliteDatabase): MarkLedger {
  const byMark = db.prepare(
    `SELECT key_id, job_id, model, width, height, created_at_ms FROM usage_ledger
     WHERE watermark_generation_id = ? AND watermark_issuer_id = ?
     ORDER BY created_at_ms DESC, id DESC LIMIT ?`,
  );
  return {
    async findByMark(payload: WatermarkPayload, limit: number): Promise<MarkedGeneration[]> {
      const rows = byMark.all(payload.generationId, payload.issuerId, limit) as Array<{
        key_id: string;
        job_id: string | null;
        model: string;
        width: number;
        height: number;
        created_at_ms: number;
      }>;
      return rows.map((r) => ({ keyId: r.key_id, jobId: r.job_id, model: r.model, width: r.width, height: r.height, createdAtMs: r.created_at_ms }));
    },
  };
}
