/**
 * JobEvents in one process: listeners per job id. Events are live notifications only (SSE streams,
 * synchronous waiters); a listener that missed one reads the job from the store. Listeners subscribed
 * with `watch: false` hear events without counting as watchers (ports.ts).
 */
import type { JobEvent, JobEvents } from './ports.ts';

export function createMemoryJobEvents(): JobEvents {
  const listeners = new Map<string, Set<(event: JobEvent) => void>>();
  /** jobId → listeners that count as watchers. */
  const watchers = new Map<string, number>();
  return {
    publish(event) {
      const set = listeners.get(event.jobId);
      if (!set) return;
      for (const listener of [...set]) listener(event);
    },
    subscribe(jobId, listener, options) {
      const watch = options?.watch ?? true;
      let set = listeners.get(jobId);
      if (!set) listeners.set(jobId, (set = new Set()));
      // A wrapper per subscription: the same function subscribed twice is two subscriptions.
      const entry = (event: JobEvent) => listener(event);
      set.add(entry);
      if (watch) watchers.set(jobId, (watchers.get(jobId) ?? 0) + 1);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        set.delete(entry);
        if (set.size === 0 && listeners.get(jobId) === set) listeners.delete(jobId);
        if (!watch) return;
        const left = (watchers.get(jobId) ?? 1) - 1;
        if (left > 0) watchers.set(jobId, left);
        else watchers.delete(jobId);
      };
    },
    hasSubscribers(jobId) {
      return watchers.has(jobId);
    },
    watchedJobIds() {
      return [...watchers.keys()];
    },
  };
}
