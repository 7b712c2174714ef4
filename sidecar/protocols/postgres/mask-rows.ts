// Masks every server message on its way to the client: DataRow cells by column, errors/notices, notifications, COPY OUT data; scrubs the upstream password.
import type { Masker, StreamMasker } from '../../masking/index.ts';
import { DataRowCursor, decodeErrorFields, decodeNotification, decodeRowDescription } from './backend-framer.ts';
import { BackendCode } from './codes.ts';
import type { BackendFrame, RowField } from './messages.ts';
import { copyData, dataRow, errorResponse, noticeResponse, notificationResponse, parameterStatus, rowDescription } from './serialize-backend.ts';
import { decodeBackend } from './backend-framer.ts';
import { arrayElementOid, cellKind, fitsFixedWidth, decodeBinaryArray, decodeByteaHex, encodeBinaryArray, encodeByteaHex, maskHexRuns, numberText, type CellKind } from './binary-cells.ts';
import { BinaryCopyMasker } from './copy-binary.ts';

/** A binary COPY tuple is held whole while it is masked; bigger ones end the session (default: the framers' message cap). */
export const DEFAULT_MAX_COPY_TUPLE = 64 * 1024 * 1024;
/** Error/notice fields that are codes, positions or source locations, not text an attacker or a row can fill. */
const UNMASKED_FIELDS: ReadonlySet<string> = new Set(['S', 'V', 'C', 'P', 'p', 'F', 'L', 'R']);
export const CREDENTIAL_PLACEHOLDER = '[MASKED:upstream-credential]';
/** What takeFindings() returns when nothing was masked. */
export const NO_FINDINGS: Readonly<Record<string, number>> = Object.freeze({});

/** One column of the current result: how its cells are masked (binary-cells.ts `CellKind`). */
export interface Column {
  readonly name: string;
  readonly typeOid: number;
  readonly kind: CellKind;
  /** A binary fixed-width column whose name a column rule matches: its values cannot be masked in place, so they become NULL. */
  readonly ruled: boolean;
}

const TEXT_COLUMN: Column = { name: '', typeOid: 0, kind: 'text', ruled: false };

/** The last wall: the upstream password, literally, never reaches the client (even if a row or an error holds it). */
export class Scrubber {
  private readonly needle: Buffer | null;
  private readonly text: string | null;

  constructor(secret: string) {
    // Very short secrets would replace ordinary text everywhere; they are also not worth the name.
    this.text = secret.length >= 6 ? secret : null;
    this.needle = this.text === null ? null : Buffer.from(this.text, 'utf8');
  }

  has(b: Buffer): boolean {
    return this.needle !== null && b.indexOf(this.needle) >= 0;
  }

  bytes(b: Buffer): Buffer {
    if (this.needle === null || b.indexOf(this.needle) < 0) return b;
    return Buffer.from(b.toString('utf8').replaceAll(this.text ?? '', CREDENTIAL_PLACEHOLDER), 'utf8');
  }

  string(s: string): string {
    return this.text === null || !s.includes(this.text) ? s : s.replaceAll(this.text, CREDENTIAL_PLACEHOLDER);
  }
}

/** Per-session response masking; counts findings until `takeFindings()`. */
export class ResponseMasker {
  private columns: readonly Column[] = [];
  private readonly cursor = new DataRowCursor();
  private copy: StreamMasker | null = null;
  private binCopy: BinaryCopyMasker | null = null;
  private findings: Record<string, number> = {};
  private maskedCount = 0;
  /** maskedCount at the last takeFindings(). */
  private taken = 0;
  /** Columns of this result whose binary values were replaced by NULL (one NOTICE per result). */
  private nulled: Set<string> | null = null;
  private nullNoticeSent = false;
  /** Own copy of the last RowDescription (the frame's bytes belong to a socket chunk), and its columns. */
  private lastDescription: Buffer | null = null;
  private lastColumns: readonly Column[] = [];
  /** The last description re-serialized with masked column names, and their findings (null: no name changed). */
  private lastMaskedDescription: Buffer | null = null;
  private lastNameFindings: Readonly<Record<string, number>> | null = null;
  /** False from the end of a result until the next RowDescription or useColumns(): rows then have no known shape. */
  described = false;
  /** RowDescription cache counters (hot-path cache stats). */
  descriptionHits = 0;
  descriptionMisses = 0;

  constructor(
    private readonly masker: Masker,
    private readonly scrub: Scrubber,
    private readonly maxCopyTuple = DEFAULT_MAX_COPY_TUPLE,
  ) {}

  private columnOf(f: RowField): Column {
    const kind = cellKind(f.typeOid, f.format);
    // Only binary fixed-width columns need this probe (rare); text results skip it on the hot path.
    const ruled = kind === 'fixed' && this.masker.maskValue('0', f.name).changed;
    return { name: f.name, typeOid: f.typeOid, kind, ruled };
  }

  private count(f: Readonly<Record<string, number>>): void {
    for (const [k, n] of Object.entries(f)) {
      this.findings[k] = (this.findings[k] ?? 0) + n;
      this.maskedCount += n;
    }
  }

  /** Findings since the last call (by rule id), and resets; the shared empty NO_FINDINGS when there were none (no allocation per result). */
  takeFindings(): Readonly<Record<string, number>> {
    if (this.maskedCount === this.taken) return NO_FINDINGS;
    this.taken = this.maskedCount;
    const f = this.findings;
    this.findings = {};
    return f;
  }

  get masked(): number {
    return this.maskedCount;
  }

  /**
   * Remembers the columns of the rows that follow. Column names reach the client too (`SELECT 1 AS
   * "<secret>"`, a view or table column named after one): they are masked like any server text; the
   * columns keep the real names, which column rules match. Unchanged names: the frame's own bytes.
   */
  rowDescription(frame: BackendFrame): Buffer {
    // The same query shape sends the same bytes: a memcmp instead of a decode per result (hot path).
    if (this.lastDescription === null || !frame.raw.equals(this.lastDescription)) {
      const fields = decodeRowDescription(frame).fields;
      this.lastColumns = fields.map((f) => this.columnOf(f));
      this.lastDescription = Buffer.from(frame.raw);
      this.describeNames(fields);
      this.descriptionMisses++;
    } else {
      this.descriptionHits++;
    }
    this.useColumns(this.lastColumns);
    if (this.lastNameFindings === null) return frame.raw;
    this.count(this.lastNameFindings);
    return this.lastMaskedDescription ?? frame.raw;
  }

  /** The masked form of the last description's names (null when none changed) and what was found in them. */
  private describeNames(fields: readonly RowField[]): void {
    this.lastMaskedDescription = null;
    this.lastNameFindings = null;
    let found: Record<string, number> | null = null;
    let changed = false;
    const names = fields.map((f) => {
      const r = this.masker.maskText(f.name);
      let v = r.value;
      if (r.changed) for (const [k, n] of Object.entries(r.findings)) (found ??= {})[k] = (found[k] ?? 0) + n;
      const scrubbed = this.scrub.string(v);
      if (scrubbed !== v) {
        (found ??= {})['upstream-credential'] = (found['upstream-credential'] ?? 0) + 1;
        v = scrubbed;
      }
      if (v !== f.name) changed = true;
      return v;
    });
    if (!changed) return;
    this.lastNameFindings = found ?? {};
    this.lastMaskedDescription = rowDescription(fields.map((f, i) => ({ ...f, name: names[i] ?? f.name })));
  }

  /**
   * The result the last RowDescription described is over (CommandComplete, EmptyQueryResponse,
   * PortalSuspended, ErrorResponse, ReadyForQuery). Rows that come without a RowDescription of
   * their own (a prepared statement executed with Bind/Execute only) are then scanned as text,
   * never by a stale description: a stale `fixed` column would skip the scan of another query's cell.
   */
  endResult(): void {
    this.columns = [];
    this.described = false;
  }

  /** The columns the rows that follow have (a RowDescription's, or a portal's known from an earlier Describe: result-shapes.ts). */
  useColumns(columns: readonly Column[]): void {
    this.columns = columns;
    this.described = true;
    this.nulled = null;
    this.nullNoticeSent = false;
  }

  get currentColumns(): readonly Column[] {
    return this.columns;
  }

  /** Columns for fields described elsewhere (a statement's description with a Bind's result formats). */
  readonly columnsOf = (fields: readonly RowField[]): readonly Column[] => fields.map((f) => this.columnOf(f));

  /** The original bytes when no cell changed; else a re-serialized row. */
  dataRow(frame: BackendFrame): Buffer {
    const c = this.cursor.reset(frame);
    let out: (Buffer | null)[] | null = null;
    for (let i = 0; i < c.count; i++) {
      const cell = c.cell(i);
      if (cell === null || cell.length === 0) continue;
      const masked = this.cell(cell, this.columns[i]);
      if (masked === cell) continue;
      out ??= Array.from({ length: c.count }, (_, j) => c.cell(j));
      out[i] = masked;
    }
    if (out === null) return frame.raw;
    const row = dataRow(out);
    return this.nulled !== null && !this.nullNoticeSent ? Buffer.concat([this.nullNotice(), row]) : row;
  }

  /** Said once per result, before the first row that has one: which columns lost values to NULL, and why. */
  private nullNotice(): Buffer {
    this.nullNoticeSent = true;
    const cols = [...(this.nulled ?? [])].map((c) => JSON.stringify(c)).join(', ');
    return noticeResponse({
      S: 'NOTICE', V: 'NOTICE', C: '01000',
      M: `Chaperone replaced binary value(s) of column(s) ${cols} with NULL: they hold a masked value, which cannot be encoded in that type's binary format`,
      H: 'request the column in text format (or cast it to text) to get the value with the secret masked',
    });
  }

  private toNull(col: Column): null {
    (this.nulled ??= new Set()).add(col.name === '' ? '?column?' : col.name);
    return null;
  }

  /** The cell as it may reach the client: the same Buffer when nothing changed, or masked bytes, or null (SQL NULL). */
  private cell(cell: Buffer, col: Column = TEXT_COLUMN): Buffer | null {
    // Without a RowDescription (a portal described in an earlier batch) the cell is scanned as text.
    switch (col.kind) {
      case 'text':
        return this.textCell(cell, col.name);
      case 'bytea':
        return this.text(cell, col.name);
      case 'bytea-hex':
        return this.byteaHex(cell, col.name);
      case 'jsonb':
        return this.jsonb(cell, col.name);
      case 'fixed':
        if (col.ruled) return this.toNull(col);
        return fitsFixedWidth(col.typeOid, cell.length) || this.text(cell, col.name) === cell ? cell : this.toNull(col);
      case 'number':
        return this.number(cell, col, col.typeOid);
      case 'array':
        return this.array(cell, col);
      case 'opaque':
        // A binary value of an unknown type cannot be re-encoded with a placeholder inside: NULL instead.
        return this.text(cell, col.name) === cell ? cell : this.toNull(col);
    }
  }

  /** Text, and bytea nested in it as hex (arrays, records: binary-cells.ts `maskHexRuns`). */
  private textCell(cell: Buffer, name: string): Buffer {
    const m = this.text(cell, name);
    return maskHexRuns(m, this.scanBytes);
  }

  private readonly scanBytes = (b: Buffer): Buffer => this.text(b, undefined);

  private byteaHex(cell: Buffer, name: string): Buffer {
    const bytes = decodeByteaHex(cell);
    if (bytes === undefined) return this.text(cell, name);
    const m = this.text(bytes, name);
    return m === bytes ? cell : encodeByteaHex(m);
  }

  private jsonb(cell: Buffer, name: string): Buffer {
    if (cell.length <= 1) return cell;
    const body = cell.subarray(1);
    const m = this.text(body, name);
    return m === body ? cell : Buffer.concat([cell.subarray(0, 1), m]);
  }

  /** A binary number's decimal text is scanned (PII such as card numbers); a finding cannot be written back as a number. */
  private number(cell: Buffer, col: Column, typeOid: number): Buffer | null {
    const t = numberText(typeOid, cell);
    if (t === undefined) return this.text(cell, col.name) === cell ? cell : this.toNull(col);
    return this.string(t, col.name) === t ? cell : this.toNull(col);
  }

  private array(cell: Buffer, col: Column): Buffer | null {
    const a = decodeBinaryArray(cell);
    const elemOid = arrayElementOid(col.typeOid);
    if (a === undefined || elemOid === undefined || a.elementOid !== elemOid) return this.text(cell, col.name) === cell ? cell : this.toNull(col);
    const elem: Column = { ...col, typeOid: elemOid, kind: cellKind(elemOid, 1) };
    let changed = false;
    for (let i = 0; i < a.elements.length; i++) {
      const e = a.elements[i];
      if (e === null || e === undefined || e.length === 0) continue;
      const m = this.cell(e, elem);
      if (m !== e) {
        a.elements[i] = m;
        changed = true;
      }
    }
    return changed ? encodeBinaryArray(a) : cell;
  }

  private text(b: Buffer, field: string | undefined): Buffer {
    const r = this.masker.maskBuffer(b, field);
    let v = r.value;
    if (r.changed) this.count(r.findings);
    if (this.scrub.has(v)) {
      v = this.scrub.bytes(v);
      this.count({ 'upstream-credential': 1 });
    }
    return r.changed || v !== r.value ? v : b;
  }

  private string(s: string, field?: string): string {
    const r = field === undefined ? this.masker.maskText(s) : this.masker.maskValue(s, field);
    if (r.changed) this.count(r.findings);
    const v = this.scrub.string(r.value);
    if (v !== r.value) this.count({ 'upstream-credential': 1 });
    return v;
  }

  /** ErrorResponse/NoticeResponse: every text field masked; the original bytes when nothing changed. */
  errorOrNotice(frame: BackendFrame): Buffer {
    const fields = decodeErrorFields(frame);
    let changed = false;
    const out = new Map<string, string>();
    for (const [k, v] of fields) {
      const m = UNMASKED_FIELDS.has(k) ? v : this.string(v);
      if (m !== v) changed = true;
      out.set(k, m);
    }
    if (!changed) return frame.raw;
    return frame.code === BackendCode.ErrorResponse ? errorResponse(out) : noticeResponse(out);
  }

  notification(frame: BackendFrame): Buffer {
    const n = decodeNotification(frame);
    const channel = this.string(n.channel);
    const payload = this.string(n.payload);
    return channel === n.channel && payload === n.payload ? frame.raw : notificationResponse(n.processId, channel, payload);
  }

  parameterStatus(frame: BackendFrame): Buffer {
    const m = decodeBackend(frame);
    if (m.name !== 'parameterStatus') return frame.raw;
    const name = this.string(m.parameter);
    const v = this.string(m.value);
    return v === m.value && name === m.parameter ? frame.raw : parameterStatus(name, v);
  }

  /**
   * CopyOutResponse/CopyBothResponse: a stream masker for this COPY (secrets may straddle CopyData
   * messages); for FORMAT binary (overall format byte 1) a tuple-aware masker (copy-binary.ts).
   */
  copyStart(frame?: BackendFrame): void {
    if (frame !== undefined && frame.raw[frame.bodyOffset] === 1) {
      this.binCopy = new BinaryCopyMasker((f) => (this.text(f, undefined) === f ? f : null), this.maxCopyTuple);
      return;
    }
    this.copy = this.masker.stream();
  }

  /** CopyData from the server: masked output so far (null when the stream held everything back). */
  copyData(frame: BackendFrame): Buffer | null {
    const data = frame.raw.subarray(frame.bodyOffset);
    if (this.binCopy !== null) {
      const out = this.binCopy.push(data);
      if (out.length === 0) return null;
      return out === data ? frame.raw : copyData(out);
    }
    // COPY text/csv carries bytea as hex (one row per CopyData: a run does not straddle messages).
    const hexed = maskHexRuns(data, this.scanBytes);
    if (this.copy === null) {
      const r = this.text(hexed, undefined);
      return r === data ? frame.raw : copyData(r);
    }
    const out = this.copy.push(hexed);
    if (out.length === 0) return null;
    return copyData(this.scrubCopy(out));
  }

  /**
   * At CopyDone (or an error ending the COPY, `aborted`): the held-back tail, or null. A binary
   * COPY gives its NOTICE here when fields became NULL; one that ends inside a tuple throws
   * (never forwarded unmasked) unless aborted.
   */
  copyEnd(aborted = false): Buffer | null {
    const bin = this.binCopy;
    if (bin !== null) {
      this.binCopy = null;
      if (!aborted) bin.end();
      if (bin.nulled === 0) return null;
      return noticeResponse({
        S: 'NOTICE', V: 'NOTICE', C: '01000',
        M: `Chaperone replaced ${bin.nulled} field(s) of this binary COPY with NULL: they hold a secret, and binary COPY does not say a field's type, so a masked value cannot be encoded`,
        H: 'use COPY … (FORMAT text) or (FORMAT csv) to get the rows with the secrets masked in place',
      });
    }
    const s = this.copy;
    if (s === null) return null;
    this.copy = null;
    const rest = s.end();
    this.count(s.findings());
    return rest.length === 0 ? null : copyData(this.scrubCopy(rest));
  }

  get inCopy(): boolean {
    return this.copy !== null || this.binCopy !== null;
  }

  private scrubCopy(b: Buffer): Buffer {
    if (!this.scrub.has(b)) return b;
    this.count({ 'upstream-credential': 1 });
    return this.scrub.bytes(b);
  }
}
