/**
 * enhance_prompt: the LLM rewriter with its cache, checks and offline fallback. The rule is that enhancement is
 * never the reason a request fails: every LLM problem (slow, down, 4xx/5xx, garbage, an unsafe rewrite) ends in
 * the offline rewriter, with the reason returned, logged and counted.
 */
import type { EnhanceInput, EnhanceResult } from '../domain/ports.ts';
import { requestChatCompletion, scrubCredentials } from './chat-client.ts';
import { detectLanguage } from './language.ts';
import { promptCacheKey } from './memory-cache.ts';
import { createOfflineRewriter } from './offline-rewriter.ts';
import { textOutsideQuotes } from './quoted-text.ts';
import { PROMPT_RULES_VERSION, systemPromptFor } from './rules.ts';
import { checkRewrite, cleanRewrite } from './safety.ts';
import type { EnhancerStats, LlmOptions, PromptEnhancerOptions, StatefulPromptEnhancer } from './types.ts';

/** The budget for one rewrite: long enough for a 7B model on a GPU, short enough not to stall a request. */
export const DEFAULT_LLM_TIMEOUT_MS = 10_000;

type LlmRewrite = { ok: true; prompt: string; attempts: number; ms: number } | { ok: false; reason: string; detail: string };

function validateLlmOptions(llm: LlmOptions): Required<Omit<LlmOptions, 'apiKey'>> & { apiKey?: string } {
  let url: URL;
  try {
    url = new URL(llm.url);
  } catch {
    throw new TypeError(`prompt enhancer url is not a URL: ${JSON.stringify(llm.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`prompt enhancer url must be http(s), got ${url.protocol}`);
  }
  if (typeof llm.model !== 'string' || llm.model.trim() === '') throw new TypeError('prompt enhancer model is required');
  const timeoutMs = llm.timeoutMs ?? DEFAULT_LLM_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`prompt enhancer timeoutMs must be > 0, got ${timeoutMs}`);
  return { url: llm.url, model: llm.model, apiKey: llm.apiKey || undefined, timeoutMs };
}

/** Resolves to the flight's outcome, or to an `aborted` outcome as soon as the caller's signal fires. */
function unlessAborted(flight: Promise<LlmRewrite>, signal: AbortSignal | undefined): Promise<LlmRewrite> {
  if (signal === undefined) return flight;
  const aborted: LlmRewrite = { ok: false, reason: 'aborted', detail: 'the request was aborted' };
  if (signal.aborted) return Promise.resolve(aborted);
  return new Promise((resolve) => {
    const onAbort = () => resolve(aborted);
    signal.addEventListener('abort', onAbort, { once: true });
    void flight.then((outcome) => {
      signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    });
  });
}

/**
 * Builds the enhancer. With `llm`, rewrites go to the chat server (cached per prompt, seed, edit flag, enhancer
 * model and rules version); without it every prompt goes through the offline rewriter. Throws on a malformed
 * `llm` setting, so a typo stops the server at start rather than silently disabling the LLM.
 */
export function createPromptEnhancer(options: PromptEnhancerOptions): StatefulPromptEnhancer {
  const { cache, logger } = options;
  const llm = options.llm ? validateLlmOptions(options.llm) : undefined;
  const rulesVersion = options.rulesVersion ?? PROMPT_RULES_VERSION;
  const rewriteOffline = createOfflineRewriter();
  const counters = { llmCalls: 0, cacheHits: 0, fallbacks: 0 };
  const fallbackReasons = new Map<string, number>();
  // Concurrent requests for the same key share one LLM call, so they cannot be served two different rewrites.
  const inFlight = new Map<string, Promise<LlmRewrite>>();

  function fallBack(input: EnhanceInput, reason: string, detail: string): EnhanceResult {
    counters.fallbacks++;
    fallbackReasons.set(reason, (fallbackReasons.get(reason) ?? 0) + 1);
    logger?.warn({ requestId: input.requestId, reason, detail }, 'prompt enhancer fell back to the offline rewriter');
    return { prompt: rewriteOffline(input.prompt, input.isEdit), source: 'offline', fallbackReason: reason };
  }

  async function readCache(key: string, requestId: string): Promise<string | undefined> {
    try {
      return await cache.get(key);
    } catch (error) {
      logger?.warn({ requestId, err: error }, 'prompt cache read failed; treated as a miss');
      return undefined;
    }
  }

  async function writeCache(key: string, value: string, requestId: string): Promise<void> {
    try {
      await cache.set(key, value);
    } catch (error) {
      logger?.warn({ requestId, err: error }, 'prompt cache write failed; the rewrite is used but not kept');
    }
  }

  async function rewriteWithLlm(
    settings: NonNullable<typeof llm>,
    input: EnhanceInput,
    key: string,
  ): Promise<LlmRewrite> {
    const startedMs = performance.now();
    try {
      const outside = detectLanguage(textOutsideQuotes(input.prompt));
      const language = outside === 'unknown' ? detectLanguage(input.prompt) : outside;
      const outcome = await requestChatCompletion({
        url: settings.url,
        model: settings.model,
        apiKey: settings.apiKey,
        messages: [
          { role: 'system', content: systemPromptFor(input.isEdit, language) },
          { role: 'user', content: input.prompt.trim() },
        ],
        seed: input.seed,
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
      counters.llmCalls += outcome.attempts;
      if (!outcome.ok) return outcome;
      const rewrite = cleanRewrite(outcome.content);
      const verdict = checkRewrite(input.prompt, rewrite);
      if (!verdict.ok) return verdict;
      await writeCache(key, rewrite, input.requestId);
      return { ok: true, prompt: rewrite, attempts: outcome.attempts, ms: Math.round(performance.now() - startedMs) };
    } catch (error) {
      // Unreachable by design (the client returns failures); kept so a bug here still cannot fail a request.
      return { ok: false, reason: 'internal', detail: scrubCredentials(error instanceof Error ? error.message : String(error), settings.apiKey) };
    }
  }

  return {
    async enhance(input: EnhanceInput): Promise<EnhanceResult> {
      if (llm === undefined) return { prompt: rewriteOffline(input.prompt, input.isEdit), source: 'offline' };
      if (input.prompt.trim() === '') return fallBack(input, 'empty_prompt', 'nothing to rewrite');

      const key = promptCacheKey({
        prompt: input.prompt,
        seed: input.seed,
        isEdit: input.isEdit,
        enhancerModel: llm.model,
        rulesVersion,
      });
      const cached = await readCache(key, input.requestId);
      if (cached !== undefined) {
        counters.cacheHits++;
        return { prompt: cached, source: 'cache' };
      }

      let flight = inFlight.get(key);
      if (flight === undefined) {
        flight = rewriteWithLlm(llm, input, key).finally(() => inFlight.delete(key));
        inFlight.set(key, flight);
      }
      const outcome = await unlessAborted(flight, input.signal);
      if (!outcome.ok) return fallBack(input, outcome.reason, outcome.detail);
      logger?.info({ requestId: input.requestId, model: llm.model, ms: outcome.ms, attempts: outcome.attempts }, 'prompt rewritten by LLM');
      return { prompt: outcome.prompt, source: 'llm' };
    },

    stats(): EnhancerStats {
      return { ...counters, fallbackReasons: Object.fromEntries(fallbackReasons) };
    },
  };
}
