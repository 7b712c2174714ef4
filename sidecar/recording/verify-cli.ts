#!/usr/bin/env node
// `chaperone-verify FILE|-`: checks a recording (file, stdin, `kubectl logs` output) and exits 0 only when it is whole.
import { createReadStream, readFileSync, realpathSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { loadKey } from './signing.ts';
import { Verifier, type VerifyOptions, type VerifyResult } from './verify.ts';

export const USAGE = `usage: chaperone-verify [FILE|-] [--key PUBLIC.pem]... [--require-sealed] [--partial] [--json]
  FILE             a recording file or saved \`kubectl logs [--timestamps] [--prefix]\` output; - or none reads stdin
  --key FILE       Ed25519 public key (PEM) to check checkpoint signatures; repeat for rotated keys
  --require-sealed fail unless every line is covered by a valid checkpoint (needs --key)
  --partial        the input starts mid-stream (kubectl logs --since/--tail)
  --json           print the result as JSON
  --help           print this help
exit status: 0 whole, 1 a bad line was found, 2 usage or I/O error`;

export interface CliArgs {
  readonly source: string;
  readonly keyFiles: readonly string[];
  readonly requireSealed: boolean;
  readonly partial: boolean;
  readonly json: boolean;
}

/** A line longer than this is not a recording line; it is skipped without being held in memory. */
const MAX_LINE = 4 << 20;

export function parseArgs(argv: readonly string[]): CliArgs | { readonly error: string } {
  let source = '-';
  const keyFiles: string[] = [];
  const flags = { requireSealed: false, partial: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--key') {
      const f = argv[++i];
      if (!f) return { error: '--key needs a file' };
      keyFiles.push(f);
    } else if (a === '--require-sealed') flags.requireSealed = true;
    else if (a === '--partial') flags.partial = true;
    else if (a === '--json') flags.json = true;
    else if (a.startsWith('--')) return { error: `unknown option ${a}` };
    else if (source !== '-') return { error: 'give one input (a file, or - for stdin)' };
    else source = a;
  }
  if (flags.requireSealed && keyFiles.length === 0) return { error: '--require-sealed needs --key: signatures must be checked to prove anything' };
  return { source, keyFiles, ...flags };
}

/** Splits a byte stream on \n (raw bytes, so hashes are over exactly what was written) and verifies it. */
export async function verifyStream(input: Readable, opts: VerifyOptions): Promise<VerifyResult> {
  const v = new Verifier(opts);
  let carry: Buffer = Buffer.alloc(0);
  let overlong = false;
  for await (const chunk of input) {
    let buf: Buffer = carry.length ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      if (!overlong && v.push(buf.subarray(0, nl))) return v.end();
      if (overlong) overlong = false;
      buf = buf.subarray(nl + 1);
    }
    if (buf.length > MAX_LINE) {
      overlong = true;
      buf = Buffer.alloc(0);
    }
    carry = Buffer.from(buf);
  }
  const unterminated = carry.length > 0 && !overlong;
  if (unterminated && v.push(carry)) return v.end();
  return v.end({ lastLineUnterminated: unterminated });
}

export function formatReport(r: VerifyResult, source: string): string {
  if (!r.ok) {
    return `FAIL ${source}: line ${r.line}: ${r.reason}: ${r.message}\n(${r.count} recording line(s) verified before it)\n`;
  }
  const sig = r.signatures === 'checked' ? 'signatures checked' : r.signatures === 'unchecked' ? 'signatures NOT checked (no --key)' : 'no signatures';
  const head = `OK ${source}: ${r.count} recording line(s) in ${r.streams.length} stream(s), ${r.foreign} other line(s) skipped; ${sig}; ${r.unsealed} unsealed\n`;
  return head + r.warnings.map((w) => `warning: ${w}\n`).join('');
}

export interface CliIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

export async function main(argv: readonly string[], io: CliIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const args = parseArgs(argv);
  if ('error' in args) {
    io.stderr.write(`${args.error}\n${USAGE}\n`);
    return 2;
  }
  let result: VerifyResult;
  try {
    const publicKeys = args.keyFiles.map((f) => loadKey(readFileSync(f, 'utf8'), 'public'));
    const input = args.source === '-' ? io.stdin : createReadStream(args.source);
    result = await verifyStream(input, { publicKeys, requireSealed: args.requireSealed, allowPartialStart: args.partial });
  } catch (e) {
    io.stderr.write(`chaperone-verify: ${(e as Error).message}\n`);
    return 2;
  }
  const name = args.source === '-' ? 'stdin' : args.source;
  io.stdout.write(args.json ? `${JSON.stringify(result)}\n` : formatReport(result, name));
  return result.ok ? 0 : 1;
}

// Run as a program (also through an npm bin symlink, whose argv[1] is the link, not the module).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
