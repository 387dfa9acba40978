/**
 * The prompt room's public surface (enhance_prompt). main.ts builds one enhancer:
 *
 *   const enhancer = createPromptEnhancer({
 *     llm: config.enhancer.url && config.enhancer.model ? { url, model, apiKey, timeoutMs } : undefined,
 *     cache: createSqlitePromptCache(db),           // or createMemoryPromptCache()
 *     vocabulary: DEFAULT_BUNDLED_VOCABULARY,       // only when the builtin engine draws
 *     logger,
 *   });
 *
 * See docs/enhance-prompt.md.
 */
export { createPromptEnhancer, DEFAULT_LLM_TIMEOUT_MS } from './prompt-enhancer.ts';
export { createMemoryPromptCache, promptCacheKey, DEFAULT_MEMORY_CACHE_ENTRIES } from './memory-cache.ts';
export type { PromptCacheKeyParts } from './memory-cache.ts';
export { createOfflineRewriter, QUALITY_SUFFIX_EN, QUALITY_SUFFIX_ZH } from './offline-rewriter.ts';
export type { OfflineRewriter, OfflineRewriterOptions } from './offline-rewriter.ts';
export { BUNDLED_MODEL_WORDS, DEFAULT_BUNDLED_VOCABULARY, compileVocabulary } from './vocabulary.ts';
export { PROMPT_RULES_VERSION } from './rules.ts';
export { checkRewrite, cleanRewrite, MAX_REWRITE_CHARS, MAX_REWRITE_WORDS } from './safety.ts';
export type {
  EnhancerStats,
  LlmOptions,
  PromptCache,
  PromptEnhancerOptions,
  PromptLogger,
  StatefulPromptEnhancer,
  Vocabulary,
} from './types.ts';
