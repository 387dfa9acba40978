import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waterFill } from './informed-coding.ts';
import { createRandom } from './prng.ts';

test('water-filling keeps the energy and raises the worst margin', () => {
  const random = createRandom(3);
  const bits = 210;
  const mark = Float64Array.from({ length: bits }, () => 1 + random());
  const host = Float64Array.from({ length: bits }, () => 3 * (random() - 0.5));
  const cells = Float64Array.from({ length: bits }, (_, q) => (q % 3 === 0 ? 4 : 3));
  const gains = waterFill(mark, host, cells, 0.7, 1.5);
  let energy = 0;
  let budget = 0;
  let worstPlain = Infinity;
  let worstInformed = Infinity;
  for (let q = 0; q < bits; q++) {
    assert.ok(gains[q]! >= 0.7 - 1e-9 && gains[q]! <= 1.5 + 1e-9);
    energy += cells[q]! * gains[q]! ** 2;
    budget += cells[q]!;
    worstPlain = Math.min(worstPlain, mark[q]! + host[q]!);
    worstInformed = Math.min(worstInformed, gains[q]! * mark[q]! + host[q]!);
  }
  assert.ok(Math.abs(energy - budget) / budget < 1e-6, `energy ${energy} vs ${budget}`);
  assert.ok(worstInformed > worstPlain, `worst margin ${worstInformed} vs ${worstPlain}`);
});

test('water-filling gives everyone 1 when the picture does not interfere', () => {
  const gains = waterFill(Float64Array.from([1, 1, 1]), Float64Array.from([0, 0, 0]), Float64Array.from([3, 3, 3]), 0.7, 1.5);
  for (const g of gains) assert.ok(Math.abs(g - 1) < 1e-6);
});
