/** PEM settings: a value is either the PEM text itself or the path of a file holding it. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export class ProvenanceConfigError extends Error {
  override name = 'ProvenanceConfigError';
}

/** Inline PEM (starts with -----BEGIN) as it is; anything else is a file path, relative to cwd. */
export function readPemSetting(name: string, value: string, cwd: string = process.cwd()): string {
  if (value.trimStart().startsWith('-----BEGIN')) return value;
  const file = path.resolve(cwd, value);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProvenanceConfigError(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a PEM file path or the PEM text`);
  }
}

/** Every CERTIFICATE block of a PEM bundle, in order, parsed. */
export function parseCertificates(name: string, pem: string): crypto.X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ProvenanceConfigError(`${name} holds no PEM CERTIFICATE block`);
  return blocks.map((block, i) => {
    try {
      return new crypto.X509Certificate(block);
    } catch (err) {
      throw new ProvenanceConfigError(`${name}: certificate ${i + 1} does not parse (${(err as Error).message})`);
    }
  });
}
