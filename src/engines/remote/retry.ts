/**
 * Same-backend retry for a backend that said "not now": a 429 or 503 answer (BackendFailure with
 * `overload`), as openai-node retries them, honouring Retry-After. Only such answers are retried
 * here; everything else (unreachable, timeout, 5xx, rejections) goes straight back to the caller,
 * where the router decides about failover. When the retries are used up the last failure is
 * thrown, and the router tries the next backend.
 *
 * Waits: the backend's Retry-After, capped at `maxDelayMs`, plus up to 10 % jitter (so clients
 * told the same second do not come back in step); without the header an exponential backoff from
 * `baseDelayMs` with "equal jitter" (half fixed, half random). An abort ends a wait at once.
 *
 * `retryOnOverload(run, signal, options)` wraps one call (the router wraps each backend attempt).
 */
import { isBackendFailure, sleep as abortableSleep, throwIfAborted } from './errors.ts';

export interface OverloadRetryOptions {
  /** Further tries on the same backend after the first answer of 429/503; 0 disables. */
  retries: number;
  /** Cap on one wait, whatever Retry-After says (a backend asking for minutes is failed over). */
  maxDelayMs: number;
  /** First wait when the backend sent no Retry-After; doubles on each retry. */
  baseDelayMs: number;
  /** [0, 1) source for jitter. */
  random?: () => number;
  /** Injected in tests; must reject with the abort error when `signal` fires. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Called before each wait (for logs). */
  onRetry?: (info: { retry: number; delayMs: number; error: Error }) => void;
}

/** Share of a Retry-After wait added at random. */
const RETRY_AFTER_JITTER = 0.1;

/**
 * How long to wait before retry number `retry` (1-based) after `err`, or undefined when `err` is
 * not an overload answer.
 */
export function overloadDelayMs(err: unknown, retry: number, options: OverloadRetryOptions): number | undefined {
  if (!isBackendFailure(err) || !err.overload) return undefined;
  const random = options.random ?? Math.random;
  const hinted = err.overload.retryAfterS;
  if (hinted !== undefined) {
    const base = Math.min(hinted * 1000, options.maxDelayMs);
    return Math.min(options.maxDelayMs, Math.round(base * (1 + RETRY_AFTER_JITTER * random())));
  }
  const backoff = Math.min(options.baseDelayMs * 2 ** (retry - 1), options.maxDelayMs);
  return Math.round(backoff / 2 + (backoff / 2) * random());
}

export async function retryOnOverload<T>(run: (attempt: number) => Promise<T>, signal: AbortSignal, options: OverloadRetryOptions): Promise<T> {
  const sleep = options.sleep ?? abortableSleep;
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(signal);
    try {
      return await run(attempt);
    } catch (err) {
      if (signal.aborted || attempt >= options.retries) throw err;
      const delayMs = overloadDelayMs(err, attempt + 1, options);
      if (delayMs === undefined) throw err;
      options.onRetry?.({ retry: attempt + 1, delayMs, error: err as Error });
      await sleep(delayMs, signal);
    }
  }
}

