// Hands the webhook's serving pair to the audit server and the CA distributor: one certificate, one rotation, for both listeners.
import type { TlsMaterial } from '../server/webhook-server.ts';

export type { TlsMaterial } from '../server/webhook-server.ts';

/** The latest pair plus subscribers; `set` from main.ts's onWebhookTls (or a watched directory). */
export class TlsRelay {
  private last: TlsMaterial | undefined;
  private readonly subs = new Set<(t: TlsMaterial) => void>();

  set(t: TlsMaterial): void {
    if (this.last && this.last.cert === t.cert && this.last.key === t.key && this.last.ca === t.ca) return;
    this.last = t;
    for (const s of this.subs) s(t);
  }

  current(): TlsMaterial | undefined {
    return this.last;
  }

  /** Called now (if a pair is known) and on every change; returns the unsubscribe. */
  subscribe(fn: (t: TlsMaterial) => void): () => void {
    this.subs.add(fn);
    if (this.last) fn(this.last);
    return () => this.subs.delete(fn);
  }
}
