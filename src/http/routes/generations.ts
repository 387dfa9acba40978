/**
 * POST /v1/images/generations — the seed's endpoint, as "submit a job, then wait for it".
 *
 * Without a Prefer header the call is synchronous, exactly the seed's contract: 200 with the image,
 * or the error; a client that goes away cancels the job (never charged). `Prefer: respond-async`
 * (RFC 7240) answers 202 with the job at once; `Prefer: wait=N` waits up to N seconds, then answers
 * 200 with the result or 202 with the job (which keeps running either way).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import { isTerminal, type JobRecord } from '../../domain/jobs.ts';
import type { GenerationParams, ValidateFn } from '../../contracts/validate-generation.ts';
import type { SubmitGeneration } from '../../pipeline/submit-generation.ts';
import { waitForJob } from '../../jobs/wait-for-job.ts';
import type { JobsHttpDeps } from './jobs.ts';
import { sendJob } from './jobs.ts';
import { streamGeneration, type StreamKind } from './stream-generation.ts';

export interface GenerationRouteDeps {
  authenticate: preHandlerHookHandler;
  validateGeneration: ValidateFn;
  submitGeneration: SubmitGeneration;
  jobs: JobsHttpDeps;
  /** Limit of a synchronous call, from submit to answer; also the cap of Prefer: wait. */
  requestTimeoutMs: number;
}

export interface Preference {
  respondAsync: boolean;
  /** Seconds, from `wait=N`; null when absent. */
  waitS: number | null;
}

/** RFC 7240 Prefer: comma-separated preferences, parameters after ';', names case-insensitive. Unknown ones are ignored, as the RFC says. */
export function parsePrefer(header: string | string[] | undefined): Preference {
  const out: Preference = { respondAsync: false, waitS: null };
  const values = Array.isArray(header) ? header : header === undefined ? [] : [header];
  for (const pref of values.flatMap((v) => v.split(','))) {
    const [token] = pref.split(';');
    const [name, rawValue] = (token ?? '').split('=').map((s) => s.trim());
    const value = rawValue?.replace(/^"(.*)"$/, '$1');
    if (name?.toLowerCase() === 'respond-async') out.respondAsync = true;
    if (name?.toLowerCase() === 'wait' && value !== undefined && /^\d{1,6}$/.test(value)) out.waitS = Number(value);
  }
  return out;
}

/** The IETF httpapi Idempotency-Key draft: a string (sf-string; quotes optional here), which we bound. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function readIdempotencyKey(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  const raw = (Array.isArray(header) ? header.join(',') : header).trim().replace(/^"(.*)"$/, '$1');
  if (!IDEMPOTENCY_KEY.test(raw)) {
    throw new ApiError('invalid_value', 'Idempotency-Key must be 1 to 255 printable ASCII characters without spaces', { param: 'Idempotency-Key' });
  }
  return raw;
}

function sendOutcome(reply: FastifyReply, job: JobRecord): FastifyReply {
  if (job.timings) {
    // Server-Timing (W3C): lets clients and the benchmark split engine time from our own share.
    reply.header('server-timing', Object.entries(job.timings).map(([k, v]) => `${k.replace(/_ms$/, '')};dur=${v}`).join(', '));
  }
  if (job.status === 'succeeded' && job.result) return reply.code(200).send(job.result);
  if (job.status === 'failed' && job.error) {
    throw new ApiError(job.error.error.code, job.error.error.message, { param: job.error.error.param, retryAfterS: job.error.retryAfterS });
  }
  throw new ApiError('job_canceled', `job ${job.id} was canceled before it finished`);
}

/**
 * Submits a validated request and answers it: synchronously (the seed's contract), as a job
 * (Prefer), or as a stream (stream: true). Shared by /v1/images/generations and /v1/images/edits.
 * `body` is what an Idempotency-Key is compared against.
 */
export async function answerGeneration(
  deps: GenerationRouteDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  params: GenerationParams,
  body: unknown,
  kind: StreamKind = 'image_generation',
) {
  const prefer = parsePrefer(request.headers.prefer);
  const idempotencyKey = readIdempotencyKey(request.headers['idempotency-key']);
  const isSync = !prefer.respondAsync && prefer.waitS === null;
  if (params.stream && !isSync) {
    throw new ApiError('invalid_value', 'stream: true answers with events as the image is drawn; it cannot be combined with Prefer: respond-async or wait', { param: 'stream' });
  }

  const clientGone = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) clientGone.abort(new Error('client closed the connection'));
  };
  reply.raw.on('close', onClose);
  try {
    const { job, created } = await deps.submitGeneration(params, {
      keyId: request.apiKey!.id,
      requestId: request.id,
      body,
      idempotencyKey,
      signal: clientGone.signal,
    });
    if (!created) reply.header('idempotent-replayed', 'true');
    request.log.info({ jobId: job.id, created, mode: params.stream ? 'stream' : isSync ? 'sync' : 'async' }, 'job submitted');
    if (params.stream) return await streamGeneration(deps, request, reply, job, { kind, created, params });

    const waitMs = isSync ? deps.requestTimeoutMs : Math.min((prefer.waitS ?? 0) * 1000, deps.requestTimeoutMs);
    // Read again even without waiting: the runner may have started it meanwhile (no queue position then).
    const latest = waitMs > 0 ? await waitForJob(deps.jobs, job.id, waitMs, clientGone.signal) : await deps.jobs.store.get(job.id);
    const current = latest ?? job;
    // respond-async without wait asked for the job, whatever state it is in by now.
    if (isTerminal(current.status) && waitMs > 0) return sendOutcome(reply, current);

    if (!isSync) {
      if (prefer.respondAsync) reply.header('preference-applied', 'respond-async');
      reply.header('location', `/v1/jobs/${current.id}`);
      return sendJob(reply.code(202), deps.jobs, current);
    }
    // A synchronous caller that left, or its deadline: the job it made ends with it.
    if (clientGone.signal.aborted) {
      if (created) await deps.jobs.runner.stop(current.id);
      throw new ApiError('client_closed_request', 'the client closed the connection before the image was ready');
    }
    const timeout = new ApiError('generation_timeout', `the generation did not finish within ${deps.requestTimeoutMs} ms`);
    const ended = created ? await deps.jobs.runner.stop(current.id, timeout) : null;
    if (ended?.status === 'succeeded') return sendOutcome(reply, ended);
    throw timeout;
  } finally {
    reply.raw.off('close', onClose);
  }
}

export function registerGenerationRoutes(app: FastifyInstance, deps: GenerationRouteDeps): void {
  app.post('/v1/images/generations', { preHandler: deps.authenticate }, async (request: FastifyRequest, reply) => {
    const params = deps.validateGeneration(request.body);
    return answerGeneration(deps, request, reply, params, request.body);
  });
}
