import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import path from 'node:path';
import { readManifest } from '../engines/builtin/manifest.ts';
import { createOfflineRewriter, QUALITY_SUFFIX_EN } from './offline-rewriter.ts';
import { BUNDLED_MODEL_WORDS, BUNDLED_MODEL_WORDS_V2, createVocabularyAdapter, DEFAULT_BUNDLED_VOCABULARY, fitVocabulary } from './vocabulary.ts';

// the v1 model's words (today's shipped manifest holds these) and the wider v2 model's
const bundled = createVocabularyAdapter(DEFAULT_BUNDLED_VOCABULARY, { modelWords: BUNDLED_MODEL_WORDS });
const wider = createVocabularyAdapter(DEFAULT_BUNDLED_VOCABULARY, { modelWords: BUNDLED_MODEL_WORDS_V2 });
const candidates = (to: string | readonly string[]): readonly string[] => (typeof to === 'string' ? [to] : to);

describe('vocabulary adapter (the builtin engine\'s prompt adapter)', () => {
  it('maps words outside quotes only, keeping their casing style', () => {
    assert.equal(
      bundled('A crimson cottage by the OCEAN at dusk, sign "Crimson Ocean"'),
      'A red house by the SEA at sunset, sign "Crimson Ocean"',
    );
  });

  it('applied to the offline rewrite, gives the prompt the builtin engine drew before the mapping moved to it', () => {
    const rewrite = createOfflineRewriter();
    assert.equal(
      bundled(rewrite('a scarlet cabin beside the ocean at twilight', false)),
      `a red house beside the sea at sunset${QUALITY_SUFFIX_EN}`,
    );
    assert.equal(bundled(rewrite('  a   crimson\ncottage, sign "Crimson  Cottage"', false)), `a red house, sign "Crimson  Cottage"${QUALITY_SUFFIX_EN}`);
  });

  it('prefers the longer key and matches whole words only', () => {
    assert.equal(bundled('a full moon over hills'), 'a moon over mountain');
    assert.equal(bundled('a seashell on sandstone'), 'a seashell on sandstone');
  });

  it('leaves unknown words, whitespace and an unchanged prompt as they are', () => {
    assert.equal(bundled('a kitten'), 'a kitten');
    assert.equal(bundled('  a red\thouse  '), '  a red\thouse  ');
  });

  it('lands the colour, object, ground and time words people type on the words the model knows', () => {
    assert.equal(bundled('a cerulean cube on a prairie at nightfall'), 'a blue square on a grass at night');
    assert.equal(bundled('a charcoal barn centered on icy ground at golden hour'), 'a gray house center on snow ground at sunset');
    assert.equal(bundled('an onyx sphere in the sahara by moonlit sky'), 'an black circle in the desert by moon sky');
  });

  it('reads a two-word colour as a colour, not as the sea, the night or snow its first word names', () => {
    assert.equal(bundled('an ocean blue house by the ocean'), 'an blue house by the sea');
    assert.equal(bundled('a midnight blue tree at midnight'), 'a blue tree at night');
    assert.equal(bundled('a snow white cabin in the snow'), 'a white house in the snow');
    assert.equal(bundled('a forest green ball, golden yellow sun'), 'a green circle, yellow sun');
  });

  it('leaves sizes and backgrounds, which the model has no words for, to its unknown-word handling; counts become positions', () => {
    assert.equal(
      bundled('two big trees and a tiny house on a plain background'),
      'a big tree on the left and a big tree on the right and a tiny house on a plain background',
    );
  });

  it('for the v1 model, a count becomes the positions it can draw, after the words are mapped', () => {
    assert.equal(bundled('three small navy cubes at dusk'), 'a small blue square on the left, a small blue square in the center and a small blue square on the right at sunset');
    assert.equal(bundled('a pair of crimson cottages by the ocean'), 'a red house on the left and a red house on the right by the sea');
    assert.equal(bundled('2 orange balls'), 'an orange circle on the left and an orange circle on the right');
    assert.equal(bundled('Two trees, sign "two trees"'), 'a tree on the left and a tree on the right, sign "two trees"');
  });

  it('for the v1 model, leaves a count alone where positions cannot say it', () => {
    assert.equal(bundled('two trees on the left'), 'two tree on the left'); // one position holds one thing
    assert.equal(bundled('two of the trees'), 'two of the tree');
    assert.equal(bundled('two stars at night'), 'two stars at night');
    assert.equal(bundled('twofold trees'), 'twofold tree');
  });

  it('gives a model that knows count words its counts unchanged', () => {
    assert.equal(wider('two trees and three circles'), 'two trees and three circles');
  });

  it('maps only to words one of the bundled models knows', () => {
    for (const to of Object.values(DEFAULT_BUNDLED_VOCABULARY.synonyms)) {
      for (const word of candidates(to)) assert.ok(BUNDLED_MODEL_WORDS_V2.includes(word), word);
    }
  });

  it('fitted to the v1 words, maps only to v1 words, a word onto itself never', () => {
    const fitted = fitVocabulary(DEFAULT_BUNDLED_VOCABULARY, BUNDLED_MODEL_WORDS);
    for (const [from, to] of Object.entries(fitted.synonyms)) {
      assert.equal(typeof to, 'string', from);
      assert.ok(BUNDLED_MODEL_WORDS.includes(to as string), `${from} → ${String(to)}`);
      assert.notEqual(from, to);
    }
    assert.equal(fitted.synonyms.cottages, 'house');
    assert.equal(fitted.synonyms.tiny, undefined);
  });

  it('fitted to the wider model\'s words, lands sizes, counts, plurals, backgrounds and the new things', () => {
    assert.equal(wider('two tiny cottages on a white backdrop'), 'two small houses on a white background');
    assert.equal(wider('a huge crimson sailboat and a little goldfish'), 'a big red boat and a small fish');
    assert.equal(wider('three trees, a star and starry skies'), 'three trees, a star and stars skies');
    assert.equal(wider('a pair of sparrows'), 'two birds');
    assert.equal(bundled('a star and a huge sailboat'), 'a stars and a huge sailboat');
  });

  it('the words of the shipped tokenizer (model/weights/manifest.json) include every v1 word', () => {
    const vocab = new Set(readManifest(path.resolve(import.meta.dirname, '../../model/weights')).text.vocab);
    for (const word of BUNDLED_MODEL_WORDS) assert.ok(vocab.has(word), word);
  });

  it('accepts a custom table; an empty one is the identity', () => {
    const custom = createVocabularyAdapter({ synonyms: { Kitten: 'cat', 'navy blue': 'blue' } });
    assert.equal(custom('a Kitten on a navy  blue rug'), 'a Cat on a blue rug');
    assert.equal(createVocabularyAdapter({ synonyms: {} })('a crimson cottage'), 'a crimson cottage');
  });
});
