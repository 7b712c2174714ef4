// The upstream credential: read from the sidecar's own mount (re-read when the file changes), injected into the upstream request, and the literal values to scrub from responses.
import { readFileSync, statSync } from 'node:fs';
import type { HttpCredentialsConfig } from '../../core/config-types.ts';

/** How long a read credential is used before the file's mtime is checked again (rotation without a restart). */
export const CREDENTIAL_RECHECK_MS = 1000;

export interface Credential {
  /** Header to set on the upstream request (lower-case name), if any. */
  readonly header?: { readonly name: string; readonly value: string };
  /** Query parameter to add, if any. */
  readonly query?: { readonly name: string; readonly value: string };
  /** Every literal that must never reach the agent (the token, password, and encodings of them). */
  readonly secrets: readonly string[];
  /** Changes whenever the credential changes (rebuild the scrubbing masker then). */
  readonly version: string;
}

const NONE: Credential = { secrets: [], version: 'none' };

interface Cached {
  readonly files: readonly string[];
  readonly mtimes: string;
  readonly at: number;
  readonly cred: Credential;
}

function readTrimmed(path: string): string {
  // Secrets mounted from files usually end with a newline; no credential has trailing whitespace.
  return readFileSync(path, 'utf8').replace(/\s+$/, '');
}

function mtimes(files: readonly string[]): string {
  return files.map((f) => { const s = statSync(f); return `${s.mtimeMs}:${s.size}:${s.ino}`; }).join('|');
}

function filesOf(c: HttpCredentialsConfig): string[] {
  switch (c.type) {
    case 'bearer':
    case 'header':
    case 'query':
      return [c.tokenFile];
    case 'basic':
      return [c.usernameFile, c.passwordFile];
    case 'none':
      return [];
  }
}

function build(c: HttpCredentialsConfig, version: string): Credential {
  switch (c.type) {
    case 'bearer': {
      const t = readTrimmed(c.tokenFile);
      return { header: { name: 'authorization', value: `Bearer ${t}` }, secrets: [t], version };
    }
    case 'header': {
      const t = readTrimmed(c.tokenFile);
      return { header: { name: c.headerName.toLowerCase(), value: t }, secrets: [t], version };
    }
    case 'query': {
      const t = readTrimmed(c.tokenFile);
      return { query: { name: c.queryParam, value: t }, secrets: [t, encodeURIComponent(t)].filter((s, i, a) => a.indexOf(s) === i), version };
    }
    case 'basic': {
      const user = readTrimmed(c.usernameFile);
      const pass = readTrimmed(c.passwordFile);
      const b64 = Buffer.from(`${user}:${pass}`).toString('base64');
      return { header: { name: 'authorization', value: `Basic ${b64}` }, secrets: [pass, b64], version };
    }
    case 'none':
      return NONE;
  }
}

/** Reads the credential lazily, caching it until its files change. Throws (with the path, never the value) if a file is unreadable. */
export class CredentialSource {
  private cached: Cached | undefined;
  constructor(private readonly cfg: HttpCredentialsConfig) {}

  get(now = Date.now()): Credential {
    const c = this.cached;
    if (c !== undefined && now - c.at < CREDENTIAL_RECHECK_MS) return c.cred;
    const files = filesOf(this.cfg);
    if (files.length === 0) return NONE;
    let m: string;
    try {
      m = mtimes(files);
    } catch (e) {
      throw new Error(`the credential file is unreadable (${(e as NodeJS.ErrnoException).code ?? 'error'}: ${files.join(', ')}); check the mounted Secret`);
    }
    if (c !== undefined && c.mtimes === m) {
      this.cached = { ...c, at: now };
      return c.cred;
    }
    let cred: Credential;
    try {
      cred = build(this.cfg, m);
    } catch (e) {
      throw new Error(`the credential file is unreadable (${(e as NodeJS.ErrnoException).code ?? 'error'}: ${files.join(', ')}); check the mounted Secret`);
    }
    this.cached = { files, mtimes: m, at: now, cred };
    return cred;
  }
}
