/**
 * The job object as the API shows it (GET /v1/jobs/{id}, 202 answers, SSE terminal events, webhook
 * payloads): one function, so every place that shows a job shows the same thing. Times are ms since
 * epoch, like the generation response's `created`.
 */
import type { JobError, JobRecord } from '../domain/jobs.ts';

export interface JobView {
  id: string;
  object: 'image.generation.job';
  model: string;
  status: JobRecord['status'];
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  attempts: number;
  /** Jobs ahead of this one while queued (0 = next); null otherwise. */
  queue_position: number | null;
  progress: { step: number; steps: number | null } | null;
  input: {
    prompt: string;
    negative_prompt: string;
    image_size: { width: number; height: number };
    seed: number;
    enhance_prompt: boolean;
    watermark: boolean;
    response_format: 'url' | 'b64_json';
    reference_images: number;
    n: number;
    output_format: 'png' | 'jpeg' | 'webp';
    quality: 'auto' | 'low' | 'medium' | 'high';
  };
  result: JobRecord['result'];
  error: JobError['error'] | null;
  timings: Record<string, number> | null;
  urls: { get: string; cancel: string; events: string };
}

export function renderJob(job: JobRecord, baseUrl: string, queuePosition: number | null): JobView {
  const self = `${baseUrl}/v1/jobs/${job.id}`;
  return {
    id: job.id,
    object: 'image.generation.job',
    model: job.model,
    status: job.status,
    created_at: job.createdAtMs,
    started_at: job.startedAtMs,
    completed_at: job.completedAtMs,
    attempts: job.attempts,
    queue_position: job.status === 'queued' ? queuePosition : null,
    progress: job.status === 'running' ? job.progress : null,
    input: {
      prompt: job.params.prompt,
      negative_prompt: job.params.negativePrompt,
      image_size: { width: job.params.width, height: job.params.height },
      seed: job.params.seed,
      enhance_prompt: job.params.enhancePrompt,
      watermark: job.params.watermark,
      response_format: job.params.responseFormat,
      reference_images: job.params.referenceKeys.length,
      // Jobs stored before these fields existed drew one PNG at the full step count.
      n: job.params.n ?? 1,
      output_format: job.params.outputFormat ?? 'png',
      quality: job.params.quality ?? 'auto',
    },
    result: job.result,
    error: job.error ? job.error.error : null,
    timings: job.timings,
    urls: { get: self, cancel: `${self}/cancel`, events: `${self}/events` },
  };
}
