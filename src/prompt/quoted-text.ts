/**
 * Finding quoted text in a prompt. Qwen-Image renders text that the prompt puts in quotes, so quoted text is the one
 * part of a prompt that no rewriter may touch: it is kept verbatim and checked after every LLM rewrite.
 *
 * Recognised pairs: "…", “…”, ‘…’, 「…」, 『…』 and '…'. The ASCII single quote doubles as an apostrophe, so it only
 * opens after a boundary (start, space, bracket, dash, colon, comma) and only closes before a non-letter; `don't`,
 * `the kids' toys` and `'tis` are therefore not quotes. ’ likewise only closes before a non-letter (`‘Bob’s Diner’`).
 */

export interface QuotedSpan {
  /** Index of the opening mark. */
  start: number;
  /** Index just past the closing mark. */
  end: number;
  /** The text between the marks, verbatim. */
  inner: string;
}

export interface TextSegment {
  text: string;
  /** True for a quoted span, marks included. */
  isQuoted: boolean;
}

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;
const SPACE = /\s/u;
/** Characters after which an ASCII ' may open a quote. */
const SINGLE_QUOTE_OPENS_AFTER = /[\s([{\-–—:;,，：（]/u;

const isLetterOrDigit = (ch: string | undefined): boolean => ch !== undefined && LETTER_OR_DIGIT.test(ch);

/** Index of the mark closing the quote opened at `openAt`, or -1 when `text[openAt]` opens nothing. */
function findClosingMark(text: string, openAt: number): number {
  const open = text[openAt];
  switch (open) {
    case '"':
      return text.indexOf('"', openAt + 1);
    case '“':
      return text.indexOf('”', openAt + 1);
    case '「':
      return text.indexOf('」', openAt + 1);
    case '『':
      return text.indexOf('』', openAt + 1);
    case '‘':
      for (let j = openAt + 1; j < text.length; j++) {
        if (text[j] === '’' && !isLetterOrDigit(text[j + 1])) return j;
      }
      return -1;
    case "'": {
      const before = text[openAt - 1];
      const after = text[openAt + 1];
      if (before !== undefined && !SINGLE_QUOTE_OPENS_AFTER.test(before)) return -1;
      if (after === undefined || SPACE.test(after) || after === "'") return -1;
      for (let j = openAt + 2; j < text.length; j++) {
        if (text[j] === '\n') return -1;
        if (text[j] === "'" && !SPACE.test(text[j - 1]!) && !isLetterOrDigit(text[j + 1])) return j;
      }
      return -1;
    }
    default:
      return -1;
  }
}

/** Quoted spans left to right, outermost only (a 『…』 inside 「…」 belongs to the outer span). */
export function findQuotedSpans(text: string): QuotedSpan[] {
  const spans: QuotedSpan[] = [];
  let i = 0;
  while (i < text.length) {
    const close = findClosingMark(text, i);
    if (close < 0) {
      i++;
      continue;
    }
    spans.push({ start: i, end: close + 1, inner: text.slice(i + 1, close) });
    i = close + 1;
  }
  return spans;
}

/** The non-blank quoted texts, verbatim, in order. */
export function quotedTexts(text: string): string[] {
  return findQuotedSpans(text)
    .map((span) => span.inner)
    .filter((inner) => inner.trim() !== '');
}

/** The text cut into alternating unquoted and quoted segments; joining the `text`s gives the input back. */
export function splitByQuotes(text: string): TextSegment[] {
  const segments: TextSegment[] = [];
  let at = 0;
  for (const span of findQuotedSpans(text)) {
    if (span.start > at) segments.push({ text: text.slice(at, span.start), isQuoted: false });
    segments.push({ text: text.slice(span.start, span.end), isQuoted: true });
    at = span.end;
  }
  if (at < text.length) segments.push({ text: text.slice(at), isQuoted: false });
  return segments;
}

/** The text with every quoted span replaced by a space: what language and answer checks look at. */
export function textOutsideQuotes(text: string): string {
  return splitByQuotes(text)
    .map((segment) => (segment.isQuoted ? ' ' : segment.text))
    .join('');
}

/**
 * True when an opening mark has no partner (`a sign saying "OPEN!`): the tail of such a text may be text meant for
 * the image, so the offline rewriter leaves it alone. The ASCII ' is left out: alone it is usually an apostrophe.
 */
export function hasUnclosedQuote(text: string): boolean {
  return /["“‘「『]/u.test(textOutsideQuotes(text));
}
