/**
 * One call to an OpenAI-compatible chat server (`POST /chat/completions`: OpenAI, Ollama, llama.cpp server, vLLM,
 * DashScope compatible mode). Never throws: every failure comes back as a reason code the enhancer counts and
 * falls back on.
 */
import { request } from 'undici';

export interface ChatMessage {
  role: 'system' | 'user';
  content: string;
}

export interface ChatCall {
  url: string;
  model: string;
  apiKey?: string;
  messages: ChatMessage[];
  /** Sent as `seed` so a server that supports it samples reproducibly. */
  seed: number;
  /** Aborts the call: the enhancer's time budget. */
  signal: AbortSignal;
}

export type ChatOutcome =
  | { ok: true; content: string; attempts: number }
  | { ok: false; reason: string; detail: string; attempts: number };

/** A rewrite is at most ~2000 characters; a body far bigger than that is not an answer worth reading. */
const MAX_RESPONSE_BYTES = 256 * 1024;
/** Room for a 200-word rewrite in any language, plus a short reasoning block from thinking models. */
const MAX_TOKENS = 1024;

/** `http://host:11434/v1` → `http://host:11434/v1/chat/completions`; a full endpoint URL is kept. */
export function chatCompletionsUrl(base: string): string {
  const trimmed = base.replace(/\/+$/u, '');
  return trimmed.endsWith('/chat/completions') ? trimmed : `${trimmed}/chat/completions`;
}

/**
 * Removes the API key, and any `Bearer <token>`, from text bound for the log: some servers and proxies quote the
 * Authorization header back in a 401 body. Applied to whole bodies before any slicing, so a key cut in two by a
 * length limit cannot survive as a partial match. Keys under 4 characters are not searched for (replacing every
 * `a` would wreck the message; such a key is no secret anyway).
 */
export function scrubCredentials(text: string, apiKey: string | undefined): string {
  let out = text;
  if (apiKey && apiKey.length >= 4) out = out.split(apiKey).join('***');
  return out.replace(/\bBearer\s+[^\s"'`,;]+/giu, 'Bearer ***');
}

type RawResponse = { status: number; text: string } | { failed: string; detail: string };

async function postJson(url: string, apiKey: string | undefined, body: object, signal: AbortSignal): Promise<RawResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  try {
    const response = await request(url, { method: 'POST', headers, body: JSON.stringify(body), signal });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_RESPONSE_BYTES) {
        response.body.destroy();
        return { failed: 'bad_response', detail: `response larger than ${MAX_RESPONSE_BYTES} bytes` };
      }
      chunks.push(chunk as Buffer);
    }
    return { status: response.statusCode, text: scrubCredentials(Buffer.concat(chunks).toString('utf8'), apiKey) };
  } catch (error) {
    const detail = scrubCredentials(error instanceof Error ? `${error.name}: ${error.message}` : String(error), apiKey);
    if (signal.aborted) {
      const isTimeout = (signal.reason as { name?: unknown } | undefined)?.name === 'TimeoutError';
      return { failed: isTimeout ? 'timeout' : 'aborted', detail };
    }
    return { failed: 'connection', detail };
  }
}

/** The error message of an OpenAI-style error body (`{error:{message}}`), or the start of the body. */
function errorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (typeof parsed.error?.message === 'string') return parsed.error.message;
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: the raw text below is the best description there is
  }
  return text.slice(0, 200);
}

function parseCompletion(text: string): { content: string } | { reason: string; detail: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { reason: 'bad_response', detail: `not JSON: ${text.slice(0, 80)}` };
  }
  const choice = (parsed as { choices?: unknown })?.choices;
  const first = Array.isArray(choice) ? (choice[0] as { message?: { content?: unknown }; finish_reason?: unknown }) : undefined;
  const content = first?.message?.content;
  if (typeof content !== 'string') return { reason: 'bad_response', detail: 'no choices[0].message.content string' };
  // A rewrite cut off by the token limit may have lost its end, quoted text included.
  if (first?.finish_reason === 'length') return { reason: 'truncated', detail: 'finish_reason length' };
  return { content };
}

/**
 * Sends the chat request with `temperature: 0` and `seed`. A server that rejects `seed` (a 400/422 naming it) is
 * asked once more without it, inside the same budget.
 */
export async function requestChatCompletion(call: ChatCall): Promise<ChatOutcome> {
  const url = chatCompletionsUrl(call.url);
  const body: Record<string, unknown> = {
    model: call.model,
    messages: call.messages,
    temperature: 0,
    seed: call.seed,
    max_tokens: MAX_TOKENS,
    stream: false,
  };
  let attempts = 0;
  for (;;) {
    attempts++;
    const raw = await postJson(url, call.apiKey, body, call.signal);
    if ('failed' in raw) return { ok: false, reason: raw.failed, detail: raw.detail, attempts };
    if (raw.status < 200 || raw.status >= 300) {
      const message = errorMessage(raw.text);
      if ((raw.status === 400 || raw.status === 422) && 'seed' in body && /\bseed\b/iu.test(message)) {
        delete body.seed;
        continue;
      }
      return { ok: false, reason: `http_${raw.status}`, detail: message, attempts };
    }
    const completion = parseCompletion(raw.text);
    if ('reason' in completion) return { ok: false, reason: completion.reason, detail: completion.detail, attempts };
    return { ok: true, content: completion.content, attempts };
  }
}
