/**
 * The error catalogue: every error the API can return is declared here once, with a stable code and
 * HTTP status. Code throws `ApiError`s; the HTTP error handler is the only place that builds bodies.
 * The body shape is OpenAI's: {"error": {"message", "type", "param", "code"}}.
 */

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'insufficient_quota'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

interface CatalogueEntry {
  status: number;
  type: ErrorType;
}

export const ERROR_CATALOGUE = {
  invalid_json: { status: 400, type: 'invalid_request_error' },
  invalid_value: { status: 400, type: 'invalid_request_error' },
  missing_field: { status: 400, type: 'invalid_request_error' },
  unknown_field: { status: 400, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  body_too_large: { status: 413, type: 'invalid_request_error' },
  invalid_image: { status: 400, type: 'invalid_request_error' },
  image_fetch_failed: { status: 400, type: 'invalid_request_error' },
  image_too_large: { status: 400, type: 'invalid_request_error' },
  image_url_forbidden: { status: 400, type: 'invalid_request_error' },
  model_not_found: { status: 404, type: 'not_found_error' },
  not_found: { status: 404, type: 'not_found_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error' },
  invalid_api_key: { status: 401, type: 'authentication_error' },
  missing_api_key: { status: 401, type: 'authentication_error' },
  forbidden: { status: 403, type: 'permission_error' },
  budget_exceeded: { status: 402, type: 'insufficient_quota' },
  too_many_concurrent_jobs: { status: 429, type: 'rate_limit_error' },
  queue_full: { status: 503, type: 'service_unavailable' },
  engine_unavailable: { status: 503, type: 'service_unavailable' },
  server_shutting_down: { status: 503, type: 'service_unavailable' },
  rate_limited: { status: 429, type: 'rate_limit_error' },
  generation_timeout: { status: 504, type: 'server_error' },
  backend_rejected: { status: 400, type: 'invalid_request_error' },
  backend_error: { status: 502, type: 'server_error' },
  client_closed_request: { status: 499, type: 'invalid_request_error' },
  idempotency_key_reused: { status: 422, type: 'invalid_request_error' },
  job_finished: { status: 409, type: 'invalid_request_error' },
  job_canceled: { status: 409, type: 'invalid_request_error' },
  job_interrupted: { status: 503, type: 'service_unavailable' },
  uri_too_long: { status: 414, type: 'invalid_request_error' },
  insufficient_storage: { status: 507, type: 'server_error' },
  blob_store_unavailable: { status: 503, type: 'service_unavailable' },
  internal_error: { status: 500, type: 'server_error' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  /** Seconds, sent as `Retry-After` (503, 429, and 402 until the budget's period resets). */
  readonly retryAfterS: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { param?: string | null; retryAfterS?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.type = ERROR_CATALOGUE[code].type;
    this.param = options.param ?? null;
    this.retryAfterS = options.retryAfterS;
  }

  toBody(): { error: { message: string; type: ErrorType; param: string | null; code: ErrorCode } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}

/**
 * A full disk, from the filesystem (ENOSPC, EDQUOT) or SQLite (SQLITE_FULL), as the 507 the client
 * should see; null for any other error.
 */
export function storageFullError(err: unknown): ApiError | null {
  if (isApiError(err)) return err.code === 'insufficient_storage' ? err : null;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') {
    return new ApiError('insufficient_storage', 'the server has no space left to store this request; try again later', { cause: err });
  }
  return null;
}

/** True for the error an aborted fetch / AbortSignal produces. */
export function isAbortError(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    ((err as { name?: string }).name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR')
  );
}
