/**
 * Everything the router tracks about one backend: health, circuit, concurrency slots, counters
 * and a latency window. Owned by one RouterEngine; no module-level state.
 */
import type { Engine } from '../../domain/types.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import type { BackendDescription } from './types.ts';

export interface RouterBackendSpec {
  /** Backend id from the config (may differ from engine.id for the builtin engine). */
  id: string;
  engine: Engine;
  priority: number;
  weight: number;
  concurrency: number;
  /** Cap from the config; the engine may accept fewer (see `maxReferenceImages()`). */
  maxReferenceImages: number;
  /** Deadline of one generation on this backend; 0: none. */
  timeoutMs: number;
}

/** How many recent successes the latency percentiles are computed over. */
const LATENCY_WINDOW = 100;

export class BackendState {
  readonly spec: RouterBackendSpec;
  readonly breaker: CircuitBreaker;
  healthy = true;
  healthDetail: string | undefined;
  lastHealthCheckAtMs: number | null = null;
  inFlight = 0;
  requests = 0;
  successes = 0;
  failures = 0;
  rejections = 0;
  aborted = 0;
  timeouts = 0;
  private readonly latencies: number[] = [];
  private latencyCursor = 0;

  constructor(spec: RouterBackendSpec, breaker: CircuitBreaker) {
    this.spec = spec;
    this.breaker = breaker;
  }

  get id(): string {
    return this.spec.id;
  }

  /** Healthy and its circuit lets a request through now. */
  isAvailable(): boolean {
    return this.healthy && this.breaker.canPass();
  }

  /**
   * Reference images this backend takes: the config's cap, lowered by what the engine itself
   * reports (an optional `maxReferenceImages` property, e.g. a ComfyUI without edit workflow).
   */
  maxReferenceImages(): number {
    const own = (this.spec.engine as { maxReferenceImages?: unknown }).maxReferenceImages;
    return typeof own === 'number' ? Math.min(own, this.spec.maxReferenceImages) : this.spec.maxReferenceImages;
  }

  hasFreeSlot(): boolean {
    return this.inFlight < this.spec.concurrency;
  }

  recordLatency(ms: number): void {
    if (this.latencies.length < LATENCY_WINDOW) this.latencies.push(ms);
    else this.latencies[this.latencyCursor] = ms;
    this.latencyCursor = (this.latencyCursor + 1) % LATENCY_WINDOW;
  }

  /** Nearest-rank percentile over the window; null when empty. */
  latencyPercentile(p: number): number | null {
    if (this.latencies.length === 0) return null;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return Math.round(sorted[rank]!);
  }

  describe(): BackendDescription {
    return {
      id: this.spec.id,
      kind: this.spec.engine.kind,
      description: this.spec.engine.description,
      priority: this.spec.priority,
      weight: this.spec.weight,
      healthy: this.healthy,
      ...(this.healthDetail === undefined ? {} : { healthDetail: this.healthDetail }),
      lastHealthCheckAtMs: this.lastHealthCheckAtMs,
      circuit: this.breaker.state,
      consecutiveFailures: this.breaker.consecutiveFailures,
      inFlight: this.inFlight,
      concurrency: this.spec.concurrency,
      maxReferenceImages: this.maxReferenceImages(),
      requests: this.requests,
      successes: this.successes,
      failures: this.failures,
      rejections: this.rejections,
      aborted: this.aborted,
      timeouts: this.timeouts,
      latencyMsP50: this.latencyPercentile(50),
      latencyMsP95: this.latencyPercentile(95),
    };
  }
}
