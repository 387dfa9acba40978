/**
 * A `type: dashscope` entry of the routing file (Alibaba Cloud Model Studio's hosted
 * qwen-image-2.0): its fields, their JSON Schema, its defaults and the DashscopeEngine options it
 * becomes. Documented in docs/backends/routing.md and dashscope.md.
 */
import { requireEnv, type EngineConfig } from '../engine-module.ts';
import type { BackendCommonConfig } from '../router/config.ts';
import { ENV_NAME_PROPERTY, URL_PROPERTY } from '../router/config.ts';
import type { DashscopeEngineOptions } from './dashscope-engine.ts';

export interface DashscopeBackendConfig extends BackendCommonConfig {
  type: 'dashscope';
  /** Default https://dashscope-intl.aliyuncs.com (Singapore); Beijing: https://dashscope.aliyuncs.com. */
  url?: string;
  /** Default qwen-image-2.0. */
  model?: string;
  /** Name of the environment variable holding the API key; the key itself never goes in this file. */
  apiKeyEnv: string;
}

export const dashscopeConfig: EngineConfig<DashscopeBackendConfig, DashscopeEngineOptions> = {
  type: 'dashscope',
  schema: {
    required: ['apiKeyEnv'],
    properties: { url: URL_PROPERTY, model: { type: 'string', minLength: 1 }, apiKeyEnv: ENV_NAME_PROPERTY },
  },
  /** Hosted: no GPU of ours to share, so two in flight by default; three minutes for one call. */
  defaults: { concurrency: 2, timeoutMs: 180_000 },
  toOptions: (entry, context) => ({
    id: entry.id,
    url: entry.url,
    model: entry.model,
    apiKey: requireEnv(entry.apiKeyEnv, entry.id, context.env),
    apiKeyEnv: entry.apiKeyEnv,
    logger: context.logger,
  }),
};
