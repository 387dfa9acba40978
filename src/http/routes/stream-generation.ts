/**
 * `stream: true`: the answer as Server-Sent Events in OpenAI's image streaming shapes, so
 * openai-node's `for await (const event of stream)` reads it. `event:` names the type, `data:` is
 * the event object:
 *   image_generation.partial_image  {type, b64_json, partial_image_index, created_at, size, quality, background, output_format}
 *   image_generation.completed      {type, b64_json, created_at, size, quality, background, output_format, usage, seed, revised_prompt}
 * (`image_edit.*` on /v1/images/edits). One `completed` per image (n of them), each with its share
 * of the usage; OpenAI's token counts are 0 (images are priced per image here) and usage adds
 * credits_used and usd_spent. A failure ends the stream with `event: error` and {type: "error",
 * error: {message, type, param, code}}, which openai-node raises as an APIError.
 *
 * Partial images come from the job runner (JobParams.partialImages, picked among the engine's
 * previews at evenly spaced steps); an engine without previews sends only the completed events.
 * A caller that disconnects cancels the job, as a synchronous caller does.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import { isTerminal, type JobRecord } from '../../domain/jobs.ts';
import type { GenerationParams } from '../../contracts/validate-generation.ts';
import type { JobEvent } from '../../jobs/ports.ts';
import { encodePartialImage } from '../../images/encode-output.ts';
import type { GenerationRouteDeps } from './generations.ts';
import { openEventStream } from './event-stream.ts';

export type StreamKind = 'image_generation' | 'image_edit';

export interface StreamOptions {
  kind: StreamKind;
  created: boolean;
  params: GenerationParams;
}

const HEARTBEAT_MS = 15_000;

export async function streamGeneration(deps: GenerationRouteDeps, request: FastifyRequest, reply: FastifyReply, job: JobRecord, options: StreamOptions): Promise<void> {
  const { kind, params } = options;
  const common = () => ({
    created_at: Math.floor(Date.now() / 1000),
    size: `${params.width}x${params.height}`,
    quality: params.quality,
    background: 'opaque',
    output_format: params.outputFormat,
  });

  const res = openEventStream(request, reply, options.created ? {} : { 'idempotent-replayed': 'true' });
  let ended = false;
  const write = (event: string, data: unknown) => {
    if (!ended) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  // Events are written in the order they came, each after the one before has been encoded.
  let chain: Promise<void> = Promise.resolve();
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    clearTimeout(deadline);
    unsubscribe();
    res.end();
    finish();
  };
  const enqueue = (work: () => Promise<void>) => {
    chain = chain.then(work).catch((err: unknown) => {
      request.log.error({ err, jobId: job.id }, 'stream could not write an event');
      end();
    });
  };

  const writeOutcome = async () => {
    const latest = (await deps.jobs.store.get(job.id)) ?? job;
    if (latest.status === 'succeeded' && latest.result) {
      const count = latest.result.data.length;
      const share = (v: number, digits: number) => Math.round((v / count) * 10 ** digits) / 10 ** digits;
      for (const item of latest.result.data) {
        write(`${kind}.completed`, {
          type: `${kind}.completed`,
          b64_json: item.b64_json,
          ...common(),
          usage: {
            input_tokens: 0,
            input_tokens_details: { image_tokens: 0, text_tokens: 0 },
            output_tokens: 0,
            total_tokens: 0,
            credits_used: share(latest.result.meta.usage.credits_used, 6),
            usd_spent: share(latest.result.meta.usage.usd_spent, 9),
          },
          seed: item.seed,
          revised_prompt: item.revised_prompt,
        });
      }
    } else {
      const error =
        latest.status === 'failed' && latest.error
          ? latest.error.error
          : new ApiError('job_canceled', `job ${job.id} was canceled before it finished`).toBody().error;
      write('error', { type: 'error', error });
    }
    end();
  };

  const onEvent = (event: JobEvent) => {
    if (event.type === 'partial_image') {
      enqueue(async () => {
        const file = await encodePartialImage(event.image, params.width, params.height, { format: params.outputFormat, compression: params.outputCompression });
        write(`${kind}.partial_image`, { type: `${kind}.partial_image`, b64_json: file.data.toString('base64'), partial_image_index: event.index, ...common() });
      });
    } else if (event.type === 'succeeded' || event.type === 'failed' || event.type === 'canceled') {
      enqueue(writeOutcome);
    }
  };
  const unsubscribe = deps.jobs.events.subscribe(job.id, onEvent);
  const heartbeat = setInterval(() => !ended && res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  // The run has its own deadline; this one also covers the time spent waiting in the queue.
  const deadline = setTimeout(() => {
    const timeout = new ApiError('generation_timeout', `the generation did not finish within ${deps.requestTimeoutMs} ms`);
    // Only the request that made the job ends it; a replay just stops waiting (as the synchronous call does).
    if (options.created) void deps.jobs.runner.stop(job.id, timeout);
    else {
      write('error', { type: 'error', error: timeout.toBody().error });
      end();
    }
  }, deps.requestTimeoutMs);
  res.on('close', () => {
    if (!ended) {
      // The caller left: the job it made ends with it (never charged), as with a synchronous call.
      if (options.created) void deps.jobs.runner.stop(job.id);
      end();
    }
  });

  // A job that ended before the subscription (an idempotent replay, a very fast run) is read once.
  const current = await deps.jobs.store.get(job.id);
  if (!current || isTerminal(current.status)) enqueue(writeOutcome);
  await done;
}
