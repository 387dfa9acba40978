import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOfflineRewriter, QUALITY_SUFFIX_EN } from './offline-rewriter.ts';
import { BUNDLED_MODEL_WORDS, createVocabularyAdapter, DEFAULT_BUNDLED_VOCABULARY } from './vocabulary.ts';

const bundled = createVocabularyAdapter(DEFAULT_BUNDLED_VOCABULARY);

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

  it('maps only to words the bundled model knows', () => {
    for (const word of Object.values(DEFAULT_BUNDLED_VOCABULARY.synonyms)) assert.ok(BUNDLED_MODEL_WORDS.includes(word), word);
  });

  it('accepts a custom table; an empty one is the identity', () => {
    const custom = createVocabularyAdapter({ synonyms: { Kitten: 'cat', 'navy blue': 'blue' } });
    assert.equal(custom('a Kitten on a navy  blue rug'), 'a Cat on a blue rug');
    assert.equal(createVocabularyAdapter({ synonyms: {} })('a crimson cottage'), 'a crimson cottage');
  });
});
