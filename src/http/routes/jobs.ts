/**
 * The job resource: GET /v1/jobs/{id}, GET /v1/jobs (the caller's, newest first, cursor pages,
 * status filter), POST /v1/jobs/{id}/cancel, and GET /v1/jobs/{id}/events (Server-Sent Events).
 * A key sees only its own jobs; another key's job id answers 404, as an unknown one does.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import { isTerminal, type JobRecord, type JobStatus } from '../../domain/jobs.ts';
import { renderJob } from '../../contracts/job-view.ts';
import type { JobEvent, JobEvents, JobQueue, JobStore } from '../../jobs/ports.ts';
import type { JobRunner } from '../../jobs/job-runner.ts';
import { openEventStream } from './event-stream.ts';

export interface JobsHttpDeps {
  store: JobStore;
  queue: JobQueue;
  events: JobEvents;
  runner: Pick<JobRunner, 'stop'>;
  /** Base of the URLs in job objects (known once the server listens). */
  publicUrl: () => string;
  /** SSE comment interval that keeps proxies from closing an idle stream. */
  heartbeatMs?: number;
}

const STATUSES: JobStatus[] = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
const JOB_ID = /^job_[0-9a-f-]{36}$/;

export async function viewJob(deps: JobsHttpDeps, job: JobRecord) {
  const position = job.status === 'queued' ? await deps.queue.position(job.id) : null;
  return renderJob(job, deps.publicUrl(), position);
}

export async function sendJob(reply: FastifyReply, deps: JobsHttpDeps, job: JobRecord): Promise<FastifyReply> {
  return reply.send(await viewJob(deps, job));
}

async function ownJob(deps: JobsHttpDeps, request: FastifyRequest): Promise<JobRecord> {
  const id = (request.params as { id: string }).id;
  const job = JOB_ID.test(id) ? await deps.store.get(id) : null;
  if (!job || job.keyId !== request.apiKey!.id) throw new ApiError('not_found', `no job "${id}" for this API key`, { param: 'id' });
  return job;
}

function listQuery(query: Record<string, unknown>): { limit: number; status?: JobStatus; after?: string } {
  for (const name of Object.keys(query)) {
    if (!['limit', 'status', 'after'].includes(name)) throw new ApiError('unknown_field', `${name} is not a recognised query parameter (limit, status, after)`, { param: name });
  }
  const { limit, status, after } = query as { limit?: string; status?: string; after?: string };
  if (limit !== undefined && (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 100)) {
    throw new ApiError('invalid_value', `limit must be an integer from 1 to 100, got ${JSON.stringify(limit)}`, { param: 'limit' });
  }
  if (status !== undefined && !STATUSES.includes(status as JobStatus)) {
    throw new ApiError('invalid_value', `status must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(status)}`, { param: 'status' });
  }
  if (after !== undefined && (typeof after !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(after))) {
    throw new ApiError('invalid_value', 'after must be the next_cursor of a previous page', { param: 'after' });
  }
  return { limit: limit === undefined ? 20 : Number(limit), status: status as JobStatus | undefined, after };
}

export function registerJobRoutes(app: FastifyInstance, deps: JobsHttpDeps & { authenticate: preHandlerHookHandler }): void {
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const streams = new Set<() => void>();
  // Open event streams would hold a graceful shutdown forever: end them when it begins.
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });

  app.get('/v1/jobs', { preHandler: deps.authenticate }, async (request) => {
    const q = listQuery(request.query as Record<string, unknown>);
    const page = await deps.store.list({ keyId: request.apiKey!.id, ...q });
    return {
      object: 'list',
      data: await Promise.all(page.jobs.map((j) => viewJob(deps, j))),
      has_more: page.nextCursor !== null,
      next_cursor: page.nextCursor,
    };
  });

  app.get('/v1/jobs/:id', { preHandler: deps.authenticate }, async (request, reply) => sendJob(reply, deps, await ownJob(deps, request)));

  app.post('/v1/jobs/:id/cancel', { preHandler: deps.authenticate }, async (request, reply) => {
    const job = await ownJob(deps, request);
    if (job.status === 'succeeded' || job.status === 'failed') {
      throw new ApiError('job_finished', `job ${job.id} already ${job.status}; only a queued or running job can be canceled`, { param: 'id' });
    }
    const after = job.status === 'canceled' ? job : ((await deps.runner.stop(job.id)) ?? job);
    request.log.info({ jobId: job.id, from: job.status, to: after.status }, 'job cancel requested');
    return sendJob(reply, deps, after);
  });

  app.get('/v1/jobs/:id/events', { preHandler: deps.authenticate }, async (request, reply) => {
    const job = await ownJob(deps, request);
    const res = openEventStream(request, reply);
    let seq = 0;
    let ended = false;
    const write = (event: string, data: unknown) => {
      if (!ended) res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    // Live events wait in a buffer until the current state has been written, so none is lost or reordered.
    let pending: JobEvent[] | null = [];
    const onEvent = (event: JobEvent) => {
      if (pending) pending.push(event);
      else void relay(event);
    };
    const unsubscribe = deps.events.subscribe(job.id, onEvent);
    const heartbeat = setInterval(() => !ended && res.write(': keep-alive\n\n'), heartbeatMs);
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(end);
      res.end();
    };
    streams.add(end);
    res.on('close', end);

    const writeTerminal = async () => {
      const latest = (await deps.store.get(job.id)) ?? job;
      write(latest.status, await viewJob(deps, latest));
      end();
    };
    const relay = async (event: JobEvent) => {
      switch (event.type) {
        case 'queued':
          return write('queued', { id: job.id, status: 'queued', queue_position: event.position });
        case 'running':
          return write('running', { id: job.id, status: 'running', attempt: event.attempt });
        case 'progress':
          return write('progress', { id: job.id, step: event.step, steps: event.steps, ...(event.preview ? { preview: event.preview } : {}) });
        case 'partial_image':
          return; // a streaming request's own images (POST /v1/images/generations with stream: true)
        default:
          return writeTerminal();
      }
    };

    const current = (await deps.store.get(job.id)) ?? job;
    if (isTerminal(current.status)) {
      pending = null;
      return writeTerminal();
    }
    if (current.status === 'queued') {
      write('queued', { id: job.id, status: 'queued', queue_position: await deps.queue.position(job.id) });
    } else {
      write('running', { id: job.id, status: 'running', attempt: current.attempts });
      if (current.progress) write('progress', { id: job.id, step: current.progress.step, steps: current.progress.steps });
    }
    const buffered = pending;
    pending = null;
    for (const event of buffered) await relay(event);
  });
}
