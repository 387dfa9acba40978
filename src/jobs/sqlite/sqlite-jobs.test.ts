/** The embedded job store and queue, on a real SQLite file, pass the shared conformance suite. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../store/sqlite/database.ts';
import { runJobStoreConformance } from '../testing/job-store-conformance.ts';
import { createSqliteJobQueue } from './job-queue.ts';
import { createSqliteJobStore } from './job-store.ts';
import { createSqliteWebhookOutbox } from './webhook-outbox.ts';

runJobStoreConformance('sqlite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-jobs-'));
  const db = openDatabase(path.join(dir, 'server.sqlite'));
  const ledger = db.prepare(`SELECT COUNT(*) AS n FROM usage_ledger WHERE job_id = ?`);
  return {
    store: createSqliteJobStore(db),
    queue: createSqliteJobQueue(db),
    outbox: createSqliteWebhookOutbox(db),
    ledgerRowsFor: async (jobId) => (ledger.get(jobId) as { n: number }).n,
    teardown: async () => {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});
