/**
 * A public model as a ROLE=api process sees it: drawn by the worker processes, never here. It loads
 * nothing and opens no connection to a GPU backend; it only knows, from the same routing file the
 * workers read, which backends serve the model and how many jobs they take at once, which is what
 * admission (503 queue_full) and GET /v1/models need. `generate` is never called: an api process
 * runs no job (the job control it uses has no runner).
 */
import { ApiError } from '../../domain/errors.ts';
import type { Engine, EngineHealth, EngineResult } from '../../domain/types.ts';
import { ANY_SIZE, type EngineCapabilities } from '../../domain/engine-capabilities.ts';
import { BACKEND_DEFAULTS, type BackendsConfig } from '../../config/backends.ts';

export function createWorkerPoolEngines(config: BackendsConfig): Map<string, Engine> {
  const engines = new Map<string, Engine>();
  for (const [model, entry] of Object.entries(config.models)) engines.set(model, createWorkerPoolEngine(model, entry.backends));
  return engines;
}

function createWorkerPoolEngine(model: string, backends: BackendsConfig['models'][string]['backends']): Engine {
  // As the router counts it with every backend up: the slots of the preferred (lowest) priority tier.
  const tier = Math.min(...backends.map((b) => b.priority ?? BACKEND_DEFAULTS.priority));
  const slots = backends
    .filter((b) => (b.priority ?? BACKEND_DEFAULTS.priority) === tier)
    .reduce((sum, b) => sum + (b.concurrency ?? BACKEND_DEFAULTS.concurrency[b.type]), 0);
  const ids = backends.map((b) => b.id).join(', ');
  return {
    id: 'workers',
    kind: 'worker-pool',
    description: `drawn by the worker processes (ROLE=worker) over ${ids}`,
    async load() {},
    async health(): Promise<EngineHealth> {
      return { ok: true, detail: 'not checked by an api process: each worker reports its engines on its own /healthz' };
    },
    capacity: () => slots,
    // What the backends can do is declared by the engines the workers build; an api process builds none, so it
    // claims nothing it would refuse: the worker's router filters by the real declarations (400 backend_rejected).
    capabilities: (): EngineCapabilities => ({
      maxReferenceImages: 3,
      sizes: ANY_SIZE,
      negativePrompt: true,
      seed: true,
      progress: true,
      previews: true,
      masks: false,
      promptAdaptation: false,
    }),
    async generate(): Promise<EngineResult> {
      throw new ApiError('internal_error', `model ${model} is drawn by the workers; an api process runs no job`);
    },
    async close() {},
  };
}
