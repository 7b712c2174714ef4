// Extended-protocol approvals: a Parse that needs approval lives upstream under a sidecar-private name, and each Execute of a portal bound from it is held with its exact parameters.
//
// Why private names: the client's statement names are only as reliable as the server's view of
// them, and after an error PostgreSQL skips messages until Sync (a Close or a replacing Parse may not
// have run). A held statement therefore never exists under a name the client chose; Bind, Describe
// and Close naming it are rewritten to the private name, and anything else the client names resolves
// to a statement the policy allowed. Portals need no renaming: they end with their transaction, and
// any error aborts it, so a Bind or Close that PostgreSQL skipped leaves no usable portal behind.
import { createHash, randomBytes } from 'node:crypto';
import type { FormatCode } from './messages.ts';

export const HELD_PREFIX = 'chaperone_held_';
/** Values shown to the approver are cut here (the hash covers the exact bytes). */
const MAX_SHOWN_VALUE = 512;
const MAX_SHOWN_PARAMS = 100;
/** Held statement names and held portals per session (unnamed ones reuse one entry; past these, holds are refused). */
export const MAX_HELD = 1000;

/** A parsed statement that needs approval at each Execute. */
export interface HeldStatement<T> {
  readonly privateName: string;
  /** Exact unmasked text and parameter types: what the hash covers. */
  readonly sql: string;
  readonly paramTypes: readonly number[];
  /** Masked text: what the approver reads. */
  readonly text: string;
  readonly payload: T;
}

/** A portal bound from a held statement: every Execute of it is held. */
export interface HeldPortal<T> {
  readonly statement: HeldStatement<T>;
  /** SHA-256 of the statement text, its parameter types, the parameter formats and bytes. */
  readonly hash: string;
  /** SHA-256 of the parameter formats and bytes alone. */
  readonly parametersHash: string;
  /** Masked statement plus masked parameter values. */
  readonly shown: string;
}

/** True for a name only the sidecar may use (compared case-insensitively: SQL folds unquoted names). */
export function isPrivateName(name: string): boolean {
  return name.length >= HELD_PREFIX.length && name.slice(0, HELD_PREFIX.length).toLowerCase() === HELD_PREFIX;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** Length-prefixed, so no two different inputs encode alike. */
function hashParameters(h: ReturnType<typeof createHash>, formats: readonly FormatCode[], params: readonly (Buffer | null)[]): void {
  h.update(u16(formats.length));
  for (const f of formats) h.update(u16(f));
  h.update(u16(params.length));
  for (const p of params) {
    if (p === null) h.update(u32(0xffffffff));
    else h.update(u32(p.length)).update(p);
  }
}

/** The hash an extended-protocol approval binds to, and the parameters' own hash. */
export function bindHash(sql: string, paramTypes: readonly number[], formats: readonly FormatCode[], params: readonly (Buffer | null)[]): { hash: string; parametersHash: string } {
  const h = createHash('sha256').update('chaperone.pg.bind.v1\n');
  const text = Buffer.from(sql, 'utf8');
  h.update(u32(text.length)).update(text);
  h.update(u16(paramTypes.length));
  for (const t of paramTypes) h.update(u32(t));
  hashParameters(h, formats, params);
  const p = createHash('sha256').update('chaperone.pg.params.v1\n');
  hashParameters(p, formats, params);
  return { hash: h.digest('hex'), parametersHash: p.digest('hex') };
}

function formatOf(formats: readonly FormatCode[], i: number): FormatCode {
  if (formats.length === 0) return 0;
  return (formats.length === 1 ? formats[0] : formats[i]) ?? 0;
}

function clip(s: string): string {
  return s.length <= MAX_SHOWN_VALUE ? s : `${s.slice(0, MAX_SHOWN_VALUE - 1)}…`;
}

/** `$1 = '42', $2 = NULL, $3 = '\x0a0b' (binary)`: text values as text, binary as hex, each masked. */
export function showParameters(formats: readonly FormatCode[], params: readonly (Buffer | null)[], mask: (s: string) => string): string {
  const parts: string[] = [];
  for (let i = 0; i < params.length && i < MAX_SHOWN_PARAMS; i++) {
    const p = params[i];
    if (p === null || p === undefined) {
      parts.push(`$${i + 1} = NULL`);
      continue;
    }
    const binary = formatOf(formats, i) === 1;
    const raw = binary ? `\\x${p.toString('hex')}` : p.toString('utf8');
    parts.push(`$${i + 1} = '${clip(mask(raw)).replace(/'/g, "''")}'${binary ? ' (binary)' : ''}`);
  }
  if (params.length > MAX_SHOWN_PARAMS) parts.push(`… ${params.length - MAX_SHOWN_PARAMS} more`);
  return parts.join(', ');
}

/** What the approver reads for one Execute: the masked statement, then its masked parameters. */
export function shownCommand(text: string, formats: readonly FormatCode[], params: readonly (Buffer | null)[], mask: (s: string) => string): string {
  if (params.length === 0) return text;
  return `${text}\n-- bound parameters: ${showParameters(formats, params, mask)}`;
}

/** The session's held statements (by client name) and held portals. */
export class HeldExtended<T> {
  private readonly statements = new Map<string, HeldStatement<T>>();
  private readonly portals = new Map<string, HeldPortal<T>>();
  private readonly nonce = randomBytes(6).toString('hex');
  private seq = 0;
  /** Whether any held statement was ever created upstream (private names exist from then on). */
  active = false;

  /** Whether another held statement (or portal) under this name fits. */
  roomFor(kind: 'statement' | 'portal', name: string): boolean {
    const m = kind === 'statement' ? this.statements : this.portals;
    return m.size < MAX_HELD || m.has(name);
  }

  /** A held Parse: its private name upstream. */
  parseHeld(clientName: string, s: Omit<HeldStatement<T>, 'privateName'>): string {
    const privateName = `${HELD_PREFIX}${this.nonce}_${++this.seq}`;
    this.statements.set(clientName, { ...s, privateName });
    this.active = true;
    return privateName;
  }

  /** An allowed Parse under this name: the name now means the client's own (allowed) statement. */
  parseAllowed(clientName: string): void {
    this.statements.delete(clientName);
  }

  statement(clientName: string): HeldStatement<T> | undefined {
    return this.statements.get(clientName);
  }

  /** Close 'S': forgets the name; the private name to close instead, if it was held. */
  closeStatement(clientName: string): string | undefined {
    const s = this.statements.get(clientName);
    this.statements.delete(clientName);
    return s?.privateName;
  }

  /** Bind: the portal is held when its statement is; any other Bind to it ends the old binding. */
  bind(portal: string, p: HeldPortal<T> | undefined): void {
    if (p === undefined) this.portals.delete(portal);
    else this.portals.set(portal, p);
  }

  portal(name: string): HeldPortal<T> | undefined {
    return this.portals.size === 0 ? undefined : this.portals.get(name);
  }

  closePortal(name: string): void {
    this.portals.delete(name);
  }

  get heldPortals(): number {
    return this.portals.size;
  }
}
