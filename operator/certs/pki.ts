// Webhook PKI: an ECDSA P-256 CA and serving certificates through WebCrypto + @peculiar/x509, and what a PEM pair says about itself.
import 'reflect-metadata';
import { X509Certificate as NodeX509, createPrivateKey, webcrypto } from 'node:crypto';
import type { webcrypto as wc } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { pem, serial } from '../../sidecar/tls/pem.ts';

const EC: wc.EcKeyImportParams & wc.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN: wc.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 86_400_000;
/** Certificates start a little in the past so an API server whose clock runs behind still accepts them. */
const BACKDATE_MS = 5 * 60_000;

x509.cryptoProvider.set(webcrypto);

/** PEMs of one certificate and its private key (PKCS#8). */
export interface KeyPairPem {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CaOptions {
  readonly commonName: string;
  readonly validityMs: number;
  readonly now?: Date;
}

export interface ServingOptions {
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  readonly validityMs: number;
  readonly now?: Date;
}

function window(now: Date | undefined, validityMs: number): { notBefore: Date; notAfter: Date } {
  const t = (now ?? new Date()).getTime();
  return { notBefore: new Date(t - BACKDATE_MS), notAfter: new Date(t + validityMs) };
}

async function generate(): Promise<wc.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']));
}

async function exportKey(key: wc.CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key));
}

function derOf(pemText: string): Buffer {
  return Buffer.from(pemText.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** A self-signed CA that may sign leaf certificates only (pathLength 0). */
export async function createCa(o: CaOptions): Promise<KeyPairPem> {
  const keys = await generate();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${o.commonName}`,
    ...window(o.now, o.validityMs),
    keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKey(keys.privateKey) };
}

/** A serving certificate for the webhook's Service names and IPs, signed by `ca`. */
export async function issueServing(ca: KeyPairPem, o: ServingOptions): Promise<KeyPairPem> {
  if (o.dnsNames.length === 0 && o.ips.length === 0) throw new Error('webhook serving certificate needs at least one DNS name or IP address (the API server checks the SAN, not the CN)');
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', derOf(ca.keyPem), EC, false, ['sign']);
  const keys = await generate();
  const names = [...o.dnsNames.map((value) => ({ type: 'dns' as const, value })), ...o.ips.map((value) => ({ type: 'ip' as const, value }))];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${o.commonName}`,
    issuer: caCert.subject,
    ...window(o.now, o.validityMs),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKey(keys.privateKey) };
}

/** What the rotation plan needs to know about a certificate (node:crypto's parser: cheap, no reflect-metadata). */
export interface CertFacts {
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  readonly fingerprint256: string;
}

/** Parses the first certificate of a PEM; throws with what is wrong. */
export function certFacts(certPem: string): CertFacts {
  const c = new NodeX509(certPem);
  const sans = (c.subjectAltName ?? '').split(/,\s*/).filter((s) => s !== '');
  return {
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    dnsNames: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    ips: sans.filter((s) => s.startsWith('IP Address:')).map((s) => s.slice(11)),
    fingerprint256: c.fingerprint256,
  };
}

/** True when `leaf` is signed by `caPem` and `keyPem` is leaf's private key. */
export function pairMatches(leaf: KeyPairPem, caPem: string): boolean {
  try {
    const cert = new NodeX509(leaf.certPem);
    const ca = new NodeX509(caPem);
    return cert.checkPrivateKey(createPrivateKey(leaf.keyPem)) && cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** True when `keyPem` is the private key of `certPem`. */
export function keyMatches(pair: KeyPairPem): boolean {
  try {
    return new NodeX509(pair.certPem).checkPrivateKey(createPrivateKey(pair.keyPem));
  } catch {
    return false;
  }
}

/** Splits a PEM bundle into its certificates (each ending in a newline). */
export function splitPemBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)?.map((p) => `${p}\n`) ?? [];
}

export const MS_PER_DAY = DAY_MS;
