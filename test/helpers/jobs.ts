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
