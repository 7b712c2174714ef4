// COPY … TO STDOUT (FORMAT binary), masked field by field: the stream is re-framed into complete tuples, and a field holding a secret becomes NULL (its type is not on the wire).
//
// Wire fact (PostgreSQL docs, "Binary Format" of COPY): an 11-byte signature `PGCOPY\n\377\r\n\0`,
// int32 flags, int32 header-extension length and that many bytes; then tuples: int16 field count
// (-1 = the trailer), and per field an int32 length (-1 = NULL) and the bytes. CopyData message
// boundaries need not align with tuples, so tuples are reassembled here. The field types are not
// sent, so a changed field cannot be re-encoded as its type: NULL is the one encoding every type
// accepts (fail closed), and the gateway tells the client with a NOTICE.

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export class BinaryCopyError extends Error {
  override readonly name = 'BinaryCopyError';
}

/** Decides one field: the same bytes (pass), or null (replace with NULL). */
export type FieldJudge = (field: Buffer, index: number) => Buffer | null;

export class BinaryCopyMasker {
  private pending: Buffer = Buffer.alloc(0);
  private headerDone = false;
  private ended = false;
  /** Fields replaced by NULL so far. */
  nulled = 0;
  private rewritten = false;

  constructor(
    private readonly judge: FieldJudge,
    /** A tuple larger than this cannot be held for masking: the COPY is refused (the session ends). */
    private readonly maxTuple: number,
  ) {}

  /** Bytes to send now (complete header and tuples; unchanged tuples as their original bytes). */
  push(data: Buffer): Buffer {
    const fresh = this.pending.length === 0;
    this.pending = fresh ? data : Buffer.concat([this.pending, data]);
    const out: Buffer[] = [];
    this.rewritten = false;
    let pos = 0;
    if (!this.headerDone) {
      const h = this.header();
      if (h === 0) return this.hold(0, out);
      out.push(this.pending.subarray(0, h));
      pos = h;
      this.headerDone = true;
    }
    for (;;) {
      if (this.ended) {
        if (pos < this.pending.length) throw new BinaryCopyError('binary COPY data continues after its trailer');
        break;
      }
      const t = this.tuple(pos);
      if (t === undefined) break;
      out.push(t.bytes);
      pos = t.end;
    }
    // The common case: whole clean tuples in one CopyData go out as that very message.
    if (fresh && !this.rewritten && pos === data.length) {
      this.pending = Buffer.alloc(0);
      return data;
    }
    return this.hold(pos, out);
  }

  /** At CopyDone: anything held back is an incomplete tuple, which is refused rather than forwarded unmasked. */
  end(): void {
    if (this.pending.length > 0) throw new BinaryCopyError(`binary COPY ended inside a tuple (${this.pending.length} bytes held)`);
  }

  private hold(pos: number, out: Buffer[]): Buffer {
    this.pending = this.pending.subarray(pos);
    if (this.pending.length > this.maxTuple) throw new BinaryCopyError(`a binary COPY tuple is larger than ${this.maxTuple} bytes and cannot be masked; use COPY with FORMAT text or csv`);
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }

  /** Length of the complete header, or 0 when more bytes are needed. */
  private header(): number {
    const p = this.pending;
    if (p.length < SIGNATURE.length + 8) return 0;
    if (!p.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new BinaryCopyError('binary COPY data does not start with the PGCOPY signature');
    const ext = p.readInt32BE(SIGNATURE.length + 4);
    if (ext < 0) throw new BinaryCopyError('binary COPY header has a negative extension length');
    const len = SIGNATURE.length + 8 + ext;
    return p.length >= len ? len : 0;
  }

  /** One complete tuple at `pos` (masked if a field changed), or undefined when it is not complete yet. */
  private tuple(pos: number): { bytes: Buffer; end: number } | undefined {
    const p = this.pending;
    if (pos + 2 > p.length) return undefined;
    const n = p.readInt16BE(pos);
    if (n === -1) {
      this.ended = true;
      return { bytes: p.subarray(pos, pos + 2), end: pos + 2 };
    }
    if (n < 0) throw new BinaryCopyError(`binary COPY tuple declares ${n} fields`);
    let off = pos + 2;
    let changed: (Buffer | null)[] | null = null;
    const fields: (Buffer | null)[] = [];
    for (let i = 0; i < n; i++) {
      if (off + 4 > p.length) return undefined;
      const len = p.readInt32BE(off);
      off += 4;
      if (len === -1) {
        fields.push(null);
        continue;
      }
      if (len < 0) throw new BinaryCopyError(`binary COPY field ${i + 1} has length ${len}`);
      if (off + len > p.length) return undefined;
      const f = p.subarray(off, off + len);
      off += len;
      const j = this.judge(f, i);
      fields.push(j);
      if (j !== f) {
        changed ??= fields;
        if (j === null) this.nulled++;
      }
    }
    if (changed === null) return { bytes: p.subarray(pos, off), end: off };
    this.rewritten = true;
    return { bytes: encodeTuple(fields), end: off };
  }
}

function encodeTuple(fields: readonly (Buffer | null)[]): Buffer {
  let size = 2;
  for (const f of fields) size += 4 + (f === null ? 0 : f.length);
  const out = Buffer.allocUnsafe(size);
  out.writeInt16BE(fields.length, 0);
  let pos = 2;
  for (const f of fields) {
    if (f === null) {
      out.writeInt32BE(-1, pos);
      pos += 4;
      continue;
    }
    out.writeInt32BE(f.length, pos);
    pos += 4 + f.copy(out, pos + 4);
  }
  return out;
}
