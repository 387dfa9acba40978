/**
 * RouterEngine: one Engine per public model over its configured backends.
 *
 * Choice of backend, per attempt:
 * 1. candidates = backends whose declared capabilities fit the request (reference images, size;
 *    Engine.capabilities() lowered by the routing file's caps), are healthy, whose circuit
 *    lets a request through, and that this request has not tried yet;
 * 2. tier = the lowest `priority` among them (a higher tier is a fallback: used only when every
 *    lower-tier backend is down, open-circuited or already failed for this request, never merely
 *    because it is busy);
 * 3. within the tier, a backend with a free concurrency slot, drawn at random by `weight`; when all
 *    are busy the request waits (FIFO wake-up, honouring abort) and chooses again.
 *
 * Failover: a failure is retried on the next candidate when the backend returned no result and the
 * failure says nothing about the caller's input: unreachable, timeout, 429/503 overload, 5xx, a
 * ComfyUI execution error. A 429/503 answer is first asked again on the same backend, after its
 * Retry-After (`overloadRetry`, ../remote/retry.ts), and fails over when that did not help. This holds even after progress was reported, because the client only
 * ever sees the final image and the deadline still bounds the total time. Never retried: 4xx
 * rejections of the input (backend_rejected), output that came back broken or at the wrong size
 * (a configuration error that a second GPU run would repeat), and the caller's abort.
 */
import { ApiError, isApiError } from '../../domain/errors.ts';
import type { EngineCapabilities } from '../../domain/engine-capabilities.ts';
import type { Engine, EngineHealth, EngineProgress, EngineRequest, EngineResult } from '../../domain/types.ts';
import { BackendState, type RouterBackendSpec } from './backend-state.ts';
import { createMemoryBackendSlots, type BackendSlots, type SlotLease } from './backend-slots.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import type { CircuitShare } from './circuit-share.ts';
import { abortErrorFrom, isBackendFailure, throwIfAborted } from '../remote/errors.ts';
import { assertExactSize } from '../remote/images.ts';
import { silentLogger, type EngineLogger } from '../remote/logger.ts';
import { retryOnOverload, type OverloadRetryOptions } from '../remote/retry.ts';
import { generateWithDeadline } from './timeout-engine.ts';
import type { DescribableEngine, RouterDescription } from './types.ts';

export type { RouterBackendSpec } from './backend-state.ts';

export interface RouterEngineOptions {
  /** Public model id this router serves. */
  model: string;
  backends: RouterBackendSpec[];
  healthCheck: { intervalMs: number; timeoutMs: number };
  circuitBreaker: { failureThreshold: number; resetMs: number };
  /**
   * A backend answering 429/503 is asked again (same backend, after Retry-After) this many times
   * before the next backend is tried (../remote/retry.ts). Absent: no same-backend retry.
   */
  overloadRetry?: Omit<OverloadRetryOptions, 'onRetry'>;
  logger?: EngineLogger;
  /** [0, 1) source for weighted choice; inject a seeded one for deterministic tests. */
  random?: () => number;
  now?: () => number;
  /**
   * Where backend concurrency slots are counted. Absent: in this router only. Redis (redis-backend-slots.ts):
   * across every worker process, so `concurrency` holds for all of them together.
   */
  slots?: BackendSlots;
  /**
   * Where breaker changes are shared. Absent: this router's breakers are its own. Redis (redis-circuit-share.ts):
   * a circuit one worker opens is open in every worker.
   */
  circuitShare?: CircuitShare;
}

/** A waiting request re-evaluates at least this often: circuits turn half-open by time, not events. */
const WAIT_RECHECK_MS = 500;
/** A request whose backend is busy with other processes' jobs asks again this often: their releases send no wake-up here. */
const SHARED_SLOT_RECHECK_MS = 100;

export interface FailureClass {
  /** Another backend may be tried. */
  retryable: boolean;
  /** Charged to the backend's circuit breaker and failure counter. */
  countsAsFailure: boolean;
}

export function classifyFailure(err: unknown): FailureClass {
  if (isBackendFailure(err)) return { retryable: err.retryable, countsAsFailure: err.countsAsFailure };
  if (isApiError(err)) {
    switch (err.code) {
      case 'engine_unavailable':
      case 'backend_error':
      case 'generation_timeout':
      case 'internal_error':
        return { retryable: true, countsAsFailure: true };
      default:
        // backend_rejected, invalid_image, ...: about the input, not the backend.
        return { retryable: false, countsAsFailure: false };
    }
  }
  // An engine that aborted on its own, or threw an unexpected exception: the backend's problem.
  return { retryable: true, countsAsFailure: true };
}

export class RouterEngine implements Engine, DescribableEngine {
  readonly id: string;
  readonly kind = 'router';
  readonly description: string;
  private readonly model: string;
  private readonly states: BackendState[];
  private readonly healthCheck: { intervalMs: number; timeoutMs: number };
  private readonly overloadRetry: Omit<OverloadRetryOptions, 'onRetry'>;
  private readonly logger: EngineLogger;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly waiters = new Set<() => void>();
  private readonly slots: BackendSlots;
  private readonly circuitShare: CircuitShare | undefined;
  private unsubscribeCircuits: (() => void) | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private healthRun: Promise<void> | undefined;
  private closed = false;

  constructor(options: RouterEngineOptions) {
    if (options.backends.length === 0) throw new Error(`model ${options.model}: a router needs at least one backend`);
    this.model = options.model;
    this.id = `router:${options.model}`;
    this.healthCheck = options.healthCheck;
    this.overloadRetry = options.overloadRetry ?? { retries: 0, maxDelayMs: 0, baseDelayMs: 0 };
    this.logger = options.logger ?? silentLogger;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.slots = options.slots ?? createMemoryBackendSlots();
    this.states = options.backends.map(
      (spec) =>
        new BackendState(
          spec,
          new CircuitBreaker({ ...options.circuitBreaker, now: this.now }),
        ),
    );
    this.description = `${options.model} routed over ${this.states.map((s) => `${s.id} (${s.spec.engine.kind})`).join(', ')}`;
    this.circuitShare = options.circuitShare;
    this.unsubscribeCircuits = this.circuitShare?.subscribe((news) => {
      const state = news.model === this.model ? this.states.find((s) => s.id === news.backendId) : undefined;
      if (!state) return;
      state.breaker.adopt(news.state, news.atMs);
      this.logger.info({ model: this.model, backend: state.id, circuit: news.state }, 'circuit changed in another process');
      // a circuit that closed elsewhere may free requests waiting here
      if (news.state === 'closed') this.notify();
    });
  }

  /** Tells the other processes when this attempt opened or closed the backend's circuit (circuitShare). */
  private shareCircuit(state: BackendState, openedBefore: number | undefined): void {
    if (!this.circuitShare) return;
    const opened = state.breaker.openedAt;
    if (opened !== undefined && opened !== openedBefore) {
      this.circuitShare.publish({ model: this.model, backendId: state.id, state: 'open', atMs: opened });
    } else if (opened === undefined && openedBefore !== undefined) {
      this.circuitShare.publish({ model: this.model, backendId: state.id, state: 'closed', atMs: this.now() });
    }
  }

  /** Loads every backend (config errors fail start-up), checks health once, then starts the timer. */
  async load(): Promise<void> {
    const results = await Promise.allSettled(this.states.map((s) => s.spec.engine.load()));
    const problems = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`backend ${this.states[i]!.id}: ${(r.reason as Error)?.message ?? String(r.reason)}`] : [],
    );
    if (problems.length > 0) {
      throw new Error(`model ${this.model}: ${problems.length} backend(s) failed to load:\n  - ${problems.join('\n  - ')}`);
    }
    await this.checkHealth();
    if (this.healthCheck.intervalMs > 0 && !this.closed && !this.healthTimer) {
      this.healthTimer = setInterval(() => void this.checkHealth(), this.healthCheck.intervalMs);
      this.healthTimer.unref();
    }
  }

  async health(): Promise<EngineHealth> {
    const up = this.states.filter((s) => s.isAvailable());
    const detail = this.states
      .map((s) => `${s.id}: ${s.healthy ? (s.breaker.state === 'closed' ? 'up' : `circuit ${s.breaker.state}`) : `down (${s.healthDetail ?? 'unknown'})`}`)
      .join('; ');
    return { ok: up.length > 0, detail: `${up.length}/${this.states.length} backends available — ${detail}` };
  }

  /**
   * Slots the job runner may fill: the summed concurrency of the available backends in the lowest
   * available tier, the ones `choose` would pick from (a fallback tier is not counted while a
   * lower one is up, since it is never used merely because the lower one is busy). 0 when none is
   * available.
   */
  capacity(): number {
    const available = this.states.filter((s) => s.isAvailable());
    if (available.length === 0) return 0;
    const tier = Math.min(...available.map((s) => s.spec.priority));
    return available.filter((s) => s.spec.priority === tier).reduce((sum, s) => sum + s.spec.concurrency, 0);
  }

  /**
   * Free slots of the backends capacity() counts, as the shared store sees them (every worker's leases),
   * less the jobs the runner started here that hold none yet (`runningHere` minus the attempts holding or
   * asking for one). The runner of a shared queue claims only this many, so a job it takes does not wait
   * in this router, `running` with its deadline ticking, for a slot another worker holds.
   */
  async sharedFreeSlots(runningHere: number): Promise<number> {
    const available = this.states.filter((s) => s.isAvailable());
    if (available.length === 0) return runningHere === 0 ? 1 : 0; // as capacity(): let one through to fail fast
    const tier = Math.min(...available.map((s) => s.spec.priority));
    let free = 0;
    for (const state of available.filter((s) => s.spec.priority === tier)) {
      free += Math.max(0, state.spec.concurrency - (await this.slots.inUse(state.id)));
    }
    const heldHere = this.states.reduce((sum, s) => sum + s.inFlight, 0);
    return Math.max(0, free - Math.max(0, runningHere - heldHere));
  }

  /**
   * The most any backend offers (each backend's own, capped, set is in describe()): the largest
   * reference count and size range, the finest size step, and a feature when some backend has it.
   */
  capabilities(): EngineCapabilities {
    const all = this.states.map((s) => s.capabilities());
    const some = (key: 'negativePrompt' | 'seed' | 'progress' | 'previews' | 'masks' | 'promptAdaptation'): boolean => all.some((c) => c[key]);
    return {
      maxReferenceImages: Math.max(...all.map((c) => c.maxReferenceImages)),
      sizes: {
        minSidePx: Math.min(...all.map((c) => c.sizes.minSidePx)),
        maxSidePx: Math.max(...all.map((c) => c.sizes.maxSidePx)),
        stepPx: Math.min(...all.map((c) => c.sizes.stepPx)),
        maxPixels: all.some((c) => c.sizes.maxPixels === 0) ? 0 : Math.max(...all.map((c) => c.sizes.maxPixels)),
      },
      negativePrompt: some('negativePrompt'),
      seed: some('seed'),
      progress: some('progress'),
      previews: some('previews'),
      masks: some('masks'),
      promptAdaptation: some('promptAdaptation'),
    };
  }

  describe(): RouterDescription {
    return { model: this.model, waiting: this.waiters.size, backends: this.states.map((s) => s.describe()) };
  }

  async generate(
    request: EngineRequest,
    signal: AbortSignal,
    onProgress?: (progress: EngineProgress) => void,
  ): Promise<EngineResult> {
    throwIfAborted(signal);
    if (this.closed) throw new ApiError('engine_unavailable', `model ${this.model} is shutting down`, { retryAfterS: 5 });
    // Eligibility by declared capabilities (reference images, size): a backend that cannot draw
    // this request is never tried, whatever its tier or health.
    const unfit = new Map(this.states.map((s) => [s, s.unfitFor(request)] as const));
    const eligible = this.states.filter((s) => unfit.get(s) === undefined);
    if (eligible.length === 0) {
      const reasons = [...unfit].map(([s, why]) => `${s.id}: ${why!.reason}`).join('; ');
      throw new ApiError(
        'backend_rejected',
        `no backend of model ${this.model} can draw ${request.referenceImages.length} reference image(s) at ${request.width}×${request.height} (${reasons})`,
        { param: unfit.get(this.states[0]!)!.param },
      );
    }
    const tried = new Set<BackendState>();
    // Backends with a free slot here whose shared slots other processes hold: busy until the next wait ends.
    const busyElsewhere = new Set<BackendState>();
    let lastError: unknown;
    for (;;) {
      throwIfAborted(signal);
      if (this.closed) throw new ApiError('engine_unavailable', `model ${this.model} is shutting down`, { retryAfterS: 5 });
      const choice = this.choose(eligible, tried, busyElsewhere);
      if (choice === 'none') throw lastError ?? this.noBackendError(eligible);
      if (choice === 'wait') {
        await this.waitForChange(signal, busyElsewhere.size > 0 ? SHARED_SLOT_RECHECK_MS : WAIT_RECHECK_MS);
        busyElsewhere.clear();
        continue;
      }
      const lease = await this.acquireSlot(choice);
      if (!lease) {
        busyElsewhere.add(choice);
        continue;
      }
      tried.add(choice);
      try {
        const result = await this.attempt(choice, lease, request, signal, onProgress);
        // The rest of the result (drawnPrompt: what the chosen backend actually drew with) passes through as is.
        return {
          ...result,
          info: { ...result.info, backend: choice.id, backendKind: choice.spec.engine.kind, attempts: tried.size, ...choice.ignoredByBackend(request) },
        };
      } catch (err) {
        if (signal.aborted) throw abortErrorFrom(signal);
        lastError = err;
        if (!classifyFailure(err).retryable) throw err;
        this.logger.warn(
          { requestId: request.requestId, model: this.model, backend: choice.id, err: (err as Error)?.message },
          'backend failed before producing a result; trying the next one',
        );
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribeCircuits?.();
    this.unsubscribeCircuits = undefined;
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = undefined;
    await this.healthRun;
    this.notify();
    await Promise.allSettled(this.states.map((s) => s.spec.engine.close()));
  }

  /** Runs one health check of every backend (concurrent runs are coalesced). */
  checkHealth(): Promise<void> {
    if (!this.healthRun) {
      this.healthRun = Promise.all(this.states.map((s) => this.checkOne(s))).then(
        () => {
          this.healthRun = undefined;
        },
        () => {
          this.healthRun = undefined;
        },
      );
    }
    return this.healthRun;
  }

  private async checkOne(state: BackendState): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<EngineHealth>((resolve) => {
      timer = setTimeout(
        () => resolve({ ok: false, detail: `health check timed out after ${this.healthCheck.timeoutMs} ms` }),
        this.healthCheck.timeoutMs,
      );
    });
    let result: EngineHealth;
    try {
      result = await Promise.race([state.spec.engine.health(), timeout]);
    } catch (err) {
      result = { ok: false, detail: `health check failed: ${(err as Error)?.message ?? String(err)}` };
    } finally {
      clearTimeout(timer);
    }
    state.lastHealthCheckAtMs = this.now();
    this.setHealth(state, result.ok, result.ok ? undefined : (result.detail ?? 'unhealthy'));
  }

  private setHealth(state: BackendState, healthy: boolean, detail: string | undefined): void {
    const changed = state.healthy !== healthy;
    state.healthy = healthy;
    state.healthDetail = detail;
    if (!changed) return;
    if (healthy) this.logger.info({ model: this.model, backend: state.id }, 'backend is up');
    else this.logger.warn({ model: this.model, backend: state.id, detail }, 'backend is down');
    this.notify();
  }

  private choose(eligible: BackendState[], tried: Set<BackendState>, busyElsewhere: Set<BackendState>): BackendState | 'wait' | 'none' {
    const candidates = eligible.filter((s) => !tried.has(s) && s.isAvailable());
    if (candidates.length === 0) return 'none';
    const tier = Math.min(...candidates.map((s) => s.spec.priority));
    const free = candidates.filter((s) => s.spec.priority === tier && s.hasFreeSlot() && !busyElsewhere.has(s));
    if (free.length === 0) return 'wait';
    return this.pickWeighted(free);
  }

  private pickWeighted(states: BackendState[]): BackendState {
    const total = states.reduce((sum, s) => sum + s.spec.weight, 0);
    let ticket = this.random() * total;
    for (const state of states) {
      ticket -= state.spec.weight;
      if (ticket < 0) return state;
    }
    return states[states.length - 1]!;
  }

  /**
   * Takes a slot of the backend from the (maybe shared) store; null when other holders have them all.
   * Counted in `inFlight` while the store is asked, so concurrent requests here do not all ask for one slot.
   * A store that cannot be reached is nobody's fault on the backend side: the request fails as unavailable.
   */
  private async acquireSlot(state: BackendState): Promise<SlotLease | null> {
    state.inFlight += 1;
    let lease: SlotLease | null;
    try {
      lease = await this.slots.tryAcquire(state.id, state.spec.concurrency);
    } catch (err) {
      state.inFlight -= 1;
      this.notify();
      throw new ApiError('engine_unavailable', `model ${this.model}: could not take a slot of backend ${state.id} (${(err as Error)?.message ?? String(err)})`, {
        retryAfterS: 5,
      });
    }
    if (!lease) {
      state.inFlight -= 1;
      this.notify();
    }
    return lease;
  }

  /** Runs one try on a backend whose slot `lease` holds (counted in inFlight by acquireSlot); gives the slot back at the end. */
  private async attempt(
    state: BackendState,
    lease: SlotLease,
    request: EngineRequest,
    signal: AbortSignal,
    onProgress?: (progress: EngineProgress) => void,
  ): Promise<EngineResult> {
    const ticket = state.breaker.onDispatch();
    state.requests += 1;
    const startedAt = this.now();
    try {
      // Each try has the backend's own deadline; the waits between them end with the caller's signal.
      const result = await retryOnOverload(
        () => generateWithDeadline(state.spec.engine, state.id, state.spec.timeoutMs, request, signal, onProgress),
        signal,
        {
          ...this.overloadRetry,
          onRetry: ({ retry, delayMs, error }) =>
            this.logger.info(
              { requestId: request.requestId, model: this.model, backend: state.id, retry, delayMs, err: error.message },
              'backend is busy; asking it again',
            ),
        },
      );
      assertExactSize(state.id, result.image, request.width, request.height);
      state.successes += 1;
      state.recordLatency(this.now() - startedAt);
      const openedBefore = state.breaker.openedAt;
      state.breaker.onSuccess(ticket);
      this.shareCircuit(state, openedBefore);
      // A finished generation proves the backend is up, whatever the last check said.
      if (!state.healthy) this.setHealth(state, true, undefined);
      return result;
    } catch (err) {
      if (signal.aborted) {
        state.aborted += 1;
        state.breaker.onNeutral(ticket);
      } else if (!classifyFailure(err).countsAsFailure) {
        state.rejections += 1;
        state.breaker.onNeutral(ticket);
      } else {
        state.failures += 1;
        if (isApiError(err) && err.code === 'generation_timeout') state.timeouts += 1;
        const openedBefore = state.breaker.openedAt;
        state.breaker.onFailure(ticket);
        this.shareCircuit(state, openedBefore);
        if (isBackendFailure(err) && err.unreachable) {
          this.setHealth(state, false, err.message);
        }
      }
      throw err;
    } finally {
      // Given back before the result goes up: the runner's next claim (sharedFreeSlots) must see it free.
      await lease.release().catch((err: unknown) =>
        this.logger.warn({ model: this.model, backend: state.id, err: (err as Error)?.message }, 'could not give a backend slot back; it frees itself when its lease expires'),
      );
      state.inFlight -= 1;
      this.notify();
    }
  }

  private noBackendError(eligible: BackendState[]): ApiError {
    const waits = eligible
      .filter((s) => s.healthy && s.breaker.state !== 'closed')
      .map((s) => s.breaker.msUntilProbe());
    const retryAfterMs = waits.length > 0 ? Math.min(...waits) : this.healthCheck.intervalMs;
    const reasons = eligible
      .map((s) => `${s.id}: ${s.healthy ? `circuit ${s.breaker.state}` : `down (${s.healthDetail ?? 'unknown'})`}`)
      .join('; ');
    return new ApiError('engine_unavailable', `no backend of model ${this.model} is available (${reasons})`, {
      retryAfterS: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    });
  }

  private waitForChange(signal: AbortSignal, recheckMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        signal.removeEventListener('abort', onAbort);
      };
      const wake = (): void => {
        cleanup();
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortErrorFrom(signal));
      };
      const timer = setTimeout(wake, recheckMs);
      this.waiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Wakes every waiting request, oldest first, to choose again. */
  private notify(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
