/**
 * The router's part of the routing file (BACKENDS_CONFIG): the fields every backend entry accepts
 * whatever its `type`, the file-level sections (health checks, circuit breaker, overload retry),
 * their JSON Schema pieces and their defaults. Each engine adds its own fields in
 * engines/<type>/config.ts; config/backends.ts assembles the whole validator from these pieces.
 */

/** Fields every backend accepts. Defaults: ROUTING_DEFAULTS and the engine's own `defaults`. */
export interface BackendCommonConfig {
  /** Unique across the whole file; used in logs, metrics and GET /v1/models. */
  id: string;
  type: string;
  /** Lower is tried first; a higher tier is used only when every lower one is down or has failed. */
  priority?: number;
  /** Share of traffic among backends of equal priority. */
  weight?: number;
  /** Requests in flight on this backend at once; more wait for a slot. */
  concurrency?: number;
  /** Deadline for one generation on this backend; 0 disables it. */
  timeoutMs?: number;
  /**
   * Caps over what the engine declares (Engine.capabilities(); they can only lower it): reference
   * images this backend accepts (0: text-to-image only; default 3, the API's maximum), the largest
   * side and the largest width × height it is sent (e.g. a small GPU). The router skips a backend
   * whose capabilities a request does not fit.
   */
  maxReferenceImages?: number;
  maxSidePx?: number;
  maxPixels?: number;
}

/** The file-level sections next to `models`. */
export interface RoutingSections {
  healthCheck?: { intervalMs?: number; timeoutMs?: number };
  circuitBreaker?: { failureThreshold?: number; resetMs?: number };
  /** Same-backend retries of a 429/503 answer before failing over; waits honour Retry-After. */
  overloadRetry?: { retries?: number; maxDelayMs?: number; baseDelayMs?: number };
}

/**
 * Defaults written once, for every engine type (per-type concurrency and timeout: each engine's
 * config.ts `defaults`).
 */
export const ROUTING_DEFAULTS = {
  priority: 0,
  weight: 1,
  maxReferenceImages: 3,
  healthCheck: { intervalMs: 15_000, timeoutMs: 3_000 },
  circuitBreaker: { failureThreshold: 3, resetMs: 30_000 },
  /** Retry-After capped at 10 s: a backend asking for longer is better failed over. */
  overloadRetry: { retries: 2, maxDelayMs: 10_000, baseDelayMs: 250 },
} as const;

/** JSON Schema of the common fields, without `type` (its enum is the registry's list of types). */
export const COMMON_BACKEND_PROPERTIES = {
  id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
  priority: { type: 'integer', minimum: 0, maximum: 1000 },
  weight: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
  concurrency: { type: 'integer', minimum: 1, maximum: 1024 },
  timeoutMs: { type: 'integer', minimum: 0 },
  maxReferenceImages: { type: 'integer', minimum: 0, maximum: 3 },
  maxSidePx: { type: 'integer', minimum: 64, maximum: 16_384 },
  maxPixels: { type: 'integer', minimum: 4096 },
} as const;

/** JSON Schema of the file-level sections. */
export const ROUTING_SECTIONS_PROPERTIES = {
  healthCheck: {
    type: 'object',
    additionalProperties: false,
    properties: { intervalMs: { type: 'integer', minimum: 100 }, timeoutMs: { type: 'integer', minimum: 10 } },
  },
  circuitBreaker: {
    type: 'object',
    additionalProperties: false,
    properties: { failureThreshold: { type: 'integer', minimum: 1 }, resetMs: { type: 'integer', minimum: 10 } },
  },
  overloadRetry: {
    type: 'object',
    additionalProperties: false,
    properties: {
      retries: { type: 'integer', minimum: 0, maximum: 10 },
      maxDelayMs: { type: 'integer', minimum: 0, maximum: 120_000 },
      baseDelayMs: { type: 'integer', minimum: 0, maximum: 60_000 },
    },
  },
} as const;

/** Schema pieces shared by the remote engines' fragments. */
export const URL_PROPERTY = { type: 'string', minLength: 1 } as const;
export const ENV_NAME_PROPERTY = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } as const;
