/**
 * Language detection, CJK versus everything else, which is the split Qwen-Image's own rewriter makes (it picks the
 * Chinese or the English rules by looking for CJK characters). Quoted text is left out by the callers: an English
 * prompt asking for a Chinese sign is still an English prompt.
 */

export type PromptLanguage = 'cjk' | 'other' | 'unknown';

const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/gu;
const WORD = /[\p{L}\p{M}]+/gu;

export interface TextMeasure {
  /** Han, kana and hangul characters; one of them carries about as much as one word of a spaced language. */
  cjkChars: number;
  /** Runs of letters from every other script. */
  otherWords: number;
}

export function measureText(text: string): TextMeasure {
  const cjkChars = text.match(CJK_CHAR)?.length ?? 0;
  const otherWords = text.replace(CJK_CHAR, ' ').match(WORD)?.length ?? 0;
  return { cjkChars, otherWords };
}

/** 0..1, the CJK share of the text's words; NaN when it has no letters at all. */
export function cjkShare(text: string): number {
  const { cjkChars, otherWords } = measureText(text);
  return cjkChars / (cjkChars + otherWords);
}

/** 'cjk' when at least half of the words are CJK characters. */
export function detectLanguage(text: string): PromptLanguage {
  const share = cjkShare(text);
  if (Number.isNaN(share)) return 'unknown';
  return share >= 0.5 ? 'cjk' : 'other';
}

/** Length in words, a CJK character counting as one (Qwen's Chinese rules count 字, its English rules words). */
export function countWords(text: string): number {
  const { cjkChars, otherWords } = measureText(text);
  return cjkChars + otherWords;
}
