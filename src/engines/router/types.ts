/**
 * What `RouterEngine.describe()` returns, for GET /v1/models and the metrics endpoint. Plain data,
 * safe to serialise as JSON (no secrets, no URLs with credentials).
 */
import type { EngineCapabilities } from '../../domain/engine-capabilities.ts';
import type { CircuitState } from './circuit-breaker.ts';

export interface BackendDescription {
  id: string;
  /** builtin | comfyui | openai | dashscope */
  kind: string;
  description: string;
  priority: number;
  weight: number;
  /** Last health check (or a failed call that could not reach it) said it is up. */
  healthy: boolean;
  /** Why it is down, when it is. */
  healthDetail?: string;
  /** ms since epoch of the last health check; null before the first. */
  lastHealthCheckAtMs: number | null;
  circuit: CircuitState;
  consecutiveFailures: number;
  inFlight: number;
  concurrency: number;
  maxReferenceImages: number;
  /** What the engine declares, lowered by the routing file's caps (maxReferenceImages above is capabilities.maxReferenceImages). */
  capabilities: EngineCapabilities;
  /** Counters since start. requests = successes + failures + rejections + aborted. */
  requests: number;
  successes: number;
  /** Failures charged to the backend (transport, timeout, 5xx, broken output). */
  failures: number;
  /** Inputs the backend refused (4xx, content inspection); not the backend's fault. */
  rejections: number;
  /** Calls the caller abandoned (client went away, pipeline timeout). */
  aborted: number;
  timeouts: number;
  /** Successful generation latency over the last 100 successes; null before any. */
  latencyMsP50: number | null;
  latencyMsP95: number | null;
}

export interface RouterDescription {
  /** Public model id. */
  model: string;
  /** Requests waiting for a free backend slot right now. */
  waiting: number;
  backends: BackendDescription[];
}

/** What a router adds to the Engine interface: its per-backend view, for /v1/models and metrics. */
export interface DescribableEngine {
  describe(): RouterDescription;
}

/** The one place that tells a router from a plain engine (the registry builds a router per model). */
export function isDescribableEngine<E extends object>(engine: E): engine is E & DescribableEngine {
  return typeof (engine as Partial<DescribableEngine>).describe === 'function';
}
