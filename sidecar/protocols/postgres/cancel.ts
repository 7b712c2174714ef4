// Cancel keys: each session gets a fake BackendKeyData; a CancelRequest with it cancels that session's upstream query.
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** What a session does when its key is presented: cancel the upstream query, or end an approval wait. */
export type CancelTarget = () => void;

interface Entry {
  readonly key: Buffer;
  readonly target: CancelTarget;
}

/** Per listener. The agent never learns the upstream backend's pid or key, so it cannot cancel other sessions upstream. */
export class CancelRegistry {
  private readonly byPid = new Map<number, Entry>();

  /** Registers a session; returns its fake pid and 4-byte key (protocol 3.0). */
  register(target: CancelTarget): { readonly processId: number; readonly secretKey: Buffer } {
    let processId = randomInt(1, 0x7fffffff);
    while (this.byPid.has(processId)) processId = randomInt(1, 0x7fffffff);
    const secretKey = randomBytes(4);
    this.byPid.set(processId, { key: secretKey, target });
    return { processId, secretKey };
  }

  unregister(processId: number): void {
    this.byPid.delete(processId);
  }

  /** True when pid and key matched a live session (whose target was called). A wrong key is ignored, as PostgreSQL does. */
  cancel(processId: number, secretKey: Buffer): boolean {
    const e = this.byPid.get(processId);
    if (!e || e.key.length !== secretKey.length || !timingSafeEqual(e.key, secretKey)) return false;
    e.target();
    return true;
  }

  get size(): number {
    return this.byPid.size;
  }
}
