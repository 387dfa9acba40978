/**
 * JobEvents in one process: listeners per job id. Events are live notifications only (SSE streams,
 * synchronous waiters); a listener that missed one reads the job from the store.
 */
import type { JobEvent, JobEvents } from './ports.ts';

export function createMemoryJobEvents(): JobEvents {
  const listeners = new Map<string, Set<(event: JobEvent) => void>>();
  return {
    publish(event) {
      const set = listeners.get(event.jobId);
      if (!set) return;
      for (const listener of [...set]) listener(event);
    },
    subscribe(jobId, listener) {
      let set = listeners.get(jobId);
      if (!set) listeners.set(jobId, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0 && listeners.get(jobId) === set) listeners.delete(jobId);
      };
    },
    hasSubscribers(jobId) {
      return listeners.has(jobId);
    },
    watchedJobIds() {
      return [...listeners.keys()];
    },
  };
}
