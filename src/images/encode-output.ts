/**
 * The generated image as a file: PNG (the seed's format), JPEG or WebP (OpenAI's output_format),
 * with the same facts in each. PNG carries them as text chunks (what the seed's clients and the
 * tests read) plus an XMP packet; JPEG and WebP carry the XMP packet (APP1 / the XMP chunk), which
 * holds every fact as UTF-8, and EXIF Software. The IPTC DigitalSourceType "trainedAlgorithmicMedia"
 * is in every format. The invisible watermark is in the pixels already; lossy coding keeps it (its
 * measured bit accuracy per format is in docs/watermark.md).
 */
import sharp from 'sharp';
import type { RawImage } from '../domain/types.ts';
import { encodePng, TRAINED_ALGORITHMIC_MEDIA, type PngTextEntry } from './png.ts';

export type OutputFormat = 'png' | 'jpeg' | 'webp';

/** What the file says about itself. */
export interface ImageFacts {
  software: string;
  model: string;
  /** The prompt drawn. */
  prompt: string;
  /** The caller's prompt, when the drawn one was rewritten. */
  originalPrompt?: string;
  negativePrompt: string;
  seed: number;
  width: number;
  height: number;
  engine: string;
  watermarked: boolean;
}

export interface OutputOptions {
  format: OutputFormat;
  /** jpeg/webp quality 0..100 on OpenAI's scale (100 = best); null or absent: 100. */
  compression?: number | null;
}

export interface EncodedOutput {
  data: Buffer;
  contentType: string;
  /** File name extension without the dot. */
  extension: string;
}

const CONTENT_TYPES: Record<OutputFormat, { contentType: string; extension: string }> = {
  png: { contentType: 'image/png', extension: 'png' },
  jpeg: { contentType: 'image/jpeg', extension: 'jpg' },
  webp: { contentType: 'image/webp', extension: 'webp' },
};

/** Namespace of the facts XMP has no standard property for. */
export const QIS_XMP_NS = 'https://github.com/qwen-image-server/ns/1.0/';

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** An XMP packet with every fact: the IPTC AI-generated mark, the tool, the prompt (dc:description) and ours. */
export function factsXmp(facts: ImageFacts): string {
  const attr = (name: string, value: string | number) => ` ${name}="${xmlEscape(String(value))}"`;
  return [
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>',
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
    '<rdf:Description rdf:about=""',
    ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"',
    ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
    ' xmlns:dc="http://purl.org/dc/elements/1.1/"',
    ` xmlns:qis="${QIS_XMP_NS}"`,
    attr('Iptc4xmpExt:DigitalSourceType', TRAINED_ALGORITHMIC_MEDIA),
    attr('xmp:CreatorTool', facts.software),
    attr('qis:Model', facts.model),
    attr('qis:Seed', facts.seed),
    attr('qis:Size', `${facts.width}x${facts.height}`),
    attr('qis:Engine', facts.engine),
    attr('qis:Watermark', facts.watermarked ? 'invisible' : 'none'),
    ...(facts.negativePrompt ? [attr('qis:NegativePrompt', facts.negativePrompt)] : []),
    ...(facts.originalPrompt !== undefined ? [attr('qis:OriginalPrompt', facts.originalPrompt)] : []),
    '>',
    `<dc:description><rdf:Alt><rdf:li xml:lang="x-default">${xmlEscape(facts.prompt)}</rdf:li></rdf:Alt></dc:description>`,
    '</rdf:Description>',
    '</rdf:RDF>',
    '</x:xmpmeta>',
    '<?xpacket end="r"?>',
  ].join('');
}

/** The PNG text chunks (unchanged from before output formats existed) and the same XMP packet. */
function pngText(facts: ImageFacts): PngTextEntry[] {
  return [
    { keyword: 'Software', text: facts.software },
    { keyword: 'Model', text: facts.model },
    { keyword: 'Prompt', text: facts.prompt },
    ...(facts.originalPrompt !== undefined ? [{ keyword: 'Original prompt', text: facts.originalPrompt }] : []),
    ...(facts.negativePrompt ? [{ keyword: 'Negative prompt', text: facts.negativePrompt }] : []),
    { keyword: 'Seed', text: String(facts.seed) },
    { keyword: 'Size', text: `${facts.width}x${facts.height}` },
    { keyword: 'Engine', text: facts.engine },
    { keyword: 'Watermark', text: facts.watermarked ? 'invisible' : 'none' },
    { keyword: 'DigitalSourceType', text: TRAINED_ALGORITHMIC_MEDIA },
    { keyword: 'XML:com.adobe.xmp', text: factsXmp(facts) },
  ];
}

/** OpenAI's 0..100 (100 = best) to libvips' quality 1..100. */
function lossyQuality(compression: number | null | undefined): number {
  return Math.max(1, Math.min(100, Math.round(compression ?? 100)));
}

export async function encodeOutput(image: RawImage, facts: ImageFacts | null, options: OutputOptions): Promise<EncodedOutput> {
  const { contentType, extension } = CONTENT_TYPES[options.format];
  if (options.format === 'png') {
    return { data: await encodePng(image, facts ? pngText(facts) : []), contentType, extension };
  }
  let pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  if (facts) pipeline = pipeline.withXmp(factsXmp(facts)).withExif({ IFD0: { Software: facts.software } });
  const quality = lossyQuality(options.compression);
  // 4:4:4 at the top of the scale: chroma subsampling blurs the colour edges a generated image is judged by.
  pipeline = options.format === 'jpeg' ? pipeline.jpeg({ quality, mozjpeg: false, chromaSubsampling: quality >= 90 ? '4:4:4' : '4:2:0' }) : pipeline.webp({ quality });
  return { data: await pipeline.toBuffer(), contentType, extension };
}

/** Reads the qis:/dc facts back from a JPEG or WebP (tests, the CLI): attribute name → value, plus `description`. */
export async function readOutputXmp(file: Buffer): Promise<Record<string, string> | null> {
  const meta = await sharp(file).metadata();
  if (!meta.xmp) return null;
  const xml = meta.xmp.toString('utf8');
  const out: Record<string, string> = {};
  const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  for (const m of xml.matchAll(/\s([A-Za-z0-9]+:[A-Za-z]+)="([^"]*)"/g)) out[m[1]!] = unescape(m[2]!);
  const desc = /<rdf:li[^>]*>([^<]*)<\/rdf:li>/.exec(xml);
  if (desc) out.description = unescape(desc[1]!);
  return out;
}

/**
 * A streaming caller's partial image: an engine preview (the denoiser's estimate at its own small
 * resolution) scaled to the requested size, so a client can show it where the final image will go,
 * in the requested format. No metadata: it is not the image that was charged for.
 */
export async function encodePartialImage(preview: RawImage, width: number, height: number, options: OutputOptions): Promise<EncodedOutput> {
  const { data, info } = await sharp(preview.data, { raw: { width: preview.width, height: preview.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return encodeOutput({ width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }, null, options);
}
