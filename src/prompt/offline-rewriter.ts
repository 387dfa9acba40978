/**
 * The offline rewriter: deterministic, no network. It is the whole enhancer when no LLM is configured and the
 * fallback when the LLM fails or its rewrite is refused. It only tidies: whitespace, the quality suffix Qwen-Image's
 * own rewriter appends (for generations) and the canonical text-replacement phrasing Qwen-Image-Edit is prompted with
 * (for edits). Quoted text is never touched. It writes for a real Qwen-Image: mapping words onto the bundled model's
 * vocabulary is the builtin engine's business (vocabulary.ts), not the rewriter's.
 */
import { detectLanguage } from './language.ts';
import { findQuotedSpans, hasUnclosedQuote, splitByQuotes, textOutsideQuotes } from './quoted-text.ts';

/**
 * The "magic" quality suffixes from the Qwen-Image model card examples (positive_magic), English and Chinese.
 * Appended to generation prompts only: an edit instruction describes a change, not a picture.
 */
export const QUALITY_SUFFIX_EN = ', Ultra HD, 4K, cinematic composition.';
export const QUALITY_SUFFIX_ZH = '，超清，4K，电影级构图。';

/** The suffixes with punctuation and spacing folded, to spot one the caller already wrote. */
const SUFFIX_FINGERPRINTS = ['ultrahd,4k,cinematiccomposition', '超清,4k,电影级构图'];

/** Punctuation (and space) ending an unquoted prompt, dropped before the suffix so it reads "…, Ultra HD". */
const TRAILING_PUNCTUATION = /[\s.,;:!?。，；：、！？]+$/u;

/** `change the text "A" to "B"` → `Replace "A" to "B"` (the phrasing of Qwen-Image-Edit's text-edit examples). */
const REPLACE_VERB = /(^|[^\p{L}])(change|replace|swap)\s+(?:the\s+)?(?:(?:text|word|words|wording|title|label|sign)\s+)?(?:from\s+)?$/iu;
const REPLACE_LINK = /^\s*(?:with|to|into|by|for)\s*$/iu;

export type OfflineRewriter = (prompt: string, isEdit: boolean) => string;

function hasQualitySuffix(text: string): boolean {
  const folded = text.toLowerCase().replace(/\s+/gu, '').replace(/，/gu, ',');
  return SUFFIX_FINGERPRINTS.some((fingerprint) => folded.includes(fingerprint));
}

function canonicaliseTextReplacement(text: string): string {
  const spans = findQuotedSpans(text);
  let out = '';
  let at = 0;
  for (let i = 0; i + 1 < spans.length; i++) {
    const from = spans[i]!;
    const to = spans[i + 1]!;
    if (!REPLACE_LINK.test(text.slice(from.end, to.start))) continue;
    const verb = REPLACE_VERB.exec(text.slice(at, from.start));
    if (verb === null) continue;
    const verbStart = at + verb.index + verb[1]!.length;
    const isSentenceStart = text.slice(0, verbStart).trim() === '' || /[.!?;]\s*$/u.test(text.slice(0, verbStart));
    out += text.slice(at, verbStart);
    out += `${isSentenceStart ? 'Replace' : 'replace'} ${text.slice(from.start, from.end)} to ${text.slice(to.start, to.end)}`;
    at = to.end;
    i++;
  }
  return out + text.slice(at);
}

export function createOfflineRewriter(): OfflineRewriter {
  return (prompt, isEdit) => {
    const tidied = splitByQuotes(prompt)
      .map((segment) => (segment.isQuoted ? segment.text : segment.text.replace(/\s+/gu, ' ')))
      .join('')
      .trim();
    if (isEdit) return canonicaliseTextReplacement(tidied);
    // With an unclosed quote there is no telling where the image's text ends, so nothing is appended after it.
    if (tidied === '' || hasQualitySuffix(tidied) || hasUnclosedQuote(tidied)) return tidied;

    const outside = detectLanguage(textOutsideQuotes(tidied));
    const language = outside === 'unknown' ? detectLanguage(tidied) : outside;
    const body = tidied.replace(TRAILING_PUNCTUATION, '');
    if (body === '') return tidied;
    return body + (language === 'cjk' ? QUALITY_SUFFIX_ZH : QUALITY_SUFFIX_EN);
  };
}
