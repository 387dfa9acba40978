import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codedLength, convolutionalEncode, viterbiDecode } from './convolutional-code.ts';
import { crc16, decodePayload, encodePayload, generationIdFromRequestId, MESSAGE_BITS, PAYLOAD_BITS, payloadBits } from './payload.ts';
import { createRandom } from './prng.ts';

test('CRC-16/CCITT-FALSE matches its published check value', () => {
  assert.equal(crc16(new TextEncoder().encode('123456789')), 0x29b1);
});

test('payload round trip, including the extremes of both fields', () => {
  for (const payload of [
    { issuerId: 0, generationId: 0 },
    { issuerId: 65535, generationId: 4294967295 },
    { issuerId: 1, generationId: 2147483648 },
    { issuerId: 4242, generationId: 123456789 },
  ]) {
    const bits = encodePayload(payload);
    assert.equal(bits.length, MESSAGE_BITS);
    assert.deepEqual(decodePayload(bits), payload);
    assert.deepEqual(payloadBits(payload), bits.subarray(0, PAYLOAD_BITS));
  }
});

test('the CRC rejects every single-bit and two-bit corruption', () => {
  const bits = encodePayload({ issuerId: 777, generationId: 31337 });
  for (let i = 0; i < MESSAGE_BITS; i++) {
    const one = bits.slice();
    one[i] ^= 1;
    assert.equal(decodePayload(one), null, `bit ${i}`);
    for (let j = i + 1; j < MESSAGE_BITS; j++) {
      const two = one.slice();
      two[j] ^= 1;
      assert.equal(decodePayload(two), null, `bits ${i}, ${j}`);
    }
  }
});

test('out-of-range payloads are refused', () => {
  assert.throws(() => encodePayload({ issuerId: 65536, generationId: 0 }), RangeError);
  assert.throws(() => encodePayload({ issuerId: -1, generationId: 0 }), RangeError);
  assert.throws(() => encodePayload({ issuerId: 0, generationId: 2 ** 32 }), RangeError);
  assert.throws(() => encodePayload({ issuerId: 1.5, generationId: 0 }), RangeError);
});

test('generation ids from request ids are stable unsigned 32-bit integers', () => {
  const id = generationIdFromRequestId('req_01HZXYZ');
  assert.equal(id, generationIdFromRequestId('req_01HZXYZ'));
  assert.notEqual(id, generationIdFromRequestId('req_01HZXZZ'));
  assert.ok(Number.isInteger(id) && id >= 0 && id < 2 ** 32);
});

test('convolutional code: clean round trip and length', () => {
  const message = encodePayload({ issuerId: 12, generationId: 3456 });
  const coded = convolutionalEncode(message);
  assert.equal(coded.length, codedLength(MESSAGE_BITS));
  const soft = Array.from(coded, (b) => (b ? 1 : -1));
  assert.deepEqual(viterbiDecode(soft, MESSAGE_BITS), message);
});

test('convolutional code corrects scattered hard errors', () => {
  const message = encodePayload({ issuerId: 999, generationId: 0xdeadbeef });
  const coded = convolutionalEncode(message);
  const random = createRandom(5);
  for (let trial = 0; trial < 20; trial++) {
    const soft: number[] = Array.from(coded, (b) => (b ? 1 : -1));
    // 12 errors in 210 coded bits (5.7 %), at least 8 positions apart: within the code's reach (free distance 15).
    const start = Math.floor(random() * 8);
    for (let k = 0; k < 12; k++) soft[start + k * 17] = -soft[start + k * 17]!;
    assert.deepEqual(viterbiDecode(soft, MESSAGE_BITS), message, `trial ${trial}`);
  }
});

test('convolutional code with soft decisions survives a 13 % raw bit-error channel', () => {
  const message = encodePayload({ issuerId: 31, generationId: 271828 });
  const coded = convolutionalEncode(message);
  const random = createRandom(11);
  // ±1 plus Gaussian noise σ = 0.9: raw coded-bit error rate Q(1/0.9) ≈ 13 %; Eb/N0 = 3·(64/70)/(2σ²) ≈ 2.3 dB.
  const sigma = 0.9;
  let failures = 0;
  let rawErrors = 0;
  for (let trial = 0; trial < 50; trial++) {
    const soft = Array.from(coded, (b) => {
      const gauss = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      const v = (b ? 1 : -1) + sigma * gauss;
      if ((v > 0 ? 1 : 0) !== b) rawErrors++;
      return v;
    });
    const decoded = viterbiDecode(soft, MESSAGE_BITS);
    if (decodePayload(decoded) === null) failures++;
  }
  assert.ok(rawErrors / (50 * coded.length) > 0.1, 'channel is really noisy');
  assert.ok(failures <= 2, `${failures}/50 messages lost`);
});
