/**
 * A development certificate chain for C2PA signing, made with node:crypto alone (Node can parse X.509 but
 * not issue it, so the DER is written here; no openssl CLI needed on a fresh machine).
 *
 * C2PA (spec §14.5, and c2pa-rs's certificate profile check) refuses a self-signed signing certificate, so
 * this makes two: a private root CA (the trust anchor a verifier is given) and an end-entity certificate
 * issued by it that signs manifests. Both are ECDSA P-256 / SHA-256 (ES256), X.509 v3, with the extensions
 * the profile requires: the end entity has keyUsage digitalSignature (critical), an extendedKeyUsage
 * (emailProtection + documentSigning; "any" is refused), basicConstraints CA:false, subject and authority key
 * identifiers; the root has CA:true, keyCertSign + cRLSign, and both key identifiers.
 */
import crypto from 'node:crypto';

// ---------------------------------------------------------------- DER (ITU-T X.690), only what X.509 needs
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bitString = (b: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), b]));
const boolTrue = (): Buffer => tlv(0x01, Buffer.from([0xff]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));

function unsignedInteger(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const trimmed = b.subarray(i);
  return tlv(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'latin1')) : tlv(0x18, Buffer.from(iso, 'latin1'));
}

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  documentSigning: '1.3.6.1.5.5.7.3.36',
};

function name(commonName: string, organization: string): Buffer {
  return seq(set(seq(oid(OID.organization), utf8(organization))), set(seq(oid(OID.commonName), utf8(commonName))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), boolTrue(), octets(value)) : seq(oid(id), octets(value));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spkiDer: Buffer): Buffer {
  const publicKey = crypto.createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  const raw = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(raw.x!, 'base64url'), Buffer.from(raw.y!, 'base64url')]);
  return crypto.createHash('sha1').update(point).digest();
}

interface IssueOptions {
  subject: Buffer;
  issuer: Buffer;
  subjectKey: crypto.KeyObject;
  issuerKey: crypto.KeyObject;
  issuerKeyId: Buffer;
  isCa: boolean;
  notBefore: Date;
  notAfter: Date;
}

function issue(o: IssueOptions): { der: Buffer; keyId: Buffer } {
  const spki = crypto.createPublicKey(o.subjectKey).export({ format: 'der', type: 'spki' });
  const keyId = keyIdentifier(spki);
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const extensions = o.isCa
    ? [
        extension(OID.basicConstraints, true, seq(boolTrue())),
        // keyCertSign (bit 5) + cRLSign (bit 6): 0b0000_0110 with one unused bit.
        extension(OID.keyUsage, true, bitString(Buffer.from([0x06]), 1)),
        extension(OID.subjectKeyIdentifier, false, octets(keyId)),
        extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, o.issuerKeyId))),
      ]
    : [
        extension(OID.basicConstraints, true, seq()),
        // digitalSignature (bit 0): 0b1000_0000 with seven unused bits.
        extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
        extension(OID.extKeyUsage, false, seq(oid(OID.emailProtection), oid(OID.documentSigning))),
        extension(OID.subjectKeyIdentifier, false, octets(keyId)),
        extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, o.issuerKeyId))),
      ];
  const serial = crypto.randomBytes(16);
  serial[0]! &= 0x7f; // positive, at most 20 octets (RFC 5280 §4.1.2.2)
  const tbs = seq(
    explicit(0, unsignedInteger(Buffer.from([2]))), // v3
    unsignedInteger(serial),
    algorithm,
    o.issuer,
    seq(time(o.notBefore), time(o.notAfter)),
    o.subject,
    spki,
    explicit(3, seq(...extensions)),
  );
  const signature = crypto.sign('sha256', tbs, { key: o.issuerKey, dsaEncoding: 'der' });
  return { der: seq(tbs, algorithm, bitString(signature)), keyId };
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export interface DevCertificateChain {
  /** The end-entity certificate alone: what C2PA_CERT holds (a verifier is given the root separately). */
  certPem: string;
  /** The end entity's private key, PKCS#8: what C2PA_KEY holds. */
  keyPem: string;
  /** The root CA alone: what a verifier's C2PA_TRUST_ANCHORS holds. */
  caPem: string;
}

export interface DevCertificateOptions {
  commonName?: string;
  organization?: string;
  validDays?: number;
  now?: Date;
}

/** A fresh root CA and a signing certificate issued by it (ES256). For development and tests, not production. */
export function createDevCertificateChain(options: DevCertificateOptions = {}): DevCertificateChain {
  const organization = options.organization ?? 'qwen-image-server development';
  const commonName = options.commonName ?? 'qwen-image-server C2PA signer (development)';
  const now = options.now ?? new Date();
  // An hour of slack before now: clocks of the verifying machine may lag.
  const notBefore = new Date(now.getTime() - 3600_000);
  const notAfter = new Date(now.getTime() + (options.validDays ?? 365) * 86_400_000);
  const ca = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caName = name(`${organization} root CA`, organization);
  const caSpki = crypto.createPublicKey(ca.privateKey).export({ format: 'der', type: 'spki' });
  const caKeyId = keyIdentifier(caSpki);
  const caCert = issue({ subject: caName, issuer: caName, subjectKey: ca.privateKey, issuerKey: ca.privateKey, issuerKeyId: caKeyId, isCa: true, notBefore, notAfter });
  const leafCert = issue({
    subject: name(commonName, organization),
    issuer: caName,
    subjectKey: leaf.privateKey,
    issuerKey: ca.privateKey,
    issuerKeyId: caKeyId,
    isCa: false,
    notBefore,
    notAfter,
  });
  return {
    certPem: pem('CERTIFICATE', leafCert.der),
    keyPem: leaf.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    caPem: pem('CERTIFICATE', caCert.der),
  };
}
