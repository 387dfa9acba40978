/**
 * Errors shared by the remote engines and the router. Every failure a backend causes is an
 * `ApiError` from the catalogue (so the HTTP layer maps it like any other), carrying two extra
 * facts the router needs: may another backend be tried, and does it count against this backend's
 * circuit breaker.
 */
import { ApiError, type ErrorCode } from '../../domain/errors.ts';

export interface BackendFailureOptions {
  backendId: string;
  /** Another backend may succeed where this one failed (transport, timeout, 5xx, overload). */
  retryable: boolean;
  /** Counts towards this backend's circuit breaker (false for rejections of the caller's input). */
  countsAsFailure: boolean;
  /** The backend could not be reached at all: the router marks it down until the next health check. */
  unreachable?: boolean;
  retryAfterS?: number;
  /** The backend answered 429 or 503: busy, throttling or warming up, worth asking again soon. */
  overload?: OverloadInfo;
  param?: string | null;
  cause?: unknown;
}

export interface OverloadInfo {
  status: number;
  /** The backend's own Retry-After in seconds; undefined when it sent none. */
  retryAfterS: number | undefined;
}

export class BackendFailure extends ApiError {
  readonly backendId: string;
  readonly retryable: boolean;
  readonly countsAsFailure: boolean;
  readonly unreachable: boolean;
  readonly overload: OverloadInfo | undefined;

  constructor(code: ErrorCode, message: string, options: BackendFailureOptions) {
    super(code, message, { param: options.param, retryAfterS: options.retryAfterS, cause: options.cause });
    this.name = 'BackendFailure';
    this.backendId = options.backendId;
    this.retryable = options.retryable;
    this.countsAsFailure = options.countsAsFailure;
    this.unreachable = options.unreachable ?? false;
    this.overload = options.overload;
  }
}

export function isBackendFailure(err: unknown): err is BackendFailure {
  return err instanceof BackendFailure;
}

/** Backend down or overloaded: 503 with Retry-After; another backend may be tried. */
export function unavailableFailure(
  backendId: string,
  reason: string,
  retryAfterS: number,
  extra: { unreachable?: boolean; overload?: OverloadInfo; cause?: unknown } = {},
): BackendFailure {
  return new BackendFailure('engine_unavailable', `backend ${backendId} is unavailable: ${reason}`, {
    backendId,
    retryable: true,
    countsAsFailure: true,
    retryAfterS: Math.max(1, Math.ceil(retryAfterS)),
    unreachable: extra.unreachable,
    overload: extra.overload,
    cause: extra.cause,
  });
}

/** The backend refused the caller's input (4xx, content inspection): never retried elsewhere. */
export function rejectedFailure(backendId: string, reason: string, param: string | null = null): BackendFailure {
  return new BackendFailure('backend_rejected', `backend ${backendId} rejected the request: ${reason}`, {
    backendId,
    retryable: false,
    countsAsFailure: false,
    param,
  });
}

/**
 * The backend failed (5xx, misconfiguration, broken output): 502. `retryable` is false once the
 * backend produced output, because generating again elsewhere costs a second GPU run for an answer
 * that is most likely a configuration problem (wrong workflow size, wrong model).
 */
export function backendErrorFailure(
  backendId: string,
  reason: string,
  options: { retryable: boolean; cause?: unknown },
): BackendFailure {
  return new BackendFailure('backend_error', `backend ${backendId} failed: ${reason}`, {
    backendId,
    retryable: options.retryable,
    countsAsFailure: true,
    cause: options.cause,
  });
}

export function timeoutFailure(backendId: string, timeoutMs: number): BackendFailure {
  return new BackendFailure('generation_timeout', `backend ${backendId} did not finish within ${timeoutMs} ms`, {
    backendId,
    retryable: true,
    countsAsFailure: true,
  });
}

/**
 * The error to reject with when `signal` fired. A caller that aborted with an Error as reason
 * (e.g. the pipeline's own timeout) gets that reason back; otherwise a standard AbortError, which
 * `isAbortError` recognises.
 */
export function abortErrorFrom(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException('The generation was aborted', 'AbortError');
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortErrorFrom(signal);
}

/** Resolves after `ms`, rejects early with the abort error when `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortErrorFrom(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortErrorFrom(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
