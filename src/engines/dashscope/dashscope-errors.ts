/**
 * DashScope (Alibaba Cloud Model Studio) error bodies are `{request_id, code, message}` with an
 * HTTP status. Mapping (Model Studio "Error codes" page):
 *   InvalidParameter*, DataInspectionFailed, IPInfringementSuspect, other 400s -> 400 backend_rejected
 *   Throttling, Throttling.RateQuota, Throttling.AllocationQuota, HTTP 429      -> 503 + Retry-After
 *   InvalidApiKey (401), AccessDenied*, Arrearage, Model.AccessDenied, 403/404  -> 502 backend_error
 *       (our account or configuration, never the caller's fault; the key is never echoed)
 *   ServiceUnavailable / HTTP 503                                               -> 503
 *   InternalError / other 5xx                                                   -> 502, retryable
 */
import { backendErrorFailure, rejectedFailure, unavailableFailure, type BackendFailure } from '../remote/errors.ts';
import { parseRetryAfter, type HttpResult } from '../remote/http.ts';
import { redactSecrets } from '../remote/logger.ts';

export interface DashscopeErrorBody {
  request_id?: string;
  code?: string;
  message?: string;
}

/** Retry-After when DashScope throttles without saying how long: per-second limits clear fast. */
const THROTTLE_RETRY_S = 10;
/** A used-up quota window (tokens or images per minute) clears within a minute. */
const QUOTA_RETRY_S = 60;

/** Codes that mean our account or key is the problem; grouped so the message can say what to fix. */
const ACCOUNT_CODES = new Set(['InvalidApiKey', 'Arrearage', 'AccessDenied', 'AccessDenied.Unpurchased', 'Model.AccessDenied', 'ModelNotFound', 'Model.NotFound']);

/** The `code` of a DashScope error body; '' when there is none. */
export function dashscopeErrorCode(body: Buffer): string {
  try {
    const code = (JSON.parse(body.toString('utf8')) as DashscopeErrorBody).code;
    return typeof code === 'string' ? code : '';
  } catch {
    return '';
  }
}

export function dashscopeFailure(
  backendId: string,
  result: Pick<HttpResult, 'status' | 'headers' | 'body'>,
  options: { secrets: string[]; apiKeyEnv?: string },
): BackendFailure {
  let parsed: DashscopeErrorBody = {};
  try {
    parsed = JSON.parse(result.body.toString('utf8')) as DashscopeErrorBody;
  } catch {
    // a proxy's HTML page: fall through with the status only
  }
  const code = typeof parsed.code === 'string' ? parsed.code : '';
  const message = redactSecrets(
    typeof parsed.message === 'string' ? parsed.message : result.body.toString('utf8').slice(0, 200),
    options.secrets,
  ).replace(/\s+/g, ' ');
  const requestRef = parsed.request_id ? ` [DashScope request ${parsed.request_id}]` : '';
  const label = `${code || `HTTP ${result.status}`}: ${message}${requestRef}`;
  const status = result.status;

  if (code === 'InvalidApiKey' || status === 401) {
    const hint = options.apiKeyEnv ? ` (check ${options.apiKeyEnv})` : '';
    return backendErrorFailure(backendId, `DashScope refused the configured API key${hint}: ${label}`, { retryable: true });
  }
  if (code.startsWith('Throttling') || status === 429) {
    const fallback = code === 'Throttling.AllocationQuota' ? QUOTA_RETRY_S : THROTTLE_RETRY_S;
    const hinted = parseRetryAfter(result.headers.get('retry-after'));
    // A used-up quota window will not clear within a same-backend retry: no overload mark, so the
    // router fails over at once.
    const overload = code === 'Throttling.AllocationQuota' ? undefined : { status: 429, retryAfterS: hinted };
    return unavailableFailure(backendId, `DashScope is throttling us (${label})`, hinted ?? fallback, { overload });
  }
  if (ACCOUNT_CODES.has(code) || code.startsWith('AccessDenied') || status === 403 || status === 404) {
    return backendErrorFailure(backendId, `DashScope account or model problem: ${label}`, { retryable: true });
  }
  if (code === 'DataInspectionFailed' || code.startsWith('DataInspection') || code === 'IPInfringementSuspect') {
    return rejectedFailure(backendId, `content inspection refused the input or output (${label})`);
  }
  if (code.startsWith('InvalidParameter') || code.startsWith('BadRequest') || (status >= 400 && status < 500)) {
    return rejectedFailure(backendId, label);
  }
  if (status === 503 || code === 'ServiceUnavailable') {
    const hinted = parseRetryAfter(result.headers.get('retry-after'));
    return unavailableFailure(backendId, label, hinted ?? THROTTLE_RETRY_S, { overload: { status: 503, retryAfterS: hinted } });
  }
  return backendErrorFailure(backendId, label, { retryable: true });
}
