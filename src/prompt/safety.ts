/**
 * What an LLM rewrite must pass before it is drawn with. A rewrite that fails any check is thrown away and the
 * offline rewriter answers instead, so a confused or chatty model can make a prompt plainer but never wrong.
 * Every refusal has a stable reason code (the stats and logs count them).
 */
import { countWords, cjkShare, detectLanguage } from './language.ts';
import { findQuotedSpans, quotedTexts, splitByQuotes, textOutsideQuotes } from './quoted-text.ts';
import type { Verdict } from './types.ts';

/** The rules ask for at most 200 words; past 300 the model ignored them (and the API caps prompts at 2000). */
export const MAX_REWRITE_WORDS = 300;
export const MAX_REWRITE_CHARS = 2000;

/** Openings of a chat reply rather than a prompt. "Sure-footed goat" must pass, hence the lookahead. */
const ANSWER_OPENINGS: readonly RegExp[] = [
  /^(?:sure|certainly|of course|okay|ok|absolutely|alright)\b(?![-'])/i,
  /^here(?:'s| is| are)\b/i,
  /^i(?:'m| am|'d| would| will| can| cannot| can't| apologi[sz]e)\b/i,
  /^(?:as an ai|unfortunately|sorry)\b/i,
  /^(?:好的|当然|抱歉|对不起|很抱歉|以下是|下面是|这是改写)/u,
];

/** Phrases of a refusal or of a model talking about itself, anywhere outside quotes (lower-cased, ' for ’). */
const CHAT_PHRASES: readonly string[] = [
  'as an ai', 'language model', "i can't help", 'i cannot help', "i can't assist", 'i cannot assist',
  "i can't create", 'i cannot create', "i'm unable to", 'i am unable to', "i'm sorry", 'i apologize',
  'cannot fulfill', "can't fulfill", "i won't be able", 'against my guidelines',
  '作为一个ai', '作为ai', '作为人工智能', '我无法', '我不能', '很抱歉',
];

/** Labels and wrappers chat models put around an answer; removing them loses nothing. */
const THINK_BLOCK = /<think>[\s\S]*?<\/think>/giu;
const UNCLOSED_THINK = /<think>[\s\S]*$/iu;
const CODE_FENCE = /^```[\w-]*\s*\n?([\s\S]*?)\n?```$/u;
const LEADING_LABEL = /^(?:\*\*)?(?:(?:rewritten|enhanced|improved|revised|final)\s+)?(?:prompt|instruction)(?:\*\*)?\s*[:：]\s*|^(?:改写后的)?(?:提示词|指令)\s*[:：]\s*/iu;

/**
 * Strips reasoning blocks (Qwen3 and DeepSeek-R1 emit `<think>…</think>` through Ollama), code fences, a leading
 * "Prompt:" label and quotes wrapped around the whole answer; collapses whitespace outside quotes.
 */
export function cleanRewrite(raw: string): string {
  let text = raw.replace(THINK_BLOCK, '').replace(UNCLOSED_THINK, '').trim();
  const fenced = CODE_FENCE.exec(text);
  if (fenced) text = fenced[1]!.trim();
  text = text.replace(LEADING_LABEL, '').trim();
  const spans = findQuotedSpans(text);
  if (spans.length === 1 && spans[0]!.start === 0 && spans[0]!.end === text.length) {
    text = spans[0]!.inner.trim();
  }
  return splitByQuotes(text)
    .map((segment) => (segment.isQuoted ? segment.text : segment.text.replace(/\s+/gu, ' ')))
    .join('')
    .trim();
}

const refuse = (reason: string, detail: string): Verdict => ({ ok: false, reason, detail });
const foldForSearch = (s: string): string => s.toLowerCase().replace(/\s+/gu, ' ').trim();

/**
 * Checks a cleaned rewrite against the original prompt. Quoted text: every quote of the original must come back
 * verbatim inside quotes (any supported quote marks); a quote the original did not have is only allowed when its
 * text is in the original unquoted (`a sign saying open` → `a sign reading "open"`, or an edit's
 * `Replace "a" to "b"`).
 */
export function checkRewrite(original: string, rewrite: string): Verdict {
  if (rewrite.trim() === '') return refuse('refused_empty', 'empty rewrite');
  if (rewrite.length > MAX_REWRITE_CHARS) return refuse('refused_too_long', `${rewrite.length} characters`);
  const words = countWords(rewrite);
  if (words > MAX_REWRITE_WORDS) return refuse('refused_too_long', `${words} words`);

  const outside = textOutsideQuotes(rewrite).replace(/’/gu, "'").trim();
  const opening = ANSWER_OPENINGS.find((pattern) => pattern.test(outside));
  if (opening) return refuse('refused_answer', `starts like a reply: ${outside.slice(0, 40)}`);
  const folded = outside.toLowerCase();
  const phrase = CHAT_PHRASES.find((p) => folded.includes(p));
  if (phrase) return refuse('refused_answer', `contains "${phrase}"`);
  if (/[?？]$/u.test(outside)) return refuse('refused_question', 'ends with a question mark');

  const originalLanguage = detectLanguage(textOutsideQuotes(original));
  const share = cjkShare(textOutsideQuotes(rewrite));
  if (originalLanguage === 'cjk' && !(share >= 0.5)) {
    return refuse('refused_language', `CJK prompt, rewrite ${Math.round((share || 0) * 100)}% CJK`);
  }
  if (originalLanguage === 'other' && share >= 0.5) {
    return refuse('refused_language', `non-CJK prompt, rewrite ${Math.round(share * 100)}% CJK`);
  }

  const originalQuotes = quotedTexts(original).map((q) => q.trim());
  const rewriteQuotes = quotedTexts(rewrite).map((q) => q.trim());
  const dropped = originalQuotes.find((q) => !rewriteQuotes.includes(q));
  if (dropped !== undefined) return refuse('refused_quote_dropped', `lost "${dropped}"`);
  const foldedOriginal = foldForSearch(original);
  const added = rewriteQuotes.find((q) => !originalQuotes.includes(q) && !foldedOriginal.includes(foldForSearch(q)));
  if (added !== undefined) return refuse('refused_quote_added', `added "${added}"`);
  return { ok: true };
}
