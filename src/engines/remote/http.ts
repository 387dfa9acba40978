/**
 * A small HTTP client for one backend: undici fetch on a dedicated Agent (so `close()` really
 * closes the sockets), per-call timeouts, and one mapping from transport failures and HTTP
 * statuses to the error catalogue. Engines with richer error bodies (DashScope) map those first
 * and fall back to `httpStatusFailure`.
 */
import { Agent, fetch, type FormData } from 'undici';
import {
  abortErrorFrom,
  backendErrorFailure,
  isBackendFailure,
  rejectedFailure,
  unavailableFailure,
  type BackendFailure,
} from './errors.ts';
import { redactSecrets } from './logger.ts';

export interface HttpClientOptions {
  backendId: string;
  /** Scheme, host, port and optional path prefix; no trailing slash needed. */
  baseUrl: string;
  /** TCP+TLS connect budget. A GPU box that does not accept a socket in 5 s is down. */
  connectTimeoutMs?: number;
  /** Seconds to put in Retry-After when the backend is down and gave no hint itself. */
  retryAfterS?: number;
  /** Sent on every call (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Values scrubbed from every error message this client builds. */
  secrets?: string[];
  /** Largest response body accepted; a backend sending more is broken (502). */
  maxResponseBytes?: number;
}

/**
 * Defaults written once for every remote engine. A short call (upload, queue, history, view, the
 * download of a result image) gets a minute: a 1440×1440 PNG over a slow link, or a ComfyUI busy
 * loading a model, can take tens of seconds. Control calls (health checks, the cancellations sent
 * after an abort) get 3 s: they must not hold up a health round or a shutdown.
 */
export const REMOTE_REQUEST_TIMEOUT_MS = 60_000;
export const REMOTE_CONTROL_TIMEOUT_MS = 3_000;

/** A 1440×1440 PNG is under 10 MB; base64 JSON around it under 14 MB. 128 MiB is generous. */
const DEFAULT_MAX_RESPONSE_BYTES = 128 * 2 ** 20;

export interface HttpCallOptions {
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  form?: FormData;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Whole-call budget (headers and body). Undefined: bounded only by `signal`. */
  timeoutMs?: number;
  /** Absolute URL instead of baseUrl + path (downloads of result URLs). */
  absoluteUrl?: string;
}

export interface HttpResult {
  status: number;
  headers: { get(name: string): string | null };
  body: Buffer;
}

export class BackendHttpClient {
  readonly backendId: string;
  readonly baseUrl: string;
  private readonly agent: Agent;
  private readonly retryAfterS: number;
  /** Sent on every call; also what a websocket to the same server should send. */
  readonly headers: Readonly<Record<string, string>>;
  private readonly secrets: string[];
  private readonly maxResponseBytes: number;

  constructor(options: HttpClientOptions) {
    this.backendId = options.backendId;
    const base = new URL(options.baseUrl);
    const headers: Record<string, string> = { ...options.headers };
    const secrets = [...(options.secrets ?? [])];
    // fetch refuses URLs with credentials; `http://user:pass@host` (a ComfyUI behind an auth
    // proxy) becomes a Basic Authorization header instead.
    if (base.username || base.password) {
      const user = decodeURIComponent(base.username);
      const pass = decodeURIComponent(base.password);
      headers.authorization ??= `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      if (pass) secrets.push(pass);
      base.username = '';
      base.password = '';
    }
    this.baseUrl = base.toString().replace(/\/+$/, '');
    this.retryAfterS = options.retryAfterS ?? 5;
    this.headers = headers;
    this.secrets = secrets;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    // Generation calls legitimately take minutes, so no idle timeouts here: callers bound each
    // call with `timeoutMs` or their AbortSignal (the router's per-backend deadline).
    this.agent = new Agent({
      connect: { timeout: options.connectTimeoutMs ?? 5000 },
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 10_000,
    });
  }

  url(path: string, query?: HttpCallOptions['query']): string {
    const url = new URL(this.baseUrl + (path.startsWith('/') ? path : `/${path}`));
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  /**
   * Performs one call and returns whatever status came back; only transport failures throw
   * (mapped to 503 engine_unavailable, or the abort error when the caller's signal fired).
   */
  async call(method: string, path: string, options: HttpCallOptions = {}): Promise<HttpResult> {
    const target = options.absoluteUrl ?? this.url(path, options.query);
    const deadline = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
    const signals = [options.signal, deadline].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    const headers: Record<string, string> = { ...this.headers, ...options.headers };
    let body: string | FormData | undefined;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.form !== undefined) {
      body = options.form;
    }
    try {
      const response = await fetch(target, { method, headers, body, signal, dispatcher: this.agent });
      const bytes = await this.readLimited(response, describeCall(method, path));
      return { status: response.status, headers: response.headers, body: bytes };
    } catch (err) {
      if (isBackendFailure(err)) throw err;
      if (options.signal?.aborted) throw abortErrorFrom(options.signal);
      // AbortSignal.timeout() fires a TimeoutError, not an AbortError.
      if (deadline?.aborted) {
        throw unavailableFailure(this.backendId, `no answer from ${describeCall(method, path)} within ${options.timeoutMs} ms`, this.retryAfterS, { cause: err });
      }
      throw this.transportFailure(err, method, path);
    }
  }

  private async readLimited(response: Awaited<ReturnType<typeof fetch>>, what: string): Promise<Buffer> {
    const declared = Number(response.headers.get('content-length') ?? NaN);
    const tooLarge = (): BackendFailure =>
      backendErrorFailure(this.backendId, `${what} sent more than ${this.maxResponseBytes} bytes`, { retryable: false });
    if (declared > this.maxResponseBytes) {
      await response.body?.cancel();
      throw tooLarge();
    }
    if (!response.body) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      // Leaving the loop by throwing cancels the stream (the iterator's return()).
      if (total > this.maxResponseBytes) throw tooLarge();
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks, total);
  }

  /** `call` that insists on a 2xx status, mapping anything else with `httpStatusFailure`. */
  async callOk(method: string, path: string, options: HttpCallOptions = {}): Promise<HttpResult> {
    const result = await this.call(method, path, options);
    if (result.status < 200 || result.status >= 300) {
      throw httpStatusFailure(this.backendId, result, { retryAfterS: this.retryAfterS, secrets: this.secrets, what: describeCall(method, path) });
    }
    return result;
  }

  /** `callOk` plus JSON parsing; a 2xx with a body that is not JSON is a broken backend (502). */
  async callJson<T>(method: string, path: string, options: HttpCallOptions = {}): Promise<T> {
    const result = await this.callOk(method, path, options);
    return parseJsonBody<T>(this.backendId, result.body, describeCall(method, path));
  }

  transportFailure(err: unknown, method: string, path: string): BackendFailure {
    const code = transportErrorCode(err);
    const reason = redactSecrets(`${describeCall(method, path)} failed: ${code ?? (err as Error)?.message ?? String(err)}`, this.secrets);
    return unavailableFailure(this.backendId, reason, this.retryAfterS, { unreachable: isUnreachableCode(code), cause: err });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

export function parseJsonBody<T>(backendId: string, body: Buffer, what: string): T {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (err) {
    throw backendErrorFailure(backendId, `${what} answered with something that is not JSON`, { retryable: false, cause: err });
  }
}

function describeCall(method: string, path: string): string {
  return `${method} ${path.split('?')[0]}`;
}

/** undici wraps socket errors: `TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } })`. */
function transportErrorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function isUnreachableCode(code: string | undefined): boolean {
  return code !== undefined && UNREACHABLE_CODES.has(code);
}

/**
 * Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3). Returns seconds, or
 * undefined when absent or unparsable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/**
 * The human reason inside an error body, whatever the server's dialect: OpenAI
 * `{error:{message}}`, sd-server `{error:"..."}`, FastAPI `{detail}`, DashScope `{code,message}`.
 */
export function extractErrorReason(body: Buffer | string, maxLength = 300): string {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  let reason = text;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const error = parsed.error;
    if (typeof error === 'string') reason = typeof parsed.message === 'string' ? `${error}: ${parsed.message}` : error;
    else if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
      reason = (error as { message: string }).message;
    } else if (typeof parsed.detail === 'string') reason = parsed.detail;
    else if (Array.isArray(parsed.detail)) reason = JSON.stringify(parsed.detail);
    else if (typeof parsed.message === 'string') {
      reason = typeof parsed.code === 'string' ? `${parsed.code}: ${parsed.message}` : parsed.message;
    }
  } catch {
    // Not JSON: an HTML error page from a proxy, or plain text. Keep the text itself.
  }
  reason = reason.replace(/\s+/g, ' ').trim();
  if (reason.length === 0) return 'no details';
  return reason.length > maxLength ? `${reason.slice(0, maxLength)}…` : reason;
}

/**
 * Generic status mapping for OpenAI-style servers and ComfyUI:
 * - 429 and 503: the backend is busy or starting (503 + Retry-After, try another backend);
 * - 401/403/404: our configuration is wrong for this backend (502, another backend may work);
 * - other 4xx: the backend refused the caller's input (400 backend_rejected, never retried);
 * - 5xx: the backend broke (502, another backend may work).
 */
export function httpStatusFailure(
  backendId: string,
  result: Pick<HttpResult, 'status' | 'headers' | 'body'>,
  options: { retryAfterS: number; secrets?: string[]; what: string },
): BackendFailure {
  const reason = redactSecrets(extractErrorReason(result.body), options.secrets ?? []);
  const status = result.status;
  if (status === 429 || status === 503) {
    const hinted = parseRetryAfter(result.headers.get('retry-after'));
    return unavailableFailure(backendId, `${options.what} answered HTTP ${status} (${reason})`, hinted ?? options.retryAfterS, {
      overload: { status, retryAfterS: hinted },
    });
  }
  if (status === 401 || status === 403) {
    return backendErrorFailure(backendId, `${options.what} refused our credentials (HTTP ${status}: ${reason})`, { retryable: true });
  }
  if (status === 404 || status === 405) {
    return backendErrorFailure(backendId, `${options.what} is not served here (HTTP ${status}: ${reason}); check the backend url`, { retryable: true });
  }
  if (status >= 400 && status < 500 && status !== 408) {
    return rejectedFailure(backendId, `HTTP ${status}: ${reason}`);
  }
  return backendErrorFailure(backendId, `${options.what} answered HTTP ${status} (${reason})`, { retryable: true });
}
