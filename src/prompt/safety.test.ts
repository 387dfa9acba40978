import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkRewrite, cleanRewrite } from './safety.ts';

const reasonOf = (original: string, rewrite: string): string => {
  const verdict = checkRewrite(original, rewrite);
  return verdict.ok ? 'ok' : verdict.reason;
};

describe('checkRewrite', () => {
  it('accepts a faithful rewrite', () => {
    assert.equal(
      reasonOf('a bakery sign "Fresh Bread"', 'A small bakery at dawn, a wooden sign reading "Fresh Bread" in white serif letters above the door, realistic photography.'),
      'ok',
    );
    assert.equal(reasonOf('Sure-footed goat', 'A sure-footed goat on a cliff'), 'ok');
  });

  it('accepts the quoted text under other quote marks', () => {
    assert.equal(reasonOf('招牌写着「欢迎光临」', '一家小店门口挂着写有“欢迎光临”的红色招牌，暖色灯光，写实摄影。'), 'ok');
  });

  it('refuses a rewrite that drops or changes quoted text', () => {
    assert.equal(reasonOf('a sign "Fresh Bread"', 'A bakery with a sign in the window.'), 'refused_quote_dropped');
    assert.equal(reasonOf('a sign "Fresh Bread"', 'A bakery with a sign reading "fresh bread".'), 'refused_quote_dropped');
    assert.equal(reasonOf('a sign "Fresh Bread"', 'A bakery with a sign reading Fresh Bread.'), 'refused_quote_dropped');
    assert.equal(reasonOf('海报上写着“你好”', '海报上写着“Hello”，写实摄影。'), 'refused_quote_dropped');
  });

  it('refuses quoted text the user did not ask for, unless its words were in the prompt', () => {
    assert.equal(reasonOf('a coffee shop', 'A coffee shop with a sign reading "Java Joe".'), 'refused_quote_added');
    assert.equal(reasonOf('a shop sign saying open', 'A shop with a neon sign reading "OPEN".'), 'ok');
    assert.equal(reasonOf('change hello to goodbye', 'Replace "hello" to "goodbye"'), 'ok');
  });

  it('refuses an answer instead of a prompt', () => {
    const original = 'a cat';
    for (const rewrite of [
      'Sure! A fluffy cat on a sofa.',
      "Here's a rewritten prompt: a fluffy cat.",
      'Here is the prompt: a cat.',
      "I'm sorry, but I can't help with that.",
      'As an AI language model, I cannot create images.',
      'A cat. Unfortunately I cannot assist with more detail.',
    ]) {
      assert.equal(reasonOf(original, rewrite), 'refused_answer', rewrite);
    }
    assert.equal(reasonOf('一只猫', '好的，这是改写后的提示词：一只猫。'), 'refused_answer');
    assert.equal(reasonOf('一只猫', '抱歉，我无法完成这个请求。'), 'refused_answer');
  });

  it('refuses a question', () => {
    assert.equal(reasonOf('a cat', 'What kind of cat would you like?'), 'refused_question');
    assert.equal(reasonOf('一只猫', '你想要什么样的猫？'), 'refused_question');
  });

  it('refuses the wrong language', () => {
    assert.equal(reasonOf('一只在雪地里的红狐狸', 'A red fox standing in deep snow, soft morning light.'), 'refused_language');
    assert.equal(reasonOf('a red fox in the snow', '一只红狐狸站在厚厚的雪地里，清晨柔和的光线。'), 'refused_language');
    assert.equal(reasonOf('a poster reading 「你好世界」', 'A minimalist poster with the words 「你好世界」 in black brush strokes.'), 'ok');
  });

  it('refuses empty and far too long rewrites', () => {
    assert.equal(reasonOf('a cat', '   '), 'refused_empty');
    assert.equal(reasonOf('a cat', Array.from({ length: 301 }, () => 'cat').join(' ')), 'refused_too_long');
    assert.equal(reasonOf('a cat', 'a'.repeat(2001)), 'refused_too_long');
    assert.equal(reasonOf('一只猫', '猫'.repeat(301)), 'refused_too_long');
  });
});

describe('cleanRewrite', () => {
  it('removes reasoning blocks, fences, labels and wrapping quotes', () => {
    assert.equal(cleanRewrite('<think>\nThe user wants…\n</think>\n\nA cat on a sofa.'), 'A cat on a sofa.');
    assert.equal(cleanRewrite('```\nA cat on a sofa.\n```'), 'A cat on a sofa.');
    assert.equal(cleanRewrite('Rewritten prompt: A cat on a sofa.'), 'A cat on a sofa.');
    assert.equal(cleanRewrite('"A cat on a sofa."'), 'A cat on a sofa.');
    assert.equal(cleanRewrite('<think>never closed'), '');
  });

  it('collapses whitespace outside quotes only', () => {
    assert.equal(cleanRewrite('A sign\n\nreading "OPEN   NOW"  in red.'), 'A sign reading "OPEN   NOW" in red.');
    assert.equal(cleanRewrite('"OPEN" sign and "CLOSED" sign'), '"OPEN" sign and "CLOSED" sign');
  });
});
