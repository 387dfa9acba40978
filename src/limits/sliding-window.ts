/**
 * Requests per minute as a sliding log: a request is admitted when fewer than `limit` admitted requests
 * of the key fall in the last `windowMs`. Unlike a fixed window, a burst cannot get 2 × limit through
 * across a window boundary. Refused requests are not logged (a client retrying at once is not punished
 * beyond the limit). Each key keeps at most `limit` timestamps: only the limit-th newest decides.
 * In memory, per process (request-window.ts wraps it; redis-request-window.ts keeps the same log in Redis).
 */
export interface SlidingWindow {
  /** ms until one more request fits; 0 when it fits now. Records nothing. */
  waitMs(keyId: string, limit: number, nowMs: number): number;
  record(keyId: string, limit: number, nowMs: number): void;
  /** Takes back one admission recorded at `atMs` (a later check refused the request). */
  forget(keyId: string, atMs: number): void;
  /** Admitted requests of the key in the window ending now. */
  count(keyId: string, nowMs: number): number;
  /** ms until the oldest request in the window leaves it (0 when empty). */
  resetInMs(keyId: string, nowMs: number): number;
}

export function createSlidingWindow(windowMs: number): SlidingWindow {
  const logs = new Map<string, number[]>();

  function live(keyId: string, nowMs: number): number[] {
    const log = logs.get(keyId);
    if (!log) return [];
    let drop = 0;
    while (drop < log.length && log[drop]! <= nowMs - windowMs) drop++;
    if (drop > 0) log.splice(0, drop);
    if (log.length === 0) logs.delete(keyId);
    return log;
  }

  return {
    waitMs(keyId, limit, nowMs) {
      const log = live(keyId, nowMs);
      if (log.length < limit) return 0;
      // The request that must leave the window for one more to fit.
      return log[log.length - limit]! + windowMs - nowMs;
    },
    record(keyId, limit, nowMs) {
      const log = live(keyId, nowMs);
      log.push(nowMs);
      if (log.length > limit) log.splice(0, log.length - limit);
      logs.set(keyId, log);
    },
    forget(keyId, atMs) {
      const log = logs.get(keyId);
      if (!log) return;
      const at = log.lastIndexOf(atMs);
      if (at >= 0) log.splice(at, 1);
      if (log.length === 0) logs.delete(keyId);
    },
    count(keyId, nowMs) {
      return live(keyId, nowMs).length;
    },
    resetInMs(keyId, nowMs) {
      const log = live(keyId, nowMs);
      return log.length === 0 ? 0 : log[0]! + windowMs - nowMs;
    },
  };
}
