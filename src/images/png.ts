/**
 * PNG encoding with the generation's metadata in text chunks, and reading those chunks back.
 * sharp encodes the pixels; the chunks are spliced in after IHDR (tEXt for Latin-1 values, iTXt for
 * UTF-8 ones such as most prompts; XMP goes in the iTXt keyword "XML:com.adobe.xmp" that exiftool
 * and Adobe tools read).
 */
import sharp from 'sharp';
import { crc32 } from 'node:zlib';
import type { RawImage } from '../domain/types.ts';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 crc). */
const AFTER_IHDR = 8 + 25;

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(Buffer.from(type, 'latin1'))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

function isLatin1Printable(s: string): boolean {
  // tEXt allows Latin-1 and newline; anything else goes to iTXt as UTF-8.
  return /^[\x20-\x7e\n\xa0-\xff]*$/.test(s);
}

export function textChunk(keyword: string, text: string): Buffer {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword)) throw new Error(`invalid PNG text keyword "${keyword}"`);
  if (isLatin1Printable(text)) {
    return chunk('tEXt', Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text, 'latin1')]));
  }
  // iTXt: keyword \0 compression-flag compression-method language \0 translated-keyword \0 text
  return chunk(
    'iTXt',
    Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(text, 'utf8')]),
  );
}

/** Inserts extra chunks right after IHDR. */
export function insertChunks(png: Buffer, chunks: Buffer[]): Buffer {
  if (!png.subarray(0, 8).equals(PNG_SIGNATURE) || png.toString('latin1', 12, 16) !== 'IHDR') {
    throw new Error('not a PNG produced by the encoder');
  }
  return Buffer.concat([png.subarray(0, AFTER_IHDR), ...chunks, png.subarray(AFTER_IHDR)]);
}

export interface PngTextEntry {
  keyword: string;
  text: string;
}

export async function encodePng(image: RawImage, text: PngTextEntry[], options: { compressionLevel?: number } = {}): Promise<Buffer> {
  const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    // Level 3 without adaptive filtering: measured about 3x faster than the default at 1024x768,
    // and still lossless; bytes on disk matter less than the request's latency here.
    .png({ compressionLevel: options.compressionLevel ?? 3, adaptiveFiltering: false })
    .toBuffer();
  return insertChunks(png, text.map((t) => textChunk(t.keyword, t.text)));
}

/** Reads tEXt and uncompressed iTXt chunks (for tests, the CLI and the watermark detector). */
export function readPngText(png: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let offset = 8;
  while (offset + 8 <= png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'tEXt') {
      const nul = data.indexOf(0);
      out[data.toString('latin1', 0, nul)] = data.toString('latin1', nul + 1);
    } else if (type === 'iTXt') {
      const nul = data.indexOf(0);
      const keyword = data.toString('latin1', 0, nul);
      const compressed = data[nul + 1] === 1;
      let p = nul + 3;
      p = data.indexOf(0, p) + 1; // language tag
      p = data.indexOf(0, p) + 1; // translated keyword
      if (!compressed) out[keyword] = data.toString('utf8', p);
    } else if (type === 'IEND') {
      break;
    }
    offset += 12 + length;
  }
  return out;
}

/** IPTC digital source type for media made by a trained model (IPTC NewsCodes). */
export const TRAINED_ALGORITHMIC_MEDIA = 'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia';
