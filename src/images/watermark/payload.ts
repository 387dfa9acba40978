/**
 * Payload layout (64 message bits, most significant bit first):
 *
 *   bits  0..15  issuerId      (16 bits, operator configured, 0..65535)
 *   bits 16..47  generationId  (32 bits, derived from the request id)
 *   bits 48..63  CRC-16/CCITT-FALSE over the 6 payload bytes (poly 0x1021, init 0xFFFF)
 *
 * The CRC is what turns "the decoder produced some bits" into "this image carries our mark": a
 * random bit string passes it with probability 2^-16 per decode attempt (see docs/watermark.md).
 */
import type { WatermarkPayload } from '../../domain/ports.ts';
import { hashString32 } from './prng.ts';

export const ISSUER_ID_BITS = 16;
export const GENERATION_ID_BITS = 32;
/** Payload bits the caller chooses (issuer + generation). */
export const PAYLOAD_BITS = ISSUER_ID_BITS + GENERATION_ID_BITS;
export const CRC_BITS = 16;
/** Bits fed to the error-correcting code. */
export const MESSAGE_BITS = PAYLOAD_BITS + CRC_BITS;

const MAX_ISSUER_ID = 0xffff;
const MAX_GENERATION_ID = 0xffffffff;

/** CRC-16/CCITT-FALSE (check value 0x29B1 for "123456789"). */
export function crc16(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

function assertPayload(payload: WatermarkPayload): void {
  const { issuerId, generationId } = payload;
  if (!Number.isInteger(issuerId) || issuerId < 0 || issuerId > MAX_ISSUER_ID) {
    throw new RangeError(`watermark issuerId must be an integer in 0..${MAX_ISSUER_ID}, got ${issuerId}`);
  }
  if (!Number.isInteger(generationId) || generationId < 0 || generationId > MAX_GENERATION_ID) {
    throw new RangeError(`watermark generationId must be an integer in 0..${MAX_GENERATION_ID}, got ${generationId}`);
  }
}

function payloadBytes(payload: WatermarkPayload): Uint8Array {
  const { issuerId, generationId } = payload;
  return Uint8Array.of(
    issuerId >>> 8,
    issuerId & 0xff,
    generationId >>> 24,
    (generationId >>> 16) & 0xff,
    (generationId >>> 8) & 0xff,
    generationId & 0xff,
  );
}

function bytesToBits(bytes: Uint8Array): Uint8Array {
  const bits = new Uint8Array(bytes.length * 8);
  for (let i = 0; i < bits.length; i++) bits[i] = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
  return bits;
}

function bitsToBytes(bits: ArrayLike<number>, count: number): Uint8Array {
  const bytes = new Uint8Array(count);
  for (let i = 0; i < count * 8; i++) bytes[i >> 3]! |= (bits[i]! & 1) << (7 - (i & 7));
  return bytes;
}

/** The 48 payload bits alone (no CRC); what bit accuracy is measured on. */
export function payloadBits(payload: WatermarkPayload): Uint8Array {
  assertPayload(payload);
  return bytesToBits(payloadBytes(payload));
}

/** The 64 message bits: payload followed by its CRC-16. */
export function encodePayload(payload: WatermarkPayload): Uint8Array {
  assertPayload(payload);
  const bytes = payloadBytes(payload);
  const crc = crc16(bytes);
  const message = new Uint8Array(MESSAGE_BITS / 8);
  message.set(bytes);
  message[6] = crc >>> 8;
  message[7] = crc & 0xff;
  return bytesToBits(message);
}

/** Reads issuer and generation from the first 48 bits without checking anything. */
export function bitsToPayload(bits: ArrayLike<number>): WatermarkPayload {
  const bytes = bitsToBytes(bits, PAYLOAD_BITS / 8);
  return {
    issuerId: (bytes[0]! << 8) | bytes[1]!,
    generationId: ((bytes[2]! << 24) | (bytes[3]! << 16) | (bytes[4]! << 8) | bytes[5]!) >>> 0,
  };
}

/** The payload when the 64 message bits carry a valid CRC, otherwise null. */
export function decodePayload(bits: ArrayLike<number>): WatermarkPayload | null {
  if (bits.length < MESSAGE_BITS) return null;
  const message = bitsToBytes(bits, MESSAGE_BITS / 8);
  const expected = crc16(message.subarray(0, 6));
  const actual = (message[6]! << 8) | message[7]!;
  return expected === actual ? bitsToPayload(bits) : null;
}

/**
 * A 32-bit generation id from a request id (FNV-1a). Collisions are expected after ~65k
 * generations (birthday bound); the id narrows a lookup in the usage ledger, it is not a key.
 */
export function generationIdFromRequestId(requestId: string): number {
  return hashString32(requestId);
}
