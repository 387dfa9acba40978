/**
 * Concurrency slots of the backends, behind one port so that several worker processes in front of one
 * GPU server can share them: a backend's `concurrency` then holds across all of them together, not per
 * process. The router takes a slot before it sends a backend a job and gives it back when the attempt ends.
 *
 * The in-memory version (the default) counts in this process only, which is the whole truth for one
 * process; redis-backend-slots.ts keeps the slots in Redis for many.
 */
export interface SlotLease {
  /** Gives the slot back; idempotent. */
  release(): Promise<void>;
}

export interface BackendSlots {
  /**
   * A slot of `backendId` when fewer than `limit` are held (by every holder that shares this store);
   * null when all are taken. Throws when the store cannot be reached.
   */
  tryAcquire(backendId: string, limit: number): Promise<SlotLease | null>;
  /** Slots of `backendId` held right now by every holder sharing this store (expired leases not counted). */
  inUse(backendId: string): Promise<number>;
}

export function createMemoryBackendSlots(): BackendSlots {
  const held = new Map<string, number>();
  return {
    async inUse(backendId) {
      return held.get(backendId) ?? 0;
    },
    async tryAcquire(backendId, limit) {
      const inUse = held.get(backendId) ?? 0;
      if (inUse >= limit) return null;
      held.set(backendId, inUse + 1);
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          const left = (held.get(backendId) ?? 1) - 1;
          if (left > 0) held.set(backendId, left);
          else held.delete(backendId);
        },
      };
    },
  };
}
