/** The embedded queue passes the job-queue conformance suite; a second handle is a second connection to the same file. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type SqliteDatabase } from '../../store/sqlite/database.ts';
import { runJobQueueConformance } from '../testing/job-queue-conformance.ts';
import { createSqliteJobQueue } from './job-queue.ts';

runJobQueueConformance('sqlite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qis-queue-'));
  const file = path.join(dir, 'server.sqlite');
  const handles: SqliteDatabase[] = [];
  return {
    open: async () => {
      const db = openDatabase(file);
      handles.push(db);
      return createSqliteJobQueue(db);
    },
    teardown: async () => {
      for (const db of handles) db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});
