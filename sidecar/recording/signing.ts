// Ed25519 checkpoint signatures: key ids, the exact signed message, sign and verify (node:crypto only).
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/** Key id: first 16 hex digits of SHA-256 over the public key's SPKI DER (`openssl pkey -pubin -outform DER | sha256sum`). */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

/**
 * The bytes a checkpoint signs (ASCII, no trailing newline). `prev` is the hash of the line before
 * the checkpoint, so the signature covers every line of the stream up to it through the chain.
 */
export function checkpointMessage(stream: string, seq: number, time: string, prev: string): Buffer {
  return Buffer.from(`chaperone/rec/v1 checkpoint ${stream} ${seq} ${time} ${prev}`, 'utf8');
}

export function signCheckpoint(privateKey: KeyObject, message: Buffer): string {
  return sign(null, message, privateKey).toString('hex');
}

/** True when `sigHex` is a valid Ed25519 signature of `message` by `publicKey`. */
export function verifyCheckpoint(publicKey: KeyObject, message: Buffer, sigHex: string): boolean {
  if (!/^[0-9a-f]{128}$/.test(sigHex)) return false;
  try {
    return verify(null, message, publicKey, Buffer.from(sigHex, 'hex'));
  } catch {
    return false;
  }
}

/** Loads an Ed25519 key from PEM text (private or public); refuses other key types. */
export function loadKey(pem: string, kind: 'private' | 'public'): KeyObject {
  const key = kind === 'private' ? createPrivateKey(pem) : createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`recording signing key must be Ed25519, got ${key.asymmetricKeyType ?? 'unknown'}; generate one with: openssl genpkey -algorithm ed25519`);
  }
  return key;
}

/** A public-key table by key id, for the verifier. */
export function keyTable(keys: readonly KeyObject[]): ReadonlyMap<string, KeyObject> {
  return new Map(keys.map((k) => [keyId(k), k.type === 'private' ? createPublicKey(k) : k]));
}
