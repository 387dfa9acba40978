/**
 * A fake DashScope (Model Studio) multimodal-generation endpoint:
 *   POST /api/v1/services/aigc/multimodal-generation/generation  (Bearer key)
 *   -> {output: {choices: [{finish_reason, message: {role, content: [{image: <url>}]}}]}, usage, request_id}
 *   GET /api/v1/tasks/{task_id}  (Bearer key) -> {request_id, output: {task_id, task_status}}
 * Errors are `{request_id, code, message}` with DashScope's codes and statuses. The result URL
 * points back at this server (standing in for OSS) and is served without authentication.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  imageSize,
  readBody,
  sendBytes,
  sendJson,
  solidPng,
  startHttpServer,
  waitUnlessClosed,
} from '../../src/engines/testing/fake-http.ts';
import type { BackendObserver } from '../../src/engines/testing/conformance.ts';

export type FakeDashscopeFailure =
  | 'none'
  | 'throttle'
  | 'quota'
  | 'inspection'
  | 'invalid-parameter'
  | 'internal'
  | 'unavailable'
  | 'arrearage'
  /** 200 with an empty content list */
  | 'malformed'
  | 'wrong-size'
  /** the result URL answers 403 (expired signature) */
  | 'expired-url';

export interface FakeDashscopeRequest {
  authorization: string | undefined;
  model: string | undefined;
  text: string | undefined;
  /** data: URIs / URLs of the reference images, in order. */
  images: string[];
  imageSizes: Array<{ width: number; height: number } | undefined>;
  parameters: Record<string, unknown>;
}

export interface FakeDashscope {
  url: string;
  port: number;
  apiKey: string;
  failure: FakeDashscopeFailure;
  delayMs: number;
  readonly requests: FakeDashscopeRequest[];
  cancels: number;
  downloads: number;
  /** GET /api/v1/tasks/{id} calls (what the health check makes). */
  taskQueries: number;
  cancelCount(): number;
  waitForRequest(timeoutMs?: number): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

export const FAKE_DASHSCOPE_PATH = '/api/v1/services/aigc/multimodal-generation/generation';

export async function startFakeDashscope(options: { apiKey?: string } = {}): Promise<FakeDashscope> {
  const files = new Map<string, Buffer>();
  let arrivals: Array<() => void> = [];
  const fake: FakeDashscope = {
    url: '',
    port: 0,
    apiKey: options.apiKey ?? 'sk-fake-dashscope-key-0123456789',
    failure: 'none',
    delayMs: 10,
    requests: [],
    cancels: 0,
    downloads: 0,
    taskQueries: 0,
    cancelCount: () => fake.cancels,
    waitForRequest: (timeoutMs = 120_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no DashScope request arrived')), timeoutMs);
        arrivals.push(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    reset: () => {
      fake.failure = 'none';
      fake.delayMs = 10;
      fake.requests.length = 0;
      fake.cancels = 0;
      fake.downloads = 0;
      fake.taskQueries = 0;
      arrivals = [];
    },
    close: () => started.close(),
  };

  const error = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void =>
    sendJson(res, status, { request_id: randomUUID(), code, message }, headers);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.local');
    if (req.method === 'GET' && url.pathname.startsWith('/oss/')) {
      fake.downloads += 1;
      if (fake.failure === 'expired-url') {
        res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>');
        return;
      }
      const file = files.get(url.pathname.slice('/oss/'.length));
      if (!file) res.writeHead(404).end();
      else sendBytes(res, 200, file, 'image/png');
      return;
    }
    if (req.method === 'GET' && url.pathname.startsWith('/api/v1/tasks/')) {
      // Task query (Model Studio "Query task result"): authenticated, free; an id that does not
      // exist or has expired answers 200 with task_status UNKNOWN.
      fake.taskQueries += 1;
      if (req.headers.authorization !== `Bearer ${fake.apiKey}`) {
        error(res, 401, 'InvalidApiKey', 'Invalid API-key provided.');
        return;
      }
      const taskId = decodeURIComponent(url.pathname.slice('/api/v1/tasks/'.length));
      sendJson(res, 200, { request_id: randomUUID(), output: { task_id: taskId, task_status: 'UNKNOWN' } });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/') {
      error(res, 404, 'NotFound', 'Not found');
      return;
    }
    if (req.method !== 'POST' || url.pathname !== FAKE_DASHSCOPE_PATH) {
      error(res, 404, 'NotFound', `Not found: ${url.pathname}`);
      return;
    }
    const body = await readBody(req);
    if (req.headers.authorization !== `Bearer ${fake.apiKey}`) {
      error(res, 401, 'InvalidApiKey', 'Invalid API-key provided.');
      return;
    }
    let parsed: { model?: string; input?: { messages?: Array<{ role?: string; content?: Array<{ image?: string; text?: string }> }> }; parameters?: Record<string, unknown> };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      error(res, 400, 'InvalidParameter', 'The request body is not valid JSON.');
      return;
    }
    const content = parsed.input?.messages?.[0]?.content ?? [];
    const images = content.filter((c) => typeof c.image === 'string').map((c) => c.image!);
    const record: FakeDashscopeRequest = {
      authorization: req.headers.authorization,
      model: parsed.model,
      text: content.find((c) => typeof c.text === 'string')?.text,
      images,
      imageSizes: await Promise.all(
        images.map((uri) => (uri.startsWith('data:') ? imageSize(Buffer.from(uri.slice(uri.indexOf(',') + 1), 'base64')) : Promise.resolve(undefined))),
      ),
      parameters: parsed.parameters ?? {},
    };
    fake.requests.push(record);
    for (const notify of arrivals.splice(0)) notify();
    if (!record.text) {
      error(res, 400, 'InvalidParameter', 'Field required: input.messages[0].content[].text');
      return;
    }
    const size = /^(\d+)\*(\d+)$/.exec(String(record.parameters.size ?? '1024*1024'));
    if (!size) {
      error(res, 400, 'InvalidParameter', 'The size format is invalid; use width*height.');
      return;
    }
    if (!(await waitUnlessClosed(req, res, fake.delayMs))) {
      fake.cancels += 1;
      return;
    }
    switch (fake.failure) {
      case 'throttle':
        error(res, 429, 'Throttling.RateQuota', 'Requests rate limit exceeded, please try again later.', { 'retry-after': '4' });
        return;
      case 'quota':
        error(res, 429, 'Throttling.AllocationQuota', 'Allocated quota exceeded, please increase your quota limit.');
        return;
      case 'inspection':
        error(res, 400, 'DataInspectionFailed', 'Input data may contain inappropriate content.');
        return;
      case 'invalid-parameter':
        error(res, 400, 'InvalidParameter', 'The image resolution is out of range.');
        return;
      case 'internal':
        error(res, 500, 'InternalError', 'An internal error has occured, please try again later or contact service support.');
        return;
      case 'unavailable':
        error(res, 503, 'ServiceUnavailable', 'The service is temporarily unavailable.');
        return;
      case 'arrearage':
        error(res, 400, 'Arrearage', 'Access denied, please make sure your account is in good standing.');
        return;
      case 'malformed':
        sendJson(res, 200, { output: { choices: [{ finish_reason: 'stop', message: { role: 'assistant', content: [] } }] }, request_id: randomUUID() });
        return;
      default:
        break;
    }
    const width = Number(size[1]) + (fake.failure === 'wrong-size' ? 64 : 0);
    const height = Number(size[2]);
    const id = `${randomUUID()}.png`;
    files.set(id, await solidPng(width, height, Number(record.parameters.seed ?? 0)));
    sendJson(res, 200, {
      output: { choices: [{ finish_reason: 'stop', message: { role: 'assistant', content: [{ image: `${fake.url}/oss/${id}?Expires=86400&Signature=fake` }] } }] },
      usage: { width, height, image_count: 1 },
      request_id: randomUUID(),
    });
  }

  const started = await startHttpServer(handle);
  fake.url = started.url;
  fake.port = started.port;
  return fake;
}

/** The conformance suite's view of this fake. */
export function dashscopeObserver(fake: FakeDashscope): BackendObserver {
  return {
    lastReceived() {
      const r = fake.requests.at(-1);
      if (!r) return undefined;
      const size = /^(\d+)\*(\d+)$/.exec(String(r.parameters.size ?? ''));
      return {
        prompt: r.text,
        negativePrompt: typeof r.parameters.negative_prompt === 'string' ? r.parameters.negative_prompt : undefined,
        seed: typeof r.parameters.seed === 'number' ? r.parameters.seed : undefined,
        width: size ? Number(size[1]) : undefined,
        height: size ? Number(size[2]) : undefined,
        referenceImages: r.images.length,
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
