/** The one conversion between USD, micro-USD and credits. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chargeFor, CREDITS_PER_USD, microsToCredits, microsToUsd, usdToCredits, usdToMicros, wholeCredits } from './money.ts';

test('USD to micro-USD rounds to the nearest whole micro-dollar, and back reads as the decimal', () => {
  assert.equal(usdToMicros(0.0455), 45_500);
  assert.equal(usdToMicros(0.0455 * 3), 136_500, '0.13650000000000001 in floating point');
  assert.equal(usdToMicros(0.1 + 0.2), 300_000);
  assert.equal(usdToMicros(0.0000004), 0);
  assert.equal(usdToMicros(0.0000006), 1);
  assert.equal(usdToMicros(-0.0455), -45_500, 'symmetric around zero (a refund)');
  assert.ok(Object.is(usdToMicros(-0.0000001), 0), 'no negative zero');
  assert.equal(microsToUsd(136_500), 0.1365);
  assert.equal(microsToUsd(0), 0);
  assert.throws(() => usdToMicros(Number.NaN), RangeError);
  assert.throws(() => usdToMicros(Number.POSITIVE_INFINITY), RangeError);
  assert.throws(() => usdToMicros(1e12), /too large/);
});

test('credits are whole: 2 per micro-USD at 2 000 000 credits per USD', () => {
  assert.equal(CREDITS_PER_USD, 2_000_000);
  assert.equal(microsToCredits(45_500), 91_000);
  assert.equal(usdToCredits(0.0455), 91_000, 'the seed: 91000 credits for $0.0455');
  assert.equal(usdToCredits(0.00000049), 0, 'a price below half a micro-USD charges nothing');
  assert.equal(microsToCredits(3, 1_500_000), 5, 'another rate that is not a multiple still gives whole credits');
  assert.equal(wholeCredits(91_000.0000004), 91_000);
  assert.throws(() => wholeCredits(Number.NaN), RangeError);
});

test('a job of n images is charged price × n once, in whole units', () => {
  assert.deepEqual(chargeFor(0.0455, 1), { usdMicros: 45_500, usd: 0.0455, credits: 91_000 });
  assert.deepEqual(chargeFor(0.0455, 3), { usdMicros: 136_500, usd: 0.1365, credits: 273_000 });
  assert.deepEqual(chargeFor(0, 4), { usdMicros: 0, usd: 0, credits: 0 });
  assert.deepEqual(chargeFor(0.01, 2, 1_000_000), { usdMicros: 20_000, usd: 0.02, credits: 20_000 });
});
