// The report server's HTTPS client, rebuilt when its CA file changes: the operator rotates the CA in the mounted ConfigMap and the kubelet swaps the file in place.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { KubeHttp, type KubeHttpOptions, type KubeResponse } from '../approvals/kube-http.ts';

/** Reads the CA before each report (every 30 s: a small file) and reconnects with the new one when it differs. */
export class ReportClient {
  private http: KubeHttp;
  private ca: string | undefined;

  /** Throws like KubeHttp when the CA file cannot be read at start. */
  constructor(private readonly o: KubeHttpOptions) {
    this.ca = o.caFile ? readFileSync(o.caFile, 'utf8') : undefined;
    this.http = new KubeHttp(o);
  }

  async request(method: string, path: string, body?: unknown): Promise<KubeResponse> {
    await this.refresh();
    return this.http.request(method, path, body);
  }

  /** A CA that cannot be read now (mid-swap) keeps the current one. */
  private async refresh(): Promise<void> {
    if (!this.o.caFile) return;
    const ca = await readFile(this.o.caFile, 'utf8').catch(() => undefined);
    if (ca === undefined || ca === this.ca) return;
    let next: KubeHttp;
    try {
      next = new KubeHttp(this.o);
    } catch {
      return;
    }
    this.http.close();
    this.http = next;
    this.ca = ca;
  }

  close(): void {
    this.http.close();
  }
}
