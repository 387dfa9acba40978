/**
 * Everything the router tracks about one backend: health, circuit, concurrency slots, counters
 * and a latency window. Owned by one RouterEngine; no module-level state.
 */
import { capCapabilities, sizeProblem, type EngineCapabilities } from '../../domain/engine-capabilities.ts';
import type { Engine, EngineRequest } from '../../domain/types.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import type { BackendDescription } from './types.ts';

export interface RouterBackendSpec {
  /** Backend id from the config (may differ from engine.id for the builtin engine). */
  id: string;
  engine: Engine;
  priority: number;
  weight: number;
  concurrency: number;
  /** Caps from the config over the engine's declared capabilities (see `capabilities()`). */
  maxReferenceImages: number;
  maxSidePx?: number;
  maxPixels?: number;
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

  /** What the engine declares, lowered by the routing file's caps (valid once the engine is loaded). */
  capabilities(): EngineCapabilities {
    return capCapabilities(this.spec.engine.capabilities(), {
      maxReferenceImages: this.spec.maxReferenceImages,
      maxSidePx: this.spec.maxSidePx,
      maxPixels: this.spec.maxPixels,
    });
  }

  maxReferenceImages(): number {
    return this.capabilities().maxReferenceImages;
  }

  /**
   * Why this backend cannot draw the request (a hard capability: reference images, size), with
   * the request field it is about; undefined when it can. Soft capabilities (negative prompt,
   * seed) never exclude a backend: see `ignoredByBackend`.
   */
  unfitFor(request: Pick<EngineRequest, 'referenceImages' | 'width' | 'height'>): { param: string; reason: string } | undefined {
    const caps = this.capabilities();
    const references = request.referenceImages.length;
    if (references > caps.maxReferenceImages) {
      return {
        param: 'image_urls',
        reason: caps.maxReferenceImages === 0 ? 'text-to-image only' : `takes at most ${caps.maxReferenceImages} reference image(s)`,
      };
    }
    const size = sizeProblem(caps.sizes, request.width, request.height);
    return size === undefined ? undefined : { param: 'image_size', reason: size };
  }

  /**
   * Request fields this backend accepts but does not use, for the result's info (logs, metadata).
   * The router does not route around them: a CFG-1 Qwen-Image-2.1 workflow is the preferred
   * backend for most deployments, and a negative prompt must not push every such request onto a
   * fallback tier (docs/backends/routing.md, "Capabilities").
   */
  ignoredByBackend(request: Pick<EngineRequest, 'negativePrompt'>): Record<string, boolean> {
    const caps = this.capabilities();
    return {
      ...(request.negativePrompt && !caps.negativePrompt ? { negativePromptIgnored: true } : {}),
      ...(!caps.seed ? { seedIgnored: true } : {}),
    };
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
      capabilities: this.capabilities(),
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
