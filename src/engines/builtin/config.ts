/**
 * A `type: builtin` entry of the routing file: the bundled model in this process. It adds no
 * fields to the common ones; main.ts supplies the factory (EngineContext.createBuiltin), so one
 * loaded model can serve every entry.
 */
import type { BuiltinEngineContext, EngineConfig } from '../engine-module.ts';
import type { BackendCommonConfig } from '../router/config.ts';

export interface BuiltinBackendConfig extends BackendCommonConfig {
  type: 'builtin';
}

export const builtinConfig: EngineConfig<BuiltinBackendConfig, BuiltinEngineContext> = {
  type: 'builtin',
  schema: { properties: {} },
  /** One at a time, like a GPU backend; no deadline of its own (0). */
  defaults: { concurrency: 1, timeoutMs: 0 },
  toOptions: (entry, context) => ({ backendId: entry.id, model: context.model }),
};
