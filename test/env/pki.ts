// Test PKI through the openssl CLI: a CA, leaf certs (server and/or client, SANs, CN/O), signing keys — all synthesized per run.
import { execFile } from 'node:child_process';
import { generateKeyPair } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Test certs live for a day: long enough for any run, useless if one ever leaks. */
export const DEFAULT_CERT_DAYS = 1;

export interface KeyPairFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface LeafOptions {
  /** File stem inside the CA's directory: <name>.crt / <name>.key */
  readonly name: string;
  readonly commonName: string;
  /** Subject O= entries; Kubernetes reads them as the user's groups. */
  readonly organizations?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  readonly usage: 'server' | 'client' | 'both';
}

export interface Ca extends KeyPairFiles {
  readonly dir: string;
  issue(o: LeafOptions): Promise<KeyPairFiles>;
}

const SAFE_SUBJECT_VALUE = /^[A-Za-z0-9 ._:@-]+$/;

function subject(cn: string, orgs: readonly string[] = []): string {
  for (const v of [cn, ...orgs]) {
    if (!SAFE_SUBJECT_VALUE.test(v)) throw new Error(`pki: subject value ${JSON.stringify(v)} has characters openssl -subj would misread`);
  }
  return `/CN=${cn}${orgs.map((o) => `/O=${o}`).join('')}`;
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args, { maxBuffer: 1 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.slice(0, 3).join(' ')} … failed: ${e.stderr ?? e.message}. Is the openssl CLI (Debian 'openssl') installed?`);
  }
}

async function readPair(certFile: string, keyFile: string): Promise<KeyPairFiles> {
  const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, certPem, keyPem };
}

// `req -x509` with our own config file, so the distro's openssl.cnf default extensions never mix in.
async function selfOrCaSigned(dir: string, name: string, subj: string, ext: string, ca?: KeyPairFiles): Promise<KeyPairFiles> {
  const cnf = join(dir, `${name}.cnf`);
  await writeFile(cnf, `[req]\ndistinguished_name = dn\n[dn]\n[ext]\n${ext}\n`);
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const args = ['req', '-x509', '-new', '-config', cnf, '-extensions', 'ext', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  args.push('-nodes', '-keyout', keyFile, '-out', certFile, '-days', String(DEFAULT_CERT_DAYS), '-subj', subj);
  if (ca !== undefined) args.push('-CA', ca.certFile, '-CAkey', ca.keyFile);
  await openssl(args);
  return readPair(certFile, keyFile);
}

/** A fresh CA (EC P-256) in `dir`, able to issue leaf certs. */
export async function createCa(dir: string, commonName = 'chaperone-test-ca', name = 'ca'): Promise<Ca> {
  const caPair = await selfOrCaSigned(
    dir,
    name,
    subject(commonName),
    'basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash',
  );
  return {
    ...caPair,
    dir,
    issue(o: LeafOptions): Promise<KeyPairFiles> {
      const eku = o.usage === 'server' ? 'serverAuth' : o.usage === 'client' ? 'clientAuth' : 'serverAuth,clientAuth';
      const sans = [...(o.ips ?? []).map((ip) => `IP:${ip}`), ...(o.dnsNames ?? []).map((d) => `DNS:${d}`)];
      const lines = [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage = ${eku}`,
        ...(sans.length > 0 ? [`subjectAltName = ${sans.join(',')}`] : []),
      ];
      return selfOrCaSigned(dir, o.name, subject(o.commonName, o.organizations), lines.join('\n'), caPair);
    },
  };
}

export interface SigningKeyFiles {
  readonly privateKeyFile: string;
  readonly publicKeyFile: string;
}

/** An RSA-2048 PKCS#8/SPKI key pair (kube-apiserver's ServiceAccount token signer), generated off the main thread. */
export async function createRsaSigningKey(dir: string, name = 'sa'): Promise<SigningKeyFiles> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: string; privateKey: string }>((resolve, reject) => {
    generateKeyPair(
      'rsa',
      { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } },
      (err, pub, priv) => (err ? reject(err) : resolve({ publicKey: pub, privateKey: priv })),
    );
  });
  const privateKeyFile = join(dir, `${name}.key`);
  const publicKeyFile = join(dir, `${name}.pub`);
  await Promise.all([writeFile(privateKeyFile, privateKey, { mode: 0o600 }), writeFile(publicKeyFile, publicKey)]);
  return { privateKeyFile, publicKeyFile };
}
