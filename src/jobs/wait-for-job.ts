/**
 * Waits until a job is terminal, a time limit passes, or a signal fires, whichever is first, and
 * returns the job as the store has it then. Subscribes before reading, so an end that happens
 * between the read and the subscription is not missed.
 */
import { isTerminal, type JobRecord } from '../domain/jobs.ts';
import type { JobEvents, JobStore } from './ports.ts';

export async function waitForJob(
  deps: { store: Pick<JobStore, 'get'>; events: JobEvents },
  jobId: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<JobRecord | null> {
  let wake: () => void = () => {};
  const woken = new Promise<void>((resolve) => (wake = resolve));
  const unsubscribe = deps.events.subscribe(jobId, (event) => {
    if (event.type === 'succeeded' || event.type === 'failed' || event.type === 'canceled') wake();
  });
  const timer = setTimeout(wake, Math.max(0, timeoutMs));
  signal?.addEventListener('abort', wake, { once: true });
  try {
    const first = await deps.store.get(jobId);
    if (!first || isTerminal(first.status) || signal?.aborted) return first;
    await woken;
    return await deps.store.get(jobId);
  } finally {
    unsubscribe();
    clearTimeout(timer);
    signal?.removeEventListener('abort', wake);
  }
}
