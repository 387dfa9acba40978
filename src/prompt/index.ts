/**
 * The prompt room's public surface (enhance_prompt). main.ts builds one enhancer, which writes for a real
 * Qwen-Image whatever engine will draw:
 *
 *   const enhancer = createPromptEnhancer({
 *     llm: config.enhancer.url && config.enhancer.model ? { url, model, apiKey, timeoutMs } : undefined,
 *     cache: stores.promptCache,                    // SQLite or Postgres (store/open-stores.ts), or createMemoryPromptCache()
 *     logger,
 *   });
 *
 * and one prompt adapter for the builtin engine, which applies it to the prompt it draws (when enhance_prompt is on):
 *
 *   createBuiltinEngine({ ..., adaptPrompt: createVocabularyAdapter(DEFAULT_BUNDLED_VOCABULARY, { modelWords: manifest.text.vocab }) });
 *
 * See docs/enhance-prompt.md.
 */
export { createPromptEnhancer, DEFAULT_LLM_TIMEOUT_MS } from './prompt-enhancer.ts';
export { createMemoryPromptCache, promptCacheKey, DEFAULT_MEMORY_CACHE_ENTRIES } from './memory-cache.ts';
export type { PromptCacheKeyParts } from './memory-cache.ts';
export { createOfflineRewriter, QUALITY_SUFFIX_EN, QUALITY_SUFFIX_ZH } from './offline-rewriter.ts';
export type { OfflineRewriter } from './offline-rewriter.ts';
export { BUNDLED_MODEL_WORDS, BUNDLED_MODEL_WORDS_V2, DEFAULT_BUNDLED_VOCABULARY, compileVocabulary, createVocabularyAdapter, fitVocabulary } from './vocabulary.ts';
export type { PromptAdapter, WordMapper } from './vocabulary.ts';
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
