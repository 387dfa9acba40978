/** The bundled model's word-level tokenizer (model/CONTRACT.md): lowercase, split on non-[a-z0-9]. */

export const PAD_ID = 0;
export const UNK_ID = 1;

export function createTokenizer(vocab: string[], maxTokens: number) {
  const index = new Map<string, number>();
  vocab.forEach((word, i) => {
    if (!index.has(word)) index.set(word, i);
  });
  return function tokenize(text: string): { ids: BigInt64Array; mask: Float32Array } {
    const words = text.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 0);
    const ids = new BigInt64Array(maxTokens);
    const mask = new Float32Array(maxTokens);
    for (let i = 0; i < Math.min(words.length, maxTokens); i++) {
      ids[i] = BigInt(index.get(words[i]!) ?? UNK_ID);
      mask[i] = 1;
    }
    return { ids, mask };
  };
}
