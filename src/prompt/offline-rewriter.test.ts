import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOfflineRewriter, QUALITY_SUFFIX_EN, QUALITY_SUFFIX_ZH } from './offline-rewriter.ts';
import { findQuotedSpans, quotedTexts } from './quoted-text.ts';

const plain = createOfflineRewriter();

describe('quoted text', () => {
  it('finds every supported pair', () => {
    const text = 'a "One" b “Two” c ‘Three’ d 「四」 e 『五』 f \'Six\' g';
    assert.deepEqual(quotedTexts(text), ['One', 'Two', 'Three', '四', '五', 'Six']);
  });

  it('does not take apostrophes for quotes', () => {
    assert.deepEqual(quotedTexts("the kids' toys, don't touch, 'tis late"), []);
    assert.deepEqual(quotedTexts("the kids' toys under a 'FUN ZONE' banner"), ['FUN ZONE']);
    assert.deepEqual(quotedTexts("a sign: 'Bob's Diner' in neon"), ["Bob's Diner"]);
    assert.deepEqual(quotedTexts('a sign: ‘Bob’s Diner’ in neon'), ['Bob’s Diner']);
  });

  it('keeps nested marks inside the outer span and ignores an unpaired mark', () => {
    assert.deepEqual(quotedTexts('招牌「写着『欢迎』二字」'), ['写着『欢迎』二字']);
    assert.deepEqual(quotedTexts('a "closed one" and "an open one'), ['closed one']);
    assert.equal(findQuotedSpans('x "y" z')[0]!.start, 2);
  });
});

describe('offline rewriter, generation (English)', () => {
  it('normalises whitespace and appends the quality suffix', () => {
    assert.equal(plain('  a   red\n\thouse  ', false), `a red house${QUALITY_SUFFIX_EN}`);
  });

  it('drops trailing punctuation before the suffix', () => {
    assert.equal(plain('A cat on a sofa.', false), 'A cat on a sofa, Ultra HD, 4K, cinematic composition.');
  });

  it('appends the suffix once, also when the caller wrote it', () => {
    const once = plain('a lighthouse', false);
    assert.equal(plain(once, false), once);
    assert.equal(plain('a lighthouse, ultra HD, 4k, cinematic composition', false), 'a lighthouse, ultra HD, 4k, cinematic composition');
  });

  it('keeps quoted text verbatim, whitespace and punctuation included', () => {
    const out = plain('a   sign saying "Hello   World!"', false);
    assert.equal(out, `a sign saying "Hello   World!"${QUALITY_SUFFIX_EN}`);
  });

  it('uses the English suffix for an English prompt asking for Chinese text', () => {
    assert.equal(plain('a poster with 「你好世界」 in the centre', false), `a poster with 「你好世界」 in the centre${QUALITY_SUFFIX_EN}`);
  });

  it('appends nothing after an unclosed quote', () => {
    assert.equal(plain('a sign saying "OPEN!', false), 'a sign saying "OPEN!');
  });

  it('leaves a blank prompt blank', () => {
    assert.equal(plain(' \n ', false), '');
  });

  it('is deterministic', () => {
    const prompt = 'a cosy cottage at dusk with "Home" on the door';
    assert.equal(plain(prompt, false), plain(prompt, false));
  });

  it('writes for a real Qwen-Image: no word is mapped onto the bundled model\'s vocabulary', () => {
    assert.equal(plain('a scarlet cabin beside the ocean at twilight', false), `a scarlet cabin beside the ocean at twilight${QUALITY_SUFFIX_EN}`);
  });
});

describe('offline rewriter, generation (Chinese)', () => {
  it('appends the Chinese suffix and keeps quotes verbatim', () => {
    assert.equal(
      plain('一只猫  坐在写着“欢迎  光临”的招牌下。', false),
      `一只猫 坐在写着“欢迎  光临”的招牌下${QUALITY_SUFFIX_ZH}`,
    );
  });

  it('uses the Chinese suffix for a Chinese prompt asking for English text', () => {
    assert.equal(plain('霓虹灯招牌写着"OPEN"', false), `霓虹灯招牌写着"OPEN"${QUALITY_SUFFIX_ZH}`);
  });

  it('appends the Chinese suffix once', () => {
    const once = plain('江南水乡的清晨', false);
    assert.equal(once, '江南水乡的清晨，超清，4K，电影级构图。');
    assert.equal(plain(once, false), once);
  });
});

describe('offline rewriter, edits', () => {
  it('tidies without a suffix', () => {
    assert.equal(plain('  make the sky   blue  ', true), 'make the sky blue');
    assert.equal(plain('把天空 改成  蓝色', true), '把天空 改成 蓝色');
  });

  it('writes text replacements as Replace "xx" to "yy"', () => {
    assert.equal(plain('Change the text "OPEN" to "CLOSED"', true), 'Replace "OPEN" to "CLOSED"');
    assert.equal(
      plain('make it night and replace “Café” with “Bar”', true),
      'make it night and replace “Café” to “Bar”',
    );
  });

  it('leaves quoted text that is not a replacement as written', () => {
    assert.equal(plain('add the words "Hi there" at the top', true), 'add the words "Hi there" at the top');
    assert.equal(plain('把“开业”改成“关门”', true), '把“开业”改成“关门”');
  });
});
