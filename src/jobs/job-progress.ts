/**
 * Progress of a running job, to the store and to watchers. Previews are encoded off the engine's path,
 * one at a time (frames arriving meanwhile are dropped); a finished preview rides on the next progress
 * event, so watchers always see steps in order.
 */
import type { EngineProgress, RawImage } from '../domain/types.ts';
import type { RunnerLogger } from './job-control.ts';
import type { JobEvents, JobStore } from './ports.ts';

export interface ProgressDeps {
  store: Pick<JobStore, 'setProgress'>;
  events: JobEvents;
  logger: RunnerLogger;
  /** Turns an engine's intermediate image into the small data: URI sent with progress events. */
  encodePreview?: (image: RawImage) => Promise<string>;
}

/** `attempt`: the run's attempt; the store's refusal of a progress write (another attempt owns the job now, or it ended) stops the reporter. */
export function createProgressReporter(deps: ProgressDeps, jobId: string, attempt: number, partialImages: number) {
  let stopped = false;
  let partialsSent = 0;
  let encoding = false;
  let lastStep = -1;
  let ready: string | undefined;
  return {
    stop: () => {
      stopped = true;
    },
    report: (p: EngineProgress): void => {
      if (stopped) return;
      // Partial images at evenly spaced steps (for 2 of 20 steps: the first previews at or after steps 7 and 14).
      if (p.preview && partialsSent < partialImages && p.step >= Math.ceil((p.totalSteps * (partialsSent + 1)) / (partialImages + 1))) {
        deps.events.publish({ type: 'partial_image', jobId, index: partialsSent++, image: p.preview });
      }
      // ComfyUI reports a step, then its preview as a second report of the same step.
      if (p.step !== lastStep) {
        lastStep = p.step;
        const steps = Number.isFinite(p.totalSteps) && p.totalSteps > 0 ? p.totalSteps : null;
        void deps.store.setProgress(jobId, { step: p.step, steps }, attempt).then(
          (recorded) => {
            if (!recorded) stopped = true;
          },
          (err: unknown) => deps.logger.warn({ err, jobId }, 'could not record progress'),
        );
        if (!deps.events.hasSubscribers(jobId)) return;
        const preview = ready;
        ready = undefined;
        deps.events.publish({ type: 'progress', jobId, step: p.step, steps, ...(preview ? { preview } : {}) });
      }
      if (!p.preview || !deps.encodePreview || encoding || !deps.events.hasSubscribers(jobId)) return;
      encoding = true;
      deps.encodePreview(p.preview).then(
        (uri) => {
          encoding = false;
          ready = uri;
        },
        (err: unknown) => {
          encoding = false;
          deps.logger.warn({ err, jobId }, 'could not encode a preview');
        },
      );
    },
  };
}
