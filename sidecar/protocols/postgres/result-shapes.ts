// The shape (column types and formats) of rows that arrive without a RowDescription of their own: an
// Execute of a statement described in an earlier batch (asyncpg, JDBC after prepareThreshold) or the
// next Execute of a portal after PortalSuspended (fetch sizes). Without it, binary cells of such rows
// would be scanned as text: a binary numeric holding a card number passes, a masked text[] element
// breaks its array's lengths.
import type { FormatCode, RowField } from './messages.ts';

/** A frontend message whose answer is ordered among the others: what the next answers belong to. */
type Pending =
  | { readonly kind: 'describe-statement'; readonly name: string }
  | { readonly kind: 'describe-portal'; readonly name: string; readonly internal: boolean }
  | { readonly kind: 'execute'; readonly portal: string }
  | { readonly kind: 'sync' }
  | { readonly kind: 'query' };

interface Portal<C> {
  readonly statement: string;
  readonly formats: readonly FormatCode[];
  /** The portal's columns: from its own Describe (exact), else derived once from the statement's and the formats. */
  columns: C | undefined;
}

/** Answers in flight beyond this: tracking stops for the session (its rows fall back to the text scan). */
export const MAX_PENDING = 65_536;
/** Named statements and portals remembered (a client that makes more loses the oldest shapes, not correctness). */
export const MAX_NAMES = 4096;

const SYNC: Pending = Object.freeze({ kind: 'sync' });
const QUERY: Pending = Object.freeze({ kind: 'query' });

/** The format of column `i` by the Bind's result-format codes (none: all text; one: all that one). */
export function formatOf(formats: readonly FormatCode[], i: number): FormatCode {
  if (formats.length === 0) return 0;
  if (formats.length === 1) return formats[0] ?? 0;
  return formats[i] ?? 0;
}

/**
 * Fed, in order, every message the session sends upstream (frontend side) and every answer
 * (backend side); pure bookkeeping, no I/O. `C` is the caller's column type (mask-rows' columns).
 */
export class ResultShapes<C> {
  private readonly pending: Pending[] = [];
  private head = 0;
  private lost = false;
  private readonly statements = new Map<string, readonly RowField[]>();
  private readonly portals = new Map<string, Portal<C>>();

  constructor(private readonly columnsOf: (fields: readonly RowField[]) => C) {}

  // ---- frontend: messages as they go upstream ----

  parse(statement: string): void {
    this.statements.delete(statement);
  }

  bind(portal: string, statement: string, formats: readonly FormatCode[]): void {
    remember(this.portals, portal, { statement, formats, columns: undefined });
  }

  describe(target: 'S' | 'P', name: string): void {
    this.push(target === 'S' ? { kind: 'describe-statement', name } : { kind: 'describe-portal', name, internal: false });
  }

  /**
   * True when an Execute of this portal would bring binary cells of unknown types (binary result
   * formats, no Describe of the portal or its statement): the session sends its own Describe of the
   * portal first (`describeInternal`) and swallows the answer, rather than scan binary as text.
   */
  needsDescribe(portal: string): boolean {
    if (this.lost) return false;
    const p = this.portals.get(portal);
    return p !== undefined && p.columns === undefined && p.formats.includes(1) && !this.statements.has(p.statement);
  }

  describeInternal(portal: string): void {
    this.push({ kind: 'describe-portal', name: portal, internal: true });
  }

  execute(portal: string): void {
    this.push({ kind: 'execute', portal });
  }

  close(target: 'S' | 'P', name: string): void {
    if (target === 'S') this.statements.delete(name);
    else this.portals.delete(name);
  }

  sync(): void {
    this.push(SYNC);
  }

  query(): void {
    this.push(QUERY);
  }

  // ---- backend: answers as they come back ----

  /**
   * A RowDescription or NoData (`fields` undefined): when it answers a Describe, remembers it and
   * says which kind ('statement': its formats are all text, so it must not shape the rows that
   * follow; 'portal': exact; 'internal': exact, and the answer to the session's own Describe, which
   * the client never asked for). Null: a simple query's or a COPY's own description.
   */
  described(fields: (() => readonly RowField[]) | undefined, current: () => C): 'statement' | 'portal' | 'internal' | null {
    const p = this.peek();
    if (p?.kind === 'describe-statement') {
      this.pop();
      remember(this.statements, p.name, fields?.() ?? []);
      return 'statement';
    }
    if (p?.kind === 'describe-portal') {
      this.pop();
      const portal = this.portals.get(p.name);
      if (portal !== undefined && fields !== undefined) portal.columns = current();
      return p.internal ? 'internal' : 'portal';
    }
    return null;
  }

  /** The columns of rows that came without a description: the executing portal's, when known. */
  rowsWithoutDescription(): C | undefined {
    const p = this.peek();
    if (p?.kind !== 'execute') return undefined;
    const portal = this.portals.get(p.portal);
    if (portal === undefined) return undefined;
    if (portal.columns !== undefined) return portal.columns;
    const fields = this.statements.get(portal.statement);
    if (fields === undefined) return undefined;
    portal.columns = this.columnsOf(fields.map((f, i) => ({ ...f, format: formatOf(portal.formats, i) })));
    return portal.columns;
  }

  /** CommandComplete, EmptyQueryResponse or PortalSuspended: an Execute is answered (a simple query's are not counted). */
  resultEnd(): void {
    if (this.peek()?.kind === 'execute') this.pop();
  }

  /** ErrorResponse: in the extended protocol the server skips everything up to the next Sync. */
  error(): void {
    for (let p = this.peek(); p !== undefined && p.kind !== 'sync' && p.kind !== 'query'; p = this.peek()) this.pop();
  }

  /** ReadyForQuery answers the first Sync or Query in flight (and anything the server skipped before it). */
  ready(): void {
    for (let p = this.peek(); p !== undefined; p = this.peek()) {
      this.pop();
      if (p.kind === 'sync' || p.kind === 'query') break;
    }
  }

  /** Answers still expected (tests, metrics). */
  get inFlight(): number {
    return this.pending.length - this.head;
  }

  private push(p: Pending): void {
    if (this.lost) return;
    if (this.inFlight >= MAX_PENDING) {
      // A client that pipelines this deep without reading: stop shaping rather than guess.
      this.lost = true;
      this.pending.length = 0;
      this.head = 0;
      this.portals.clear();
      return;
    }
    this.pending.push(p);
  }

  private peek(): Pending | undefined {
    return this.pending[this.head];
  }

  private pop(): void {
    this.head++;
    if (this.head === this.pending.length) {
      this.pending.length = 0;
      this.head = 0;
    } else if (this.head >= 1024) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
  }
}

/** Map insert with a size bound: the oldest entry goes first. */
function remember<V>(m: Map<string, V>, k: string, v: V): void {
  m.delete(k);
  m.set(k, v);
  if (m.size > MAX_NAMES) {
    const oldest = m.keys().next();
    if (oldest.done !== true) m.delete(oldest.value);
  }
}
