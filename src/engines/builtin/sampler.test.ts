import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeSigmas, eulerStep, shiftMu, guide, QWEN_IMAGE_SCHEDULE } from './sampler.ts';

test('μ is 0.5 at 256 image tokens and 0.9 at 8192', () => {
  assert.ok(Math.abs(shiftMu(256, QWEN_IMAGE_SCHEDULE) - 0.5) < 1e-12);
  assert.ok(Math.abs(shiftMu(8192, QWEN_IMAGE_SCHEDULE) - 0.9) < 1e-12);
});

test('schedule for 4 steps at 4096 tokens matches values computed by hand from the formula', () => {
  // σ = linspace(1, 1/4, 4) → e^μ/(e^μ + 1/σ − 1) → stretched so the last is 0.02 → append 0.
  const expected = [1.0, 0.766709455899, 0.455613800905, 0.02, 0];
  const got = computeSigmas(4, 4096);
  expected.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) < 1e-9, `σ[${i}] = ${got[i]} ≠ ${v}`));
});

test('schedule for 20 steps at 192 tokens: starts at 1, decreasing, ends 0.02 then 0', () => {
  const s = computeSigmas(20, 192);
  assert.equal(s.length, 21);
  assert.ok(Math.abs(s[1]! - 0.966958215695) < 1e-9);
  assert.ok(Math.abs(s[18]! - 0.099641222366) < 1e-9);
  assert.ok(Math.abs(s[19]! - 0.02) < 1e-12);
  assert.equal(s[20], 0);
  for (let i = 1; i < s.length; i++) assert.ok(s[i]! < s[i - 1]!);
});

test('one step is [1, 0]', () => {
  assert.deepEqual(Array.from(computeSigmas(1, 256)), [1, 0]);
});

test('Euler step moves by (σ_next − σ)·v', () => {
  const x = Float32Array.from([1, 2]);
  eulerStep(x, Float32Array.from([0.5, -1]), 0.8, 0.6);
  assert.ok(Math.abs(x[0]! - 0.9) < 1e-6 && Math.abs(x[1]! - 2.2) < 1e-6);
});

test('guidance without a negative prompt: v0 + s·(cond − v0), rescaled per token to the norm of cond', () => {
  const cond = Float32Array.from([3, 4, 0, 1]); // token norms 5 and 1
  const uncond = Float32Array.from([1, 0, 0, 0]);
  const out = guide(cond, uncond, null, 4, 4, 2, new Float32Array(4));
  // token 0: comb = (1+4·2, 0+4·4) = (9, 16), scaled to norm 5
  const n0 = Math.hypot(9, 16);
  assert.ok(Math.abs(out[0]! - (9 * 5) / n0) < 1e-5 && Math.abs(out[1]! - (16 * 5) / n0) < 1e-5);
  // token 1: comb = (0, 4), scaled to norm 1 → (0, 1)
  assert.ok(Math.abs(out[2]!) < 1e-6 && Math.abs(out[3]! - 1) < 1e-6);
});

test('guidance with a negative prompt: its own term v0 + s·(cond − v0) − s_n·(neg − v0)', () => {
  const cond = Float32Array.from([1, 2]);
  const uncond = Float32Array.from([0, 1]);
  const neg = Float32Array.from([2, 1]);
  const out = guide(cond, uncond, neg, 4, 4, 2, new Float32Array(2));
  // comb = (0 + 4·1 − 4·2, 1 + 4·1 − 4·0) = (−4, 5), rescaled to ‖cond‖ = √5
  const k = Math.sqrt(5) / Math.hypot(4, 5);
  assert.ok(Math.abs(out[0]! + 4 * k) < 1e-6 && Math.abs(out[1]! - 5 * k) < 1e-6);
});

test('plain true CFG neg + s·(cond − neg) is the case s_n = s − 1', () => {
  const cond = Float32Array.from([0.3, -1.2, 2.0, 0.7]);
  const uncond = Float32Array.from([0.1, 0.4, -0.5, 0.2]);
  const neg = Float32Array.from([-0.6, 0.9, 1.1, -0.3]);
  const a = guide(cond, uncond, neg, 4, 3, 4, new Float32Array(4));
  const b = guide(cond, neg, null, 4, 0, 4, new Float32Array(4));
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `${a[i]} vs ${b[i]}`);
});
