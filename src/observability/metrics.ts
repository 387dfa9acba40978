/**
 * Prometheus metrics for one server instance (GET /metrics). Everything hangs off one prom-client
 * Registry made here, never the library's global default registry: tests start several servers in
 * one process, and each must count only its own traffic.
 *
 * Two kinds of numbers:
 * - events, observed where they happen through small hooks: the HTTP onResponse hook, the job
 *   runner's observer (`jobs`), and wrappers around the prompt enhancer and the watermarker;
 * - state, read at scrape time by `collect()`: queue depth and running jobs from the job runner,
 *   in-flight slots, health and circuit state from each RouterEngine's describe().
 *
 * Label values are bounded by construction: a route is its pattern (`/v1/jobs/:id`, never the URL
 * asked for; "unmatched" for a 404 without a route), a model and a backend come from the
 * configuration, an error code from the catalogue, an enhancer fallback reason from its fixed codes.
 * No job id, request id, key id or URL is ever a label.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EnhanceInput, EnhanceResult, PromptEnhancer, Watermarker } from '../domain/ports.ts';
import type { Engine } from '../domain/types.ts';
import type { JobRecord } from '../domain/jobs.ts';
import type { JobEnd, JobObserver, ModelRunStats } from '../jobs/job-runner.ts';
import { isDescribableEngine, type RouterDescription } from '../engines/router/types.ts';
import type { CircuitState } from '../engines/router/circuit-breaker.ts';

/** What the scrape-time gauges read. Set once the runner exists (`watch`), since it is built after the metrics. */
export interface MetricsSources {
  /** Public model id → its engine as built by the registry (RouterEngines answer describe()). */
  engines: Map<string, Engine>;
  runStats: (model: string) => Promise<ModelRunStats>;
}

/** Seconds. HTTP spans a 400 in a millisecond to a synchronous generation on a slow GPU backend. */
const HTTP_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** The bundled model draws 512² in ~0.1 s on 2 cores; a GPU Qwen-Image takes 2-60 s. */
const ENGINE_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];
const QUEUE_WAIT_BUCKETS_S = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];
/** Watermark embed at 1024² measures a few ms, detection of a large upload up to about a second. */
const WATERMARK_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const ENHANCE_BUCKETS_S = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Every state, so that a dashboard sees a 0 for the states a backend is not in. */
const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half-open'];

/** Backend label of a job that no backend answered (failed before or in the engine, canceled while queued). */
export const NO_BACKEND = 'none';
/** Route label of a request no route matched (404): the raw URL would make the label unbounded. */
export const UNMATCHED_ROUTE = 'unmatched';

export interface MetricsOptions {
  /** prom-client's process metrics (CPU, RSS, heap, event loop lag, GC). Default true. */
  defaultMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions = {}) {
  const registry = new Registry();
  const registers = [registry];
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  let sources: MetricsSources | null = null;

  // ------------------------------------------------------------ HTTP
  const httpRequests = new Counter({
    name: 'qis_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: 'qis_http_request_duration_seconds',
    help: 'Time from the request arriving to the response sent, by method, route pattern and status class (2xx, 4xx, ...)',
    labelNames: ['method', 'route', 'status_class'] as const,
    buckets: HTTP_BUCKETS_S,
    registers,
  });

  // ------------------------------------------------------------ jobs
  const generations = new Counter({
    name: 'qis_generations_total',
    help: `Generation jobs that ended, by model, backend that drew it ("${NO_BACKEND}" when none did), outcome and error code ("none" on success)`,
    labelNames: ['model', 'backend', 'outcome', 'code'] as const,
    registers,
  });
  const engineDuration = new Histogram({
    name: 'qis_engine_duration_seconds',
    help: 'Engine time of succeeded generations (routing, waits for a backend slot and failovers included), by model and the backend that drew',
    labelNames: ['model', 'backend'] as const,
    buckets: ENGINE_BUCKETS_S,
    registers,
  });
  const queueWait = new Histogram({
    name: 'qis_queue_wait_seconds',
    help: 'Time a job waited from submit to the runner starting it, by model',
    labelNames: ['model'] as const,
    buckets: QUEUE_WAIT_BUCKETS_S,
    registers,
  });
  const creditsCharged = new Counter({
    name: 'qis_credits_charged_total',
    help: 'Credits written to the usage ledger (succeeded jobs only), by model',
    labelNames: ['model'] as const,
    registers,
  });
  const usdCharged = new Counter({
    name: 'qis_usd_charged_total',
    help: 'US dollars written to the usage ledger (succeeded jobs only), by model',
    labelNames: ['model'] as const,
    registers,
  });

  // ------------------------------------------------------------ state read at scrape time
  const eachModelStats = async (): Promise<Array<[string, ModelRunStats]>> => {
    if (!sources) return [];
    const current = sources;
    return Promise.all([...current.engines.keys()].map(async (model) => [model, await current.runStats(model)] as [string, ModelRunStats]));
  };
  const eachRouter = (): RouterDescription[] =>
    sources ? [...sources.engines.values()].filter(isDescribableEngine).map((engine) => engine.describe()) : [];

  new Gauge({
    name: 'qis_queue_depth',
    help: 'Jobs waiting in the queue, by model',
    labelNames: ['model'] as const,
    registers,
    async collect() {
      this.reset();
      for (const [model, stats] of await eachModelStats()) this.set({ model }, stats.queued);
    },
  });
  new Gauge({
    name: 'qis_jobs_running',
    help: 'Jobs the runner is running now, by model',
    labelNames: ['model'] as const,
    registers,
    async collect() {
      this.reset();
      for (const [model, stats] of await eachModelStats()) this.set({ model }, stats.running);
    },
  });
  new Gauge({
    name: 'qis_model_slots',
    help: "Jobs a model may run at once now (its available backends' summed concurrency)",
    labelNames: ['model'] as const,
    registers,
    async collect() {
      this.reset();
      for (const [model, stats] of await eachModelStats()) this.set({ model }, stats.capacity);
    },
  });
  new Gauge({
    name: 'qis_backend_in_flight',
    help: 'Generations a backend is drawing now',
    labelNames: ['model', 'backend'] as const,
    registers,
    collect() {
      this.reset();
      for (const router of eachRouter()) for (const b of router.backends) this.set({ model: router.model, backend: b.id }, b.inFlight);
    },
  });
  new Gauge({
    name: 'qis_backend_concurrency',
    help: 'Generations a backend may draw at once (routing file)',
    labelNames: ['model', 'backend'] as const,
    registers,
    collect() {
      this.reset();
      for (const router of eachRouter()) for (const b of router.backends) this.set({ model: router.model, backend: b.id }, b.concurrency);
    },
  });
  new Gauge({
    name: 'qis_backend_up',
    help: '1 when the last health check (or call) found the backend up, else 0',
    labelNames: ['model', 'backend'] as const,
    registers,
    collect() {
      this.reset();
      for (const router of eachRouter()) for (const b of router.backends) this.set({ model: router.model, backend: b.id }, b.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'qis_backend_circuit_state',
    help: 'Circuit breaker state of a backend: 1 for the current state, 0 for the others',
    labelNames: ['model', 'backend', 'state'] as const,
    registers,
    collect() {
      this.reset();
      for (const router of eachRouter()) {
        for (const b of router.backends) {
          for (const state of CIRCUIT_STATES) this.set({ model: router.model, backend: b.id, state }, b.circuit === state ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: 'qis_router_waiting',
    help: 'Generations waiting inside a model router for a free backend slot',
    labelNames: ['model'] as const,
    registers,
    collect() {
      this.reset();
      for (const router of eachRouter()) this.set({ model: router.model }, router.waiting);
    },
  });

  // ------------------------------------------------------------ prompt enhancer, watermark
  const enhancements = new Counter({
    name: 'qis_prompt_enhancements_total',
    help: 'enhance_prompt rewrites, by where the prompt came from (llm, cache, offline) and outcome (ok, error)',
    labelNames: ['source', 'outcome'] as const,
    registers,
  });
  const enhancerFallbacks = new Counter({
    name: 'qis_prompt_enhancer_fallbacks_total',
    help: 'Rewrites answered by the offline rewriter although an LLM is configured, by reason code',
    labelNames: ['reason'] as const,
    registers,
  });
  const enhanceDuration = new Histogram({
    name: 'qis_prompt_enhance_duration_seconds',
    help: 'Time of one enhance_prompt rewrite (LLM call, cache lookup or offline rewrite), by source',
    labelNames: ['source'] as const,
    buckets: ENHANCE_BUCKETS_S,
    registers,
  });
  const watermarkEmbed = new Histogram({
    name: 'qis_watermark_embed_duration_seconds',
    help: 'Time to embed the invisible watermark in one generated image',
    buckets: WATERMARK_BUCKETS_S,
    registers,
  });
  const watermarkDetect = new Histogram({
    name: 'qis_watermark_detect_duration_seconds',
    help: 'Time to look for the watermark in one decoded image (POST /v1/watermark/detect; decoding not included)',
    buckets: WATERMARK_BUCKETS_S,
    registers,
  });

  const seconds = (since: number) => (performance.now() - since) / 1000;

  /** The job runner's observer: one call where a job starts and one where it ends. */
  const jobs: JobObserver = {
    started(job: JobRecord) {
      if (job.startedAtMs !== null) queueWait.observe({ model: job.model }, Math.max(0, job.startedAtMs - job.createdAtMs) / 1000);
    },
    ended(job: JobRecord, end: JobEnd) {
      if (end.status !== 'succeeded') {
        generations.inc({ model: job.model, backend: NO_BACKEND, outcome: end.status, code: end.status === 'failed' ? end.code : 'none' });
        return;
      }
      const drawnBy = end.outcome.engineInfo.backend;
      const backend = typeof drawnBy === 'string' && drawnBy !== '' ? drawnBy : NO_BACKEND;
      generations.inc({ model: job.model, backend, outcome: 'succeeded', code: 'none' });
      const engineMs = end.outcome.timings.engine_ms;
      if (typeof engineMs === 'number') engineDuration.observe({ model: job.model, backend }, engineMs / 1000);
      creditsCharged.inc({ model: job.model }, end.outcome.usage.credits);
      usdCharged.inc({ model: job.model }, end.outcome.usage.usd);
    },
  };

  return {
    registry,
    contentType: registry.contentType,
    /** Prometheus text exposition of everything above. */
    render: (): Promise<string> => registry.metrics(),
    /** Connects the scrape-time gauges to the engines and the runner. */
    watch(next: MetricsSources): void {
      sources = next;
    },
    observeRequest(method: string, route: string | undefined, status: number, durationS: number): void {
      const routeLabel = route ?? UNMATCHED_ROUTE;
      httpRequests.inc({ method, route: routeLabel, status: String(status) });
      httpDuration.observe({ method, route: routeLabel, status_class: `${Math.floor(status / 100)}xx` }, durationS);
    },
    jobs,
    /** The same enhancer, counting where each rewrite came from and why it fell back. */
    instrumentEnhancer<T extends PromptEnhancer>(enhancer: T): T {
      const enhance = async (input: EnhanceInput): Promise<EnhanceResult> => {
        const t = performance.now();
        let result: EnhanceResult;
        try {
          result = await enhancer.enhance(input);
        } catch (err) {
          // The enhancer itself never fails a request (it falls back); an abort still ends here.
          enhancements.inc({ source: 'none', outcome: 'error' });
          throw err;
        }
        enhancements.inc({ source: result.source, outcome: 'ok' });
        enhanceDuration.observe({ source: result.source }, seconds(t));
        if (result.fallbackReason) enhancerFallbacks.inc({ reason: result.fallbackReason });
        return result;
      };
      return Object.assign(Object.create(enhancer) as T, { enhance });
    },
    /** The same watermarker, timing embed and detect. */
    instrumentWatermarker(watermarker: Watermarker): Watermarker {
      return {
        embed(image, payload) {
          const t = performance.now();
          try {
            return watermarker.embed(image, payload);
          } finally {
            watermarkEmbed.observe(seconds(t));
          }
        },
        detect(image) {
          const t = performance.now();
          try {
            return watermarker.detect(image);
          } finally {
            watermarkDetect.observe(seconds(t));
          }
        },
      };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
