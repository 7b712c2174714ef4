// A throwaway TLS identity for a loopback listener: an in-memory ECDSA P-256 CA signs one serving certificate for 127.0.0.1, ::1 and localhost; only the CA certificate (public) leaves the process.
//
// client-go sends a bearer token over TLS only, so the kubernetes listener needs a certificate the
// agent trusts, and the operator should hold no per-pod key. The CA's private key is never
// exported (it signs the leaf and is dropped); the leaf key exists only as PEM in this process.
// @peculiar/x509 (and reflect-metadata, which it needs first) is loaded on first use: a sidecar
// without such a listener never pays its memory.
import { webcrypto } from 'node:crypto';
import type { webcrypto as wc } from 'node:crypto';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pem, serial } from './pem.ts';

/** The leaf lives as long as the process; a restart makes a new pair (a year is far beyond any pod). */
export const DEFAULT_LOOPBACK_VALIDITY_MS = 366 * 86_400_000;
/** Certificates start a little in the past: the agent container's clock may run behind. */
const BACKDATE_MS = 5 * 60_000;
export const LOOPBACK_DNS_NAMES: readonly string[] = ['localhost'];
export const LOOPBACK_IPS: readonly string[] = ['127.0.0.1', '::1'];

const EC: wc.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN: wc.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export interface LoopbackTls {
  /** PEM of the serving certificate followed by nothing else (the CA is the trust anchor, not sent). */
  readonly cert: Buffer;
  /** PKCS#8 PEM of the serving key: in memory only. */
  readonly key: Buffer;
  /** PEM of the CA certificate: what the agent's kubeconfig trusts. */
  readonly caPem: string;
}

type X509 = typeof import('@peculiar/x509');
let x509Module: Promise<X509> | undefined;

async function loadX509(): Promise<X509> {
  x509Module ??= (async (): Promise<X509> => {
    await import('reflect-metadata');
    const m = await import('@peculiar/x509');
    m.cryptoProvider.set(webcrypto);
    return m;
  })();
  return x509Module;
}

/** Makes a fresh CA + serving pair; `name` goes into both subjects so `openssl s_client` shows which listener it is. */
export async function generateLoopbackTls(name: string, validityMs: number = DEFAULT_LOOPBACK_VALIDITY_MS, now: Date = new Date()): Promise<LoopbackTls> {
  const x509 = await loadX509();
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const notAfter = new Date(now.getTime() + validityMs);
  // Not extractable: the CA key can sign this one leaf and is gone with this function's scope.
  const caKeys = await webcrypto.subtle.generateKey(EC, false, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: `CN=chaperone-sidecar ${name} loopback CA`, notBefore, notAfter, keys: caKeys, signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leafKeys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const names = [...LOOPBACK_DNS_NAMES.map((value) => ({ type: 'dns' as const, value })), ...LOOPBACK_IPS.map((value) => ({ type: 'ip' as const, value }))];
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(), subject: `CN=chaperone-sidecar ${name}`, issuer: ca.subject, notBefore, notAfter,
    publicKey: leafKeys.publicKey, signingKey: caKeys.privateKey, signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
      await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
    ],
  });
  const keyPem = pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey));
  return { cert: Buffer.from(`${leaf.toString('pem')}\n`), key: Buffer.from(keyPem), caPem: `${ca.toString('pem')}\n` };
}

/** Writes the CA certificate (public) for the agents: a temp file renamed into place, so a reader never sees half a PEM. */
export async function writeCaFile(path: string, caPem: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, caPem, { mode: 0o644 });
    // The umask may have narrowed the mode; agents run as other users and must read it.
    await chmod(tmp, 0o644);
    await rename(tmp, path);
  } catch (e) {
    throw new Error(`cannot write the listener CA certificate to ${path}: ${(e as Error).message}; mount a writable volume there (the webhook adds an emptyDir)`, { cause: e });
  }
}

/** One pair per listener per process: a config reload that restarts the listener keeps the CA the agents already trust. */
const issued = new Map<string, Promise<LoopbackTls>>();

/** The pair for this listener (made once per process), with its CA written to `caFile` (again on every call: the file may have been removed). */
export async function loopbackTlsFor(name: string, caFile: string): Promise<LoopbackTls> {
  const key = `${name}\0${caFile}`;
  let p = issued.get(key);
  if (p === undefined) {
    p = generateLoopbackTls(name);
    issued.set(key, p);
    void p.catch(() => issued.delete(key));
  }
  const tls = await p;
  await writeCaFile(caFile, tls.caPem);
  return tls;
}
