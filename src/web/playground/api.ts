/**
 * The page's client for this server's public API: the key in the Authorization header (never in a URL),
 * the API's error bodies as ApiFailure, and a job's Server-Sent Events read with fetch, because EventSource
 * cannot send an Authorization header.
 */
import { createEventStreamParser } from '../../contracts/event-stream-parser.ts';

/** The API's error object (src/domain/errors.ts toBody). */
export interface ApiErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string;
}

export class ApiFailure extends Error {
  readonly status: number;
  readonly body: ApiErrorBody;
  constructor(status: number, body: ApiErrorBody) {
    super(body.message);
    this.status = status;
    this.body = body;
  }
}

export interface JobEventMessage {
  event: string;
  data: any;
}

const KEY_STORAGE = 'qis.playground.apiKey';

/** sessionStorage: the key lives as long as this tab, is not shared with other tabs, and is never written to disk by us. */
export function readStoredKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function storeKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY_STORAGE);
  else sessionStorage.setItem(KEY_STORAGE, key);
}

async function failureOf(res: Response): Promise<ApiFailure> {
  const text = await res.text();
  try {
    const parsed = JSON.parse(text) as { error?: ApiErrorBody };
    if (parsed.error && typeof parsed.error.message === 'string') return new ApiFailure(res.status, parsed.error);
  } catch {
    // not the API's JSON: a proxy's page, say
  }
  return new ApiFailure(res.status, { message: `HTTP ${res.status}: ${text.slice(0, 200) || res.statusText}`, type: 'api_error', param: null, code: 'http_error' });
}

export interface Api {
  get(pathname: string): Promise<any>;
  post(pathname: string, body: unknown, headers?: Record<string, string>): Promise<any>;
  postForm(pathname: string, form: FormData): Promise<any>;
  /** Calls onEvent for each event of the job's stream until the server ends it (after the terminal event) or signal aborts. */
  followJob(jobId: string, onEvent: (e: JobEventMessage) => void, signal: AbortSignal): Promise<void>;
}

export function createApi(key: () => string | null): Api {
  const headers = (extra: Record<string, string> = {}): Record<string, string> => {
    const k = key();
    return { ...(k ? { authorization: `Bearer ${k}` } : {}), ...extra };
  };
  const send = async (pathname: string, init: RequestInit): Promise<any> => {
    const res = await fetch(pathname, init);
    if (!res.ok) throw await failureOf(res);
    return res.status === 204 ? null : res.json();
  };
  return {
    get: (pathname) => send(pathname, { headers: headers() }),
    post: (pathname, body, extra = {}) =>
      body === undefined
        ? send(pathname, { method: 'POST', headers: headers(extra) })
        : send(pathname, { method: 'POST', headers: headers({ 'content-type': 'application/json', ...extra }), body: JSON.stringify(body) }),
    postForm: (pathname, form) => send(pathname, { method: 'POST', headers: headers(), body: form }),
    async followJob(jobId, onEvent, signal) {
      const res = await fetch(`/v1/jobs/${encodeURIComponent(jobId)}/events`, { headers: headers({ accept: 'text/event-stream' }), signal });
      if (!res.ok || !res.body) throw await failureOf(res);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const feed = createEventStreamParser(onEvent);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        feed(value);
      }
    },
  };
}
