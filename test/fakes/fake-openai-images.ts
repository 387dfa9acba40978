/**
 * A fake OpenAI-compatible images server (the dialect of vLLM-Omni, SGLang diffusion, LocalAI and
 * sd-server): POST /v1/images/generations (JSON) and /v1/images/edits (multipart, `image` or
 * `image[]`), answering `{created, data: [{b64_json}]}` or a URL to GET. Errors use OpenAI's body
 * `{error: {message, type, param, code}}`. Records every request, every client disconnect, and how
 * many image requests were open at once (what a GPU server's concurrency limit is about).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  imageSize,
  parseMultipart,
  readBody,
  sendBytes,
  sendJson,
  solidPng,
  startHttpServer,
  waitUnlessClosed,
} from '../../src/engines/testing/fake-http.ts';
import type { BackendObserver } from '../../src/engines/testing/conformance.ts';

export type FakeOpenaiFailure =
  | 'none'
  | 'rate-limit'
  | 'server-error'
  | 'unavailable'
  | 'bad-request'
  | 'unauthorized'
  /** 200 with data: [{}] */
  | 'malformed'
  /** 200 with b64_json that is base64 of something that is not an image */
  | 'not-an-image'
  | 'wrong-size';

export interface FakeOpenaiRequest {
  endpoint: 'generations' | 'edits';
  authorization: string | undefined;
  fields: Record<string, string | number | boolean | null>;
  prompt: string | undefined;
  size: string | undefined;
  model: string | undefined;
  negativePrompt: string | undefined;
  seed: number | undefined;
  /** Multipart field name of each uploaded image, in order (`ref_images` for LocalAI's JSON references). */
  imageFields: string[];
  imageSizes: Array<{ width: number; height: number } | undefined>;
}

export interface FakeOpenaiImages {
  url: string;
  port: number;
  failure: FakeOpenaiFailure;
  /** Time spent "generating" before answering. */
  delayMs: number;
  /** How results come back: base64, absolute URL, or a server-relative URL (SGLang). */
  responseMode: 'b64_json' | 'url' | 'relative-url';
  /** When set, requests without `Authorization: Bearer <apiKey>` get 401. */
  apiKey: string | undefined;
  /**
   * `localai`: answer as LocalAI does (core/http/endpoints/openai/image.go): no /v1/images/edits
   * route (404), and references as `ref_images` in the generations JSON, each plain base64 or a
   * URL; an entry that does not decode is dropped without an error, as LocalAI's processImageFile
   * does (counted in `droppedRefImages`).
   */
  dialect: 'openai' | 'localai';
  droppedRefImages: number;
  readonly requests: FakeOpenaiRequest[];
  /** Requests whose client closed the connection before the answer. */
  cancels: number;
  /** Image requests open right now: from arrival until the answer is sent or the client goes away. */
  readonly inFlight: number;
  /** The most image requests ever open at once (since start or the last reset). */
  readonly maxInFlight: number;
  healthChecks: number;
  cancelCount(): number;
  /** Resolves once a generation request arrived and is being "worked on". */
  waitForRequest(timeoutMs?: number): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

export async function startFakeOpenaiImages(): Promise<FakeOpenaiImages> {
  const files = new Map<string, Buffer>();
  let arrivals: Array<() => void> = [];
  let inFlight = 0;
  let maxInFlight = 0;

  const fake: FakeOpenaiImages = {
    url: '',
    port: 0,
    failure: 'none',
    delayMs: 10,
    responseMode: 'b64_json',
    apiKey: undefined,
    dialect: 'openai',
    droppedRefImages: 0,
    requests: [],
    cancels: 0,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    healthChecks: 0,
    cancelCount: () => fake.cancels,
    waitForRequest: (timeoutMs = 120_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no image request arrived')), timeoutMs);
        arrivals.push(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    reset: () => {
      fake.failure = 'none';
      fake.delayMs = 10;
      fake.responseMode = 'b64_json';
      fake.apiKey = undefined;
      fake.dialect = 'openai';
      fake.droppedRefImages = 0;
      fake.requests.length = 0;
      fake.cancels = 0;
      fake.healthChecks = 0;
      // Requests still open stay counted: they end (and are uncounted) on their own.
      maxInFlight = inFlight;
      arrivals = [];
    },
    close: () => started.close(),
  };

  const openaiError = (res: ServerResponse, status: number, message: string, type: string, headers: Record<string, string> = {}): void =>
    sendJson(res, status, { error: { message, type, param: null, code: null } }, headers);

  /** Counts the request open until its response ends ('finish') or its connection closes first ('close'). */
  function trackInFlight(res: ServerResponse): void {
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let open = true;
    const done = (): void => {
      if (!open) return;
      open = false;
      inFlight -= 1;
    };
    res.once('finish', done);
    res.once('close', done);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.local');
    if (req.method === 'GET' && ['/v1/models', '/health', '/models', '/readyz'].includes(url.pathname)) {
      fake.healthChecks += 1;
      sendJson(res, 200, { object: 'list', data: [{ id: 'Qwen/Qwen-Image', object: 'model', owned_by: 'fake' }] });
      return;
    }
    const fileMatch = /^\/(?:files\/([\w-]+)\.png|v1\/images\/([\w-]+)\/content)$/.exec(url.pathname);
    if (req.method === 'GET' && fileMatch) {
      const file = files.get(fileMatch[1] ?? fileMatch[2] ?? '');
      if (!file) openaiError(res, 404, 'no such file', 'invalid_request_error');
      else sendBytes(res, 200, file, 'image/png');
      return;
    }
    const edits = url.pathname === '/v1/images/edits' && fake.dialect === 'openai';
    const endpoint = url.pathname === '/v1/images/generations' ? 'generations' : edits ? 'edits' : undefined;
    if (req.method !== 'POST' || !endpoint) {
      openaiError(res, 404, `Not Found: ${req.method} ${url.pathname}`, 'invalid_request_error');
      return;
    }
    trackInFlight(res);
    const body = await readBody(req);
    const record: FakeOpenaiRequest = {
      endpoint,
      authorization: req.headers.authorization,
      fields: {},
      prompt: undefined,
      size: undefined,
      model: undefined,
      negativePrompt: undefined,
      seed: undefined,
      imageFields: [],
      imageSizes: [],
    };
    if (endpoint === 'generations') {
      if (!String(req.headers['content-type']).startsWith('application/json')) {
        openaiError(res, 415, 'expected application/json', 'invalid_request_error');
        return;
      }
      record.fields = JSON.parse(body.toString('utf8')) as FakeOpenaiRequest['fields'];
      const refs = (record.fields as Record<string, unknown>).ref_images;
      if (fake.dialect === 'localai' && Array.isArray(refs)) {
        delete record.fields.ref_images;
        for (const ref of refs) {
          // Go's base64.StdEncoding: the standard alphabet with padding, nothing else (no data: prefix).
          const valid = typeof ref === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(ref) && ref.length % 4 === 0;
          const size = valid ? await imageSize(Buffer.from(ref, 'base64')) : undefined;
          if (!size) {
            fake.droppedRefImages += 1;
            continue;
          }
          record.imageFields.push('ref_images');
          record.imageSizes.push(size);
        }
      }
    } else {
      const form = await parseMultipart(req, body);
      for (const [key, value] of form) {
        if (typeof value === 'string') {
          record.fields[key] = /^-?\d+$/.test(value) && key === 'seed' ? Number(value) : value;
        } else {
          record.imageFields.push(key);
          record.imageSizes.push(await imageSize(Buffer.from(await value.arrayBuffer())));
        }
      }
    }
    record.prompt = typeof record.fields.prompt === 'string' ? record.fields.prompt : undefined;
    record.size = typeof record.fields.size === 'string' ? record.fields.size : undefined;
    record.model = typeof record.fields.model === 'string' ? record.fields.model : undefined;
    record.negativePrompt = typeof record.fields.negative_prompt === 'string' ? record.fields.negative_prompt : undefined;
    record.seed = typeof record.fields.seed === 'number' ? record.fields.seed : undefined;
    fake.requests.push(record);
    for (const notify of arrivals.splice(0)) notify();

    if (fake.apiKey !== undefined && req.headers.authorization !== `Bearer ${fake.apiKey}`) {
      openaiError(res, 401, 'Incorrect API key provided', 'invalid_request_error');
      return;
    }
    if (endpoint === 'edits' && record.imageFields.length === 0) {
      sendJson(res, 422, { detail: "Field 'image' or 'url' is required" });
      return;
    }
    const size = /^(\d+)x(\d+)$/.exec(record.size ?? '1024x1024');
    if (!size) {
      openaiError(res, 400, `Invalid size '${record.size}'`, 'invalid_request_error');
      return;
    }
    if (!(await waitUnlessClosed(req, res, fake.delayMs))) {
      fake.cancels += 1;
      return;
    }
    switch (fake.failure) {
      case 'rate-limit':
        openaiError(res, 429, 'Rate limit reached for images', 'rate_limit_error', { 'retry-after': '7' });
        return;
      case 'server-error':
        openaiError(res, 500, 'Image generation failed: CUDA error: an illegal memory access was encountered', 'server_error');
        return;
      case 'unavailable':
        openaiError(res, 503, 'The server is loading the model', 'service_unavailable');
        return;
      case 'bad-request':
        openaiError(res, 400, 'Requested image size exceeds the maximum allowed size', 'invalid_request_error');
        return;
      case 'unauthorized':
        openaiError(res, 401, 'Incorrect API key provided', 'invalid_request_error');
        return;
      case 'malformed':
        sendJson(res, 200, { created: Math.floor(Date.now() / 1000), data: [{}] });
        return;
      case 'not-an-image':
        sendJson(res, 200, { created: Math.floor(Date.now() / 1000), data: [{ b64_json: Buffer.from('hello, not an image').toString('base64') }] });
        return;
      default:
        break;
    }
    const width = Number(size[1]) + (fake.failure === 'wrong-size' ? 16 : 0);
    const png = await solidPng(width, Number(size[2]), record.seed ?? 0);
    if (fake.responseMode === 'b64_json') {
      sendJson(res, 200, { created: Math.floor(Date.now() / 1000), data: [{ b64_json: png.toString('base64'), revised_prompt: null }] });
      return;
    }
    const id = randomUUID();
    files.set(id, png);
    const link = fake.responseMode === 'url' ? `${fake.url}/files/${id}.png` : `/v1/images/${id}/content`;
    sendJson(res, 200, { created: Math.floor(Date.now() / 1000), data: [{ url: link }] });
  }

  const started = await startHttpServer(handle);
  fake.url = started.url;
  fake.port = started.port;
  return fake;
}

/** The conformance suite's view of this fake. */
export function openaiObserver(fake: FakeOpenaiImages): BackendObserver {
  return {
    lastReceived() {
      const r = fake.requests.at(-1);
      if (!r) return undefined;
      const size = /^(\d+)x(\d+)$/.exec(r.size ?? '');
      return {
        prompt: r.prompt,
        negativePrompt: r.negativePrompt,
        seed: r.seed,
        width: size ? Number(size[1]) : undefined,
        height: size ? Number(size[2]) : undefined,
        referenceImages: r.imageFields.length,
        referenceImageSizes: r.imageSizes,
      };
    },
    cancelCount: () => fake.cancelCount(),
    slowNextGeneration() {
      fake.delayMs = 600_000; // only the client going away ends it
      return fake.waitForRequest();
    },
    reset: () => fake.reset(),
  };
}
