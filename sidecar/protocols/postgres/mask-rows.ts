// Masks every server message on its way to the client: DataRow cells by column, errors/notices, notifications, COPY OUT data; scrubs the upstream password.
import type { Masker, StreamMasker } from '../../masking/index.ts';
import { DataRowCursor, decodeErrorFields, decodeNotification, decodeRowDescription } from './backend-framer.ts';
import { BackendCode } from './codes.ts';
import type { BackendFrame, RowField } from './messages.ts';
import { copyData, dataRow, errorResponse, noticeResponse, notificationResponse, parameterStatus } from './serialize-backend.ts';
import { decodeBackend } from './backend-framer.ts';

/** Type OIDs whose binary format is the text itself (pg_type.dat): text, varchar, bpchar, name, char, unknown, json, xml, bytea. */
const BINARY_TEXT_OIDS: ReadonlySet<number> = new Set([25, 1043, 1042, 19, 18, 705, 114, 142, 17]);
/** jsonb's binary format is a version byte (1) and then the JSON text. */
const JSONB_OID = 3802;
/** Error/notice fields that are codes, positions or source locations, not text an attacker or a row can fill. */
const UNMASKED_FIELDS: ReadonlySet<string> = new Set(['S', 'V', 'C', 'P', 'p', 'F', 'L', 'R']);
export const CREDENTIAL_PLACEHOLDER = '[MASKED:upstream-credential]';

interface Column {
  readonly name: string;
  /** 'text': mask as text; 'jsonb': skip the version byte; 'opaque': binary of another type (a finding → the cell becomes NULL). */
  readonly how: 'text' | 'jsonb' | 'opaque';
}

function columnOf(f: RowField): Column {
  if (f.format === 0 || BINARY_TEXT_OIDS.has(f.typeOid)) return { name: f.name, how: 'text' };
  if (f.typeOid === JSONB_OID) return { name: f.name, how: 'jsonb' };
  return { name: f.name, how: 'opaque' };
}

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
  private findings: Record<string, number> = {};
  private maskedCount = 0;

  constructor(
    private readonly masker: Masker,
    private readonly scrub: Scrubber,
  ) {}

  private count(f: Readonly<Record<string, number>>): void {
    for (const [k, n] of Object.entries(f)) {
      this.findings[k] = (this.findings[k] ?? 0) + n;
      this.maskedCount += n;
    }
  }

  /** Findings since the last call (by rule id), and resets. */
  takeFindings(): Record<string, number> {
    const f = this.findings;
    this.findings = {};
    return f;
  }

  get masked(): number {
    return this.maskedCount;
  }

  /** Remembers the columns of the rows that follow; forwards the description unchanged. */
  rowDescription(frame: BackendFrame): Buffer {
    this.columns = decodeRowDescription(frame).fields.map(columnOf);
    return frame.raw;
  }

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
    return out === null ? frame.raw : dataRow(out);
  }

  private cell(cell: Buffer, col: Column | undefined): Buffer | null {
    // Without a RowDescription (a portal described in an earlier batch) the cell is scanned as text.
    const how = col?.how ?? 'text';
    if (how === 'jsonb' && cell.length > 1) {
      const body = this.text(cell.subarray(1), col?.name);
      return body === cell.subarray(1) ? cell : Buffer.concat([cell.subarray(0, 1), body]);
    }
    const r = this.text(cell, col?.name);
    // A binary value of a non-text type cannot be re-encoded with a placeholder inside: send NULL instead.
    if (how === 'opaque' && r !== cell) return null;
    return r === cell ? cell : r;
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

  private string(s: string): string {
    const r = this.masker.maskText(s);
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
    const v = this.string(m.value);
    return v === m.value ? frame.raw : parameterStatus(m.parameter, v);
  }

  /** CopyOutResponse/CopyBothResponse: a stream masker for this COPY (secrets may straddle CopyData messages). */
  copyStart(): void {
    this.copy = this.masker.stream();
  }

  /** CopyData from the server: masked output so far (null when the stream held everything back). */
  copyData(frame: BackendFrame): Buffer | null {
    const data = frame.raw.subarray(frame.bodyOffset);
    if (this.copy === null) {
      const r = this.text(data, undefined);
      return r === data ? frame.raw : copyData(r);
    }
    const out = this.copy.push(data);
    if (out.length === 0) return null;
    return copyData(this.scrubCopy(out));
  }

  /** At CopyDone (or an error ending the COPY): the held-back tail, or null. */
  copyEnd(): Buffer | null {
    const s = this.copy;
    if (s === null) return null;
    this.copy = null;
    const rest = s.end();
    this.count(s.findings());
    return rest.length === 0 ? null : copyData(this.scrubCopy(rest));
  }

  get inCopy(): boolean {
    return this.copy !== null;
  }

  private scrubCopy(b: Buffer): Buffer {
    if (!this.scrub.has(b)) return b;
    this.count({ 'upstream-credential': 1 });
    return this.scrub.bytes(b);
  }
}
