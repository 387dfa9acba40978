/**
 * Takes a request's socket over from Fastify and opens a Server-Sent Events response on it: the headers
 * both event streams send (GET /v1/jobs/:id/events, and `stream: true` generations). `no-transform` and
 * `X-Accel-Buffering: no` keep proxies (nginx) from buffering events until the stream ends.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

export function openEventStream(request: FastifyRequest, reply: FastifyReply, extraHeaders: Record<string, string> = {}): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': request.id,
    ...extraHeaders,
  });
  return res;
}
