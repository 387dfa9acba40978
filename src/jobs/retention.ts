/**
 * The retention sweeper: terminal jobs older than JOB_RETENTION are deleted with their idempotency
 * records and their images (whose URLs then answer 404). The ledger keeps its rows: money is never
 * swept. Runs at start and then every `intervalMs`; each pass deletes in batches so a long backlog
 * does not hold the database.
 */
import type { BlobStore } from '../domain/ports.ts';
import type { JobStore } from './ports.ts';

export interface RetentionDeps {
  store: JobStore;
  blobs: BlobStore;
  retentionMs: number;
  intervalMs: number;
  logger: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  now?: () => number;
}

const BATCH = 200;

export function createRetentionSweeper(deps: RetentionDeps) {
  const now = deps.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  async function sweepOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await deps.store.deleteCompletedBefore(now() - deps.retentionMs, BATCH);
      for (const job of deleted) {
        await Promise.all([...job.outputKeys, ...job.params.referenceKeys].map((k) => deps.blobs.delete(k)));
      }
      total += deleted.length;
      if (deleted.length < BATCH) break;
    }
    if (total > 0) deps.logger.info({ deleted: total, retentionMs: deps.retentionMs }, 'expired jobs deleted');
    return total;
  }

  const sweep = (): Promise<number> => {
    running ??= sweepOnce().finally(() => (running = undefined));
    return running;
  };

  return {
    sweep,
    start(): void {
      void sweep().catch((err: unknown) => deps.logger.warn({ err }, 'retention sweep failed'));
      timer = setInterval(() => void sweep().catch((err: unknown) => deps.logger.warn({ err }, 'retention sweep failed')), deps.intervalMs);
      timer.unref();
    },
    async close(): Promise<void> {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
