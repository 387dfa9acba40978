/**
 * What GET /healthz and /readyz report: each dependency of this process (database, queue, blob store,
 * events, and the engines where this process runs jobs), with its state and how long it took to answer.
 *
 * Dependencies come in as named async checks, built by main.ts next to the adapter they check (a
 * SQLite `SELECT 1`, a Redis PING, an S3 HeadBucket), so a distributed adapter plugs in its own
 * `ping()`. Every check is time-bounded: a hung dependency is reported down after `timeoutMs`, and the
 * probe answers anyway (the hung call is left to finish or fail on its own).
 *
 * Ready ("ok", 200): every dependency answered and, where this process runs jobs, its engines have
 * loaded. An engine that loaded but reports itself unhealthy (a remote backend down) is shown, not
 * counted against readiness: the router fails over, and a worker that cannot draw fails its jobs with
 * the backend's reason instead of disappearing from the pool.
 */
import type { Role } from '../config/config.ts';
import type { Engine } from '../domain/types.ts';

export interface DependencyCheck {
  /** Key in the report: `database`, `queue`, `blobs`, `events`. */
  name: string;
  /** Resolves when the dependency answers; rejects (or hangs) when it does not. */
  check(): Promise<void>;
}

export interface CheckResult {
  ok: boolean;
  detail?: string;
  latencyMs: number;
}

export type HealthStatus = 'ok' | 'loading' | 'degraded';

export interface HealthReport {
  status: HealthStatus;
  role: Role;
  checks: Record<string, CheckResult> & { engines?: Record<string, CheckResult> };
}

export interface HealthReporterOptions {
  role: Role;
  dependencies: DependencyCheck[];
  /** The engines of a process that runs jobs; absent for ROLE=api. */
  engines?: Map<string, Engine>;
  /** Engines loaded and recovery done (a process that runs no job: as soon as it listens). */
  isStarted: () => boolean;
  timeoutMs: number;
}

const roundMs = (since: number) => Math.round((performance.now() - since) * 10) / 10;

/** Runs `fn` with a time limit; never throws. */
export async function timedCheck(fn: () => Promise<{ ok: boolean; detail?: string } | void>, timeoutMs: number): Promise<CheckResult> {
  const t = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<{ ok: false; detail: string }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
  });
  try {
    const answer = await Promise.race([
      (async () => (await fn()) ?? { ok: true })().catch((err: unknown) => ({ ok: false, detail: err instanceof Error ? err.message : String(err) })),
      timedOut,
    ]);
    return { ok: answer.ok, ...(answer.detail ? { detail: answer.detail } : {}), latencyMs: roundMs(t) };
  } finally {
    clearTimeout(timer);
  }
}

export function createHealthReporter(options: HealthReporterOptions) {
  async function engineChecks(engines: Map<string, Engine>, started: boolean): Promise<Record<string, CheckResult>> {
    const entries = await Promise.all(
      [...engines].map(async ([model, engine]): Promise<[string, CheckResult]> => {
        if (!started) return [model, { ok: false, detail: 'loading', latencyMs: 0 }];
        return [model, await timedCheck(() => engine.health(), options.timeoutMs)];
      }),
    );
    return Object.fromEntries(entries);
  }

  return {
    async report(): Promise<HealthReport> {
      const started = options.isStarted();
      const [dependencies, engines] = await Promise.all([
        Promise.all(options.dependencies.map(async (d) => [d.name, await timedCheck(() => d.check(), options.timeoutMs)] as const)),
        options.engines ? engineChecks(options.engines, started) : Promise.resolve(undefined),
      ]);
      const checks: HealthReport['checks'] = Object.fromEntries(dependencies);
      if (engines) checks.engines = engines;
      const status: HealthStatus = !started ? 'loading' : dependencies.every(([, r]) => r.ok) ? 'ok' : 'degraded';
      return { status, role: options.role, checks };
    },
  };
}

export type HealthReporter = ReturnType<typeof createHealthReporter>;
