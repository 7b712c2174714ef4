#!/usr/bin/env node
// `chaperone-verify FILE|-`: checks a recording (file, stdin, `kubectl logs` output) and exits 0 only when it is whole.
import { createReadStream, readFileSync, realpathSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { printable } from './replay.ts';
import { loadKey } from './signing.ts';
import { Verifier, type VerifyOptions, type VerifyResult } from './verify.ts';

export const USAGE = `usage: chaperone-verify [FILE|-] [--key PUBLIC.pem]... [--require-sealed] [--require-closed] [--partial] [--json]
  FILE             a recording file or saved \`kubectl logs [--timestamps] [--prefix]\` output; - or none reads stdin
  --key FILE       Ed25519 public key (PEM) to check checkpoint signatures; repeat for rotated keys
  --require-sealed fail unless every line is covered by a valid checkpoint (needs --key)
  --require-closed fail unless every stream ends with stream.end or is followed by a later
                   stream (a recording cut after a checkpoint; not for a live log)
  --partial        the input starts mid-stream (kubectl logs --since/--tail)
  --json           print the result as JSON
  --help           print this help
exit status: 0 whole, 1 a bad line was found, 2 usage or I/O error`;

export interface CliArgs {
  readonly source: string;
  readonly keyFiles: readonly string[];
  readonly requireSealed: boolean;
  readonly requireClosed: boolean;
  readonly partial: boolean;
  readonly json: boolean;
}

/** A line longer than this is not held in memory: a log line is skipped, a recording line fails (see Verifier.pushOverlong). */
export const MAX_LINE = 4 << 20;
/** Bytes kept of an overlong line: enough to find the marker behind any kubectl prefix. */
const OVERLONG_HEAD = 4096;

export function parseArgs(argv: readonly string[]): CliArgs | { readonly error: string } {
  let source = '-';
  const keyFiles: string[] = [];
  const flags = { requireSealed: false, requireClosed: false, partial: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--key') {
      const f = argv[++i];
      if (!f) return { error: '--key needs a file' };
      keyFiles.push(f);
    } else if (a === '--require-sealed') flags.requireSealed = true;
    else if (a === '--require-closed') flags.requireClosed = true;
    else if (a === '--partial') flags.partial = true;
    else if (a === '--json') flags.json = true;
    else if (a.startsWith('--')) return { error: `unknown option ${a}` };
    else if (source !== '-') return { error: 'give one input (a file, or - for stdin)' };
    else source = a;
  }
  if (flags.requireSealed && keyFiles.length === 0) return { error: '--require-sealed needs --key: signatures must be checked to prove anything' };
  return { source, keyFiles, ...flags };
}

/** What `forEachLine` hands on: a whole line, or the head of one longer than MAX_LINE (never held whole). */
export interface LineHandler {
  /** Returns true to stop. */
  line(l: Buffer): boolean;
  overlong(head: Buffer, length: number): boolean;
}

/**
 * Splits a byte stream on \n only (raw bytes, so hashes are over exactly what was written), in
 * bounded memory: a line longer than MAX_LINE is handed on as its first bytes, and every line,
 * overlong or not, is counted. Returns whether the input ended without a newline.
 */
export async function forEachLine(input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, h: LineHandler): Promise<{ readonly unterminated: boolean; readonly stopped: boolean }> {
  // The start of the current line: chunks without a newline are kept as a list (no quadratic concat).
  let parts: Buffer[] = [];
  let partLen = 0;
  let head: Buffer | null = null;
  let skipped = 0;
  const finish = (tail: Buffer): boolean => {
    let stop: boolean;
    if (head !== null) stop = h.overlong(head, skipped + tail.length);
    else stop = h.line(parts.length === 0 ? tail : Buffer.concat([...parts, tail]));
    parts = [];
    partLen = 0;
    head = null;
    skipped = 0;
    return stop;
  };
  for await (const chunk of input) {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      if (finish(buf.subarray(0, nl))) return { unterminated: false, stopped: true };
      buf = buf.subarray(nl + 1);
    }
    if (buf.length === 0) continue;
    if (head !== null) {
      skipped += buf.length;
      continue;
    }
    parts.push(Buffer.from(buf)); // a copy: the reader may reuse its chunk
    partLen += buf.length;
    if (partLen > MAX_LINE) {
      const all = Buffer.concat(parts);
      head = Buffer.from(all.subarray(0, OVERLONG_HEAD));
      skipped = all.length;
      parts = [];
      partLen = 0;
    }
  }
  if (head !== null || partLen > 0) return { unterminated: true, stopped: finish(Buffer.alloc(0)) };
  return { unterminated: false, stopped: false };
}

/** Splits a byte stream into lines and verifies it. */
export async function verifyStream(input: Readable | AsyncIterable<Buffer | string> | Iterable<Buffer | string>, opts: VerifyOptions): Promise<VerifyResult> {
  const v = new Verifier(opts);
  const { unterminated, stopped } = await forEachLine(input as AsyncIterable<Buffer | string>, {
    line: (l) => v.push(l) !== null,
    overlong: (head, length) => v.pushOverlong(head, length) !== null,
  });
  return stopped ? v.end() : v.end({ lastLineUnterminated: unterminated });
}

export function formatReport(r: VerifyResult, source: string): string {
  const src = printable(source);
  if (!r.ok) {
    return `FAIL ${src}: line ${r.line}: ${r.reason}: ${printable(r.message)}\n(${r.count} recording line(s) verified before it)\n`;
  }
  const sig = r.signatures === 'checked' ? 'signatures checked' : r.signatures === 'unchecked' ? 'signatures NOT checked (no --key)' : 'no signatures';
  const open = r.streams.filter((s) => s.open).length;
  const tail = open > 0 ? `; ${open} open (no stream.end: live, crashed or cut)` : '';
  const head = `OK ${src}: ${r.count} recording line(s) in ${r.streams.length} stream(s), ${r.foreign} other line(s) skipped; ${sig}; ${r.unsealed} unsealed${tail}\n`;
  const unsigned = r.signatures === 'none' ? 'warning: no checkpoints: the chain proves the lines are consistent, not who wrote them (anyone able to write the log can recompute it); only signed checkpoints checked with --key and --require-sealed prove authorship\n' : '';
  return head + unsigned + r.warnings.map((w) => `warning: ${printable(w)}\n`).join('');
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
    result = await verifyStream(input, { publicKeys, requireSealed: args.requireSealed, requireClosed: args.requireClosed, allowPartialStart: args.partial });
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
