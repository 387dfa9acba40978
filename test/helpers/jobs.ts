/** Helpers for the job API in tests: read a job's SSE stream to its end, wait for a job's end through it. */
import assert from 'node:assert/strict';
import type { TestServer } from './server.ts';

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: any;
}

/** Reads a Server-Sent Events stream until the server ends it, parsing each event's JSON data. */
export async function readEvents(url: string, apiKey: string, signal?: AbortSignal): Promise<SseEvent[]> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${apiKey}`, accept: 'text/event-stream' }, signal });
  assert.equal(res.status, 200, `GET ${url}: ${res.status}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const text = await res.text();
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l && !l.startsWith(':'));
    if (lines.length === 0) continue;
    const field = (name: string) => lines.filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2));
    events.push({ id: field('id')[0], event: field('event')[0] ?? 'message', data: JSON.parse(field('data').join('\n')) });
  }
  return events;
}

/** Waits for the job's event stream to end (the job is terminal), then checks the status it ended in. */
export async function waitForStatus(server: TestServer, jobId: string, status: string, apiKey?: string): Promise<any> {
  const key = apiKey ?? (await import('./server.ts')).TEST_KEY;
  await readEvents(`${server.url}/v1/jobs/${jobId}/events`, key);
  const res = await server.get(`/v1/jobs/${jobId}`, { authorization: `Bearer ${key}` });
  assert.equal(res.status, 200);
  assert.equal(res.json.status, status, `job ${jobId}: ${JSON.stringify(res.json.error)}`);
  return res.json;
}

export interface EventStream {
  /** Every event received so far, in order. */
  readonly events: SseEvent[];
  /** Resolves with the first event (already received or still to come) that matches; rejects when the stream ends without one. */
  next(match: (event: SseEvent) => boolean): Promise<SseEvent>;
  /** Resolves with every event once the server ends the stream. */
  readonly ended: Promise<SseEvent[]>;
  /** Closes the stream from our side. */
  close(): void;
}

function parseEventBlock(block: string): SseEvent | null {
  const lines = block.split('\n').filter((l) => l && !l.startsWith(':'));
  if (lines.length === 0) return null;
  const field = (name: string) => lines.filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2));
  return { id: field('id')[0], event: field('event')[0] ?? 'message', data: JSON.parse(field('data').join('\n')) };
}

/**
 * Opens a job's event stream and keeps reading it in the background, so a test can wait for one
 * event (say `running`) while the job goes on, instead of reading the stream to its end.
 */
export async function openEvents(url: string, apiKey: string): Promise<EventStream> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${apiKey}`, accept: 'text/event-stream' }, signal: controller.signal });
  assert.equal(res.status, 200, `GET ${url}: ${res.status}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: SseEvent[] = [];
  const waiters = new Set<{ match: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void; reject: (err: Error) => void }>();
  let finished = false;
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buffered.indexOf('\n\n')) >= 0) {
          const event = parseEventBlock(buffered.slice(0, cut));
          buffered = buffered.slice(cut + 2);
          if (!event) continue;
          events.push(event);
          for (const w of [...waiters]) {
            if (w.match(event)) {
              waiters.delete(w);
              w.resolve(event);
            }
          }
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    } finally {
      finished = true;
      for (const w of waiters) w.reject(new Error(`the event stream ended without the awaited event; got ${events.map((e) => e.event).join(', ')}`));
      waiters.clear();
    }
    return events;
  })();
  // A test that only waits for one event must not see an unhandled rejection from the rest.
  ended.catch(() => undefined);
  return {
    events,
    ended,
    next: (match) => {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      if (finished) return Promise.reject(new Error(`the event stream ended without the awaited event; got ${events.map((e) => e.event).join(', ')}`));
      return new Promise((resolve, reject) => waiters.add({ match, resolve, reject }));
    },
    close: () => controller.abort(),
  };
}

export { waitUntil } from './wait-until.ts';
