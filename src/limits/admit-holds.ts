/**
 * What the key limiter holds between admitting a request and the request's job being written (from then on
 * the database counts the job): its concurrency slot and its price. Behind a port so that several API
 * processes can share the holds (redis-admit-holds.ts); the in-memory version below is the one-process
 * default.
 *
 * `exclusive` runs one admission of a key at a time, across every process sharing the holds, so two
 * requests cannot both take the key's last slot or last credits. The limiter reads the holds before the
 * database inside it: a request whose job is written in between counts twice for a moment (a refusal on
 * the safe side), never zero times.
 */
import type { LimitHold } from './ports.ts';

export interface HeldForKey {
  jobs: number;
  credits: number;
}

export interface AdmitHolds {
  exclusive<T>(keyId: string, fn: () => Promise<T>): Promise<T>;
  held(keyId: string): Promise<HeldForKey>;
  /** The hold's release gives the slot and the credits back (the Redis version does it in the background). */
  add(keyId: string, credits: number): Promise<LimitHold>;
}

const round6 = (n: number) => Math.round(n * 1e6) / 1e6;

export function createMemoryAdmitHolds(): AdmitHolds {
  const pending = new Map<string, HeldForKey>();
  const chains = new Map<string, Promise<void>>();
  return {
    exclusive(keyId, fn) {
      const run = (chains.get(keyId) ?? Promise.resolve()).then(fn);
      const tail = run.then(() => undefined, () => undefined);
      chains.set(keyId, tail);
      void tail.then(() => {
        if (chains.get(keyId) === tail) chains.delete(keyId);
      });
      return run;
    },
    async held(keyId) {
      const entry = pending.get(keyId);
      return entry ? { ...entry } : { jobs: 0, credits: 0 };
    },
    async add(keyId, credits) {
      const entry = pending.get(keyId) ?? { jobs: 0, credits: 0 };
      entry.jobs += 1;
      entry.credits = round6(entry.credits + credits);
      pending.set(keyId, entry);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          entry.jobs -= 1;
          entry.credits = round6(entry.credits - credits);
          if (entry.jobs === 0 && pending.get(keyId) === entry) pending.delete(keyId);
        },
      };
    },
  };
}
