/** Reads of the usage ledger in Postgres; rows are written by the job store with the job's success (jobs/postgres/job-store.ts). */
import type pg from 'pg';
import type { UsageStore } from '../../domain/ports.ts';
import { usageTotals, type LedgerSums } from '../usage-totals.ts';

export function createPostgresUsageStore(pool: pg.Pool): UsageStore {
  return {
    async totals(keyId) {
      // SUM(bigint) is numeric in Postgres: cast back to bigint (read as an exact number by the pool).
      const { rows } = await pool.query<LedgerSums>(
        `SELECT model, COUNT(*) AS generations, COALESCE(SUM(credits), 0)::bigint AS credits, COALESCE(SUM(usd_micros), 0)::bigint AS usd_micros
         FROM usage_ledger WHERE key_id = $1 GROUP BY model ORDER BY model`,
        [keyId],
      );
      return usageTotals(keyId, rows);
    },
  };
}
