/**
 * The per-minute request window of the key limiter, behind a port so that several API processes can
 * share it (redis-request-window.ts); the in-memory version below is the one-process default. Taking a
 * place is atomic (check and record in one step), so two processes cannot both take the last one; a
 * request refused by a later check (a budget) gives its place back, as the limiter never charged refused
 * requests to the window.
 */
import { createSlidingWindow } from './sliding-window.ts';

export type WindowTake =
  | { admitted: true; /** Gives the place back; idempotent. */ undo(): Promise<void> }
  | { admitted: false; /** ms until one more request fits. */ waitMs: number };

export interface RequestWindow {
  /** When fewer than `limit` admissions of the key fall in the window ending at `nowMs`, records one; else records nothing. */
  take(keyId: string, limit: number, nowMs: number): Promise<WindowTake>;
  /** Admissions of the key in the window ending at `nowMs`. */
  count(keyId: string, nowMs: number): Promise<number>;
  /** ms until the oldest admission in the window leaves it (0 when empty). */
  resetInMs(keyId: string, nowMs: number): Promise<number>;
}

export function createMemoryRequestWindow(windowMs: number): RequestWindow {
  const window = createSlidingWindow(windowMs);
  return {
    async take(keyId, limit, nowMs) {
      const waitMs = window.waitMs(keyId, limit, nowMs);
      if (waitMs > 0) return { admitted: false, waitMs };
      window.record(keyId, limit, nowMs);
      let undone = false;
      return {
        admitted: true,
        async undo() {
          if (undone) return;
          undone = true;
          window.forget(keyId, nowMs);
        },
      };
    },
    async count(keyId, nowMs) {
      return window.count(keyId, nowMs);
    },
    async resetInMs(keyId, nowMs) {
      return window.resetInMs(keyId, nowMs);
    },
  };
}
