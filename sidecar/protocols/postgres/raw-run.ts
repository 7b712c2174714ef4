// Joins frames forwarded untouched that lie back to back in one received chunk into a single socket write.

/**
 * A run of received bytes waiting to be written. `pass` extends it while the next untouched frame
 * starts where the run ends (same memory: the same chunk, in order); anything else — bytes of our
 * own, or a frame from elsewhere — flushes it first, so the output order is the input order.
 */
export class RawRun {
  private buf: Buffer | null = null;
  private len = 0;

  constructor(private readonly sink: (b: Buffer) => void) {}

  /** Bytes forwarded exactly as received. */
  pass(raw: Buffer): void {
    const b = this.buf;
    if (b !== null && raw.buffer === b.buffer && raw.byteOffset === b.byteOffset + this.len) {
      this.len += raw.length;
      return;
    }
    this.flush();
    this.buf = raw;
    this.len = raw.length;
  }

  /** Bytes we made (masked, refused, serialized): the run so far goes out first. */
  write(b: Buffer): void {
    this.flush();
    this.sink(b);
  }

  /** Writes the pending run, if any; call before the event loop regains control. */
  flush(): void {
    const b = this.buf;
    if (b === null) return;
    this.buf = null;
    this.sink(this.len === b.length ? b : Buffer.from(b.buffer, b.byteOffset, this.len));
  }
}
