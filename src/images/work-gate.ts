/**
 * Admission for CPU- and memory-heavy image work done inside a request (decoding references,
 * decoding an upload for watermark detection): at most `concurrency` run at once, at most `maxQueue`
 * wait, and beyond that the caller gets a 503 with Retry-After instead of the server growing without
 * bound. A waiter whose request is aborted (the client left, a sibling reference failed) leaves the
 * queue without ever running.
 */
import { ApiError } from '../domain/errors.ts';

export interface WorkGateStats {
  running: number;
  waiting: number;
  /** Tasks that were started, and tasks dropped from the queue by an abort before they started. */
  started: number;
  droppedWaiting: number;
}

export interface WorkGate {
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  stats(): WorkGateStats;
}

export function createWorkGate(options: { concurrency: number; maxQueue: number; what: string }): WorkGate {
  let running = 0;
  let started = 0;
  let droppedWaiting = 0;
  const waiters: Array<() => void> = [];

  function release(): void {
    running -= 1;
    const next = waiters.shift();
    if (next) next();
  }

  function waitForSlot(signal?: AbortSignal): Promise<void> {
    if (running < options.concurrency) {
      running += 1;
      return Promise.resolve();
    }
    if (waiters.length >= options.maxQueue) {
      return Promise.reject(new ApiError('queue_full', `the server is busy ${options.what}; try again shortly`, { retryAfterS: 1 }));
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = waiters.indexOf(grant);
        if (i >= 0) waiters.splice(i, 1);
        droppedWaiting += 1;
        reject(signal!.reason ?? new DOMException('aborted', 'AbortError'));
      };
      // The slot passes straight from the releasing task to this one (running stays counted).
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        running += 1;
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.push(grant);
    });
  }

  return {
    async run(task, signal) {
      signal?.throwIfAborted();
      await waitForSlot(signal);
      try {
        // Aborted between being granted and starting: give the slot on without doing the work.
        signal?.throwIfAborted();
        started += 1;
        return await task();
      } finally {
        release();
      }
    },
    stats: () => ({ running, waiting: waiters.length, started, droppedWaiting }),
  };
}
