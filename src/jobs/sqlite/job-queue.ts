/**
 * JobQueue on SQLite: a FIFO per model in the `job_queue` table of the server's database, so queued
 * work survives a restart. Claiming deletes the row; the job store's `markRunning` then records the start.
 */
import type { SqliteDatabase } from '../../store/sqlite/database.ts';
import type { JobQueue } from '../ports.ts';

export function createSqliteJobQueue(db: SqliteDatabase): JobQueue {
  const insert = db.prepare(`INSERT INTO job_queue (job_id, model) VALUES (?, ?) ON CONFLICT(job_id) DO NOTHING`);
  const oldest = db.prepare(`SELECT seq, job_id FROM job_queue WHERE model = ? ORDER BY seq LIMIT 1`);
  const deleteSeq = db.prepare(`DELETE FROM job_queue WHERE seq = ?`);
  const deleteJob = db.prepare(`DELETE FROM job_queue WHERE job_id = ?`);
  const seqOf = db.prepare(`SELECT seq, model FROM job_queue WHERE job_id = ?`);
  const ahead = db.prepare(`SELECT COUNT(*) AS n FROM job_queue WHERE model = ? AND seq < ?`);
  const ofModel = db.prepare(`SELECT job_id FROM job_queue WHERE model = ? ORDER BY seq`);
  const count = db.prepare(`SELECT COUNT(*) AS n FROM job_queue WHERE model = ?`);

  const claim = db.transaction((model: string): string | null => {
    const row = oldest.get(model) as { seq: number; job_id: string } | undefined;
    if (!row) return null;
    deleteSeq.run(row.seq);
    return row.job_id;
  });

  return {
    sharedAcrossProcesses: false,
    async enqueue(jobId, model) {
      insert.run(jobId, model);
    },
    async claim(model) {
      return claim(model);
    },
    async complete() {
      // Claiming deleted the row; crash recovery at start (JobRunner.recover) requeues from the job store.
    },
    async remove(jobId) {
      return deleteJob.run(jobId).changes > 0;
    },
    async position(jobId) {
      const row = seqOf.get(jobId) as { seq: number; model: string } | undefined;
      return row ? (ahead.get(row.model, row.seq) as { n: number }).n : null;
    },
    async list(model) {
      return (ofModel.all(model) as Array<{ job_id: string }>).map((r) => r.job_id);
    },
    async depth(model) {
      return (count.get(model) as { n: number }).n;
    },
    async has(jobId) {
      return seqOf.get(jobId) !== undefined;
    },
  };
}
