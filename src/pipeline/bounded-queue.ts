/**
 * A per-engine admission queue that says no: at most `concurrency` tasks run, at most `maxWaiting`
 * wait, and a task beyond that is refused at once with 503 queue_full and a Retry-After estimated
 * from recent task durations.
 */
import { ApiError } from '../domain/errors.ts';

interface Waiter {
  start: () => void;
  fail: (err: unknown) => void;
}

export interface QueueStats {
  running: number;
  waiting: number;
  concurrency: number;
  maxWaiting: number;
  /** Exponentially weighted mean task duration, ms (0 until a task finished). */
  meanTaskMs: number;
}

export class BoundedQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private meanTaskMs = 0;

  constructor(
    private readonly concurrency: number,
    private readonly maxWaiting: number,
    private readonly name: string,
  ) {}

  stats(): QueueStats {
    return { running: this.running, waiting: this.waiting.length, concurrency: this.concurrency, maxWaiting: this.maxWaiting, meanTaskMs: this.meanTaskMs };
  }

  /** Seconds until a slot is likely free for a new arrival. */
  retryAfterS(): number {
    const perTaskMs = this.meanTaskMs || 5000;
    return Math.max(1, Math.ceil((perTaskMs * (this.waiting.length + 1)) / this.concurrency / 1000));
  }

  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new ApiError('queue_full', `the ${this.name} queue is full (${this.running} running, ${this.waiting.length} waiting); retry later`, {
          retryAfterS: this.retryAfterS(),
        });
      }
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          start: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
          fail: reject,
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal?.reason ?? new Error('aborted'));
        };
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(waiter);
      });
    } else {
      this.running++;
    }
    // Here this task holds a slot: either taken above, or handed over by the task that finished.
    const started = performance.now();
    try {
      return await task();
    } finally {
      const took = performance.now() - started;
      this.meanTaskMs = this.meanTaskMs === 0 ? took : this.meanTaskMs * 0.8 + took * 0.2;
      const next = this.waiting.shift();
      if (next) next.start();
      else this.running--;
    }
  }
}
