/**
 * A local stand-in for an OpenAI-compatible chat server (OpenAI, Ollama, llama.cpp server, vLLM, DashScope
 * compatible mode), following the chat completions protocol: `POST /v1/chat/completions` with a JSON body
 * `{model, messages, temperature?, seed?, …}` answered by a `chat.completion` object, errors as
 * `{error: {message, type, code}}` with an HTTP status. Listens on 127.0.0.1, port 0. Records every request so
 * tests can count calls, and answers as the current behaviour says.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeChatMessage {
  role: string;
  content: string;
}

export interface FakeChatRequest {
  model: string;
  messages: FakeChatMessage[];
  temperature?: number;
  seed?: number;
  /** The whole parsed body, other fields included. */
  body: Record<string, unknown>;
  authorization: string | undefined;
}

export type FakeChatBehaviour =
  /** A normal completion with this assistant content (or content computed from the request). */
  | { kind: 'reply'; content: string | ((request: FakeChatRequest) => string); delayMs?: number; finishReason?: string }
  /** An OpenAI-style error body with this status. */
  | { kind: 'error'; status: number; message: string; type?: string; code?: string | null }
  /** Any body at all, for garbage answers. */
  | { kind: 'raw'; status: number; body: string; contentType?: string };

export interface FakeChatServerOptions {
  behaviour?: FakeChatBehaviour;
  /** When set, a request without `Authorization: Bearer <apiKey>` gets OpenAI's 401. */
  apiKey?: string;
  /** Body fields this server does not accept (e.g. `seed`): answered with OpenAI's 400 for unknown arguments. */
  rejectedFields?: string[];
}

export interface FakeChatServer {
  /** Base URL to configure a client with, e.g. `http://127.0.0.1:41234/v1`. */
  url: string;
  /** Every well-formed chat completions request received, in order. */
  requests: FakeChatRequest[];
  setBehaviour(behaviour: FakeChatBehaviour): void;
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string, type: string, code: string | null): void {
  sendJson(res, status, { error: { message, type, param: null, code } });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseChatRequest(text: string, authorization: string | undefined): FakeChatRequest | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'We could not parse the JSON body of your request.';
  }
  if (typeof body !== 'object' || body === null) return 'The request body must be a JSON object.';
  const record = body as Record<string, unknown>;
  if (typeof record.model !== 'string') return "you must provide a model parameter";
  if (!Array.isArray(record.messages) || record.messages.length === 0) return "'messages' must be a non-empty array";
  return {
    model: record.model,
    messages: record.messages as FakeChatMessage[],
    temperature: typeof record.temperature === 'number' ? record.temperature : undefined,
    seed: typeof record.seed === 'number' ? record.seed : undefined,
    body: record,
    authorization,
  };
}

export async function startFakeChatServer(options: FakeChatServerOptions = {}): Promise<FakeChatServer> {
  let behaviour: FakeChatBehaviour = options.behaviour ?? { kind: 'reply', content: 'A photo.' };
  const requests: FakeChatRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let completionCount = 0;

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, String(error), 'server_error', null);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/v1/chat/completions') return sendError(res, 404, `Unknown URL ${path}`, 'invalid_request_error', 'unknown_url');
    if (req.method !== 'POST') return sendError(res, 405, `Method ${req.method} not allowed`, 'invalid_request_error', null);
    const text = await readBody(req);
    const authorization = req.headers.authorization;
    if (options.apiKey !== undefined && authorization !== `Bearer ${options.apiKey}`) {
      return sendError(res, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    }
    const request = parseChatRequest(text, authorization);
    if (typeof request === 'string') return sendError(res, 400, request, 'invalid_request_error', null);
    const rejected = options.rejectedFields?.find((field) => field in request.body);
    if (rejected !== undefined) {
      requests.push(request);
      return sendError(res, 400, `Unrecognized request argument supplied: ${rejected}`, 'invalid_request_error', null);
    }
    requests.push(request);

    const current = behaviour;
    if (current.kind === 'error') {
      return sendError(res, current.status, current.message, current.type ?? 'server_error', current.code ?? null);
    }
    if (current.kind === 'raw') {
      res.writeHead(current.status, { 'content-type': current.contentType ?? 'application/json' });
      res.end(current.body);
      return;
    }
    const content = typeof current.content === 'function' ? current.content(request) : current.content;
    const reply = () => {
      completionCount++;
      sendJson(res, 200, {
        id: `chatcmpl-fake-${completionCount}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: request.model,
        system_fingerprint: 'fp_fake',
        choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: current.finishReason ?? 'stop' }],
        // Rough token counts (4 characters a token); nothing reads them but the shape is the protocol's.
        usage: {
          prompt_tokens: Math.ceil(text.length / 4),
          completion_tokens: Math.ceil(content.length / 4),
          total_tokens: Math.ceil(text.length / 4) + Math.ceil(content.length / 4),
        },
      });
    };
    if (!current.delayMs) return reply();
    // A slow model: answer later, unless the client gives up first (then free the timer so close() is quick).
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!res.destroyed) reply();
    }, current.delayMs);
    timers.add(timer);
    res.on('close', () => {
      clearTimeout(timer);
      timers.delete(timer);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    setBehaviour(next) {
      behaviour = next;
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
