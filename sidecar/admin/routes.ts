// The admin listener's route table: built-in read-only routes plus a clean place for protocol code to register more (local approvals).
import type { IncomingHttpHeaders } from 'node:http';

export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface AdminRequest {
  readonly method: AdminMethod;
  readonly url: URL;
  readonly headers: IncomingHttpHeaders;
  /** Every value of each header (Node keeps only the first Authorization in `headers`). */
  readonly headersDistinct?: NodeJS.Dict<string[]>;
  /** The request body, bounded by the server (DEFAULT_MAX_ADMIN_BODY_BYTES); empty for GET. */
  readonly body: Buffer;
}

export interface AdminResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** An object is sent as JSON. */
  readonly body: string | Buffer | object;
}

export type AdminHandler = (req: AdminRequest) => Promise<AdminResponse> | AdminResponse;

export interface AdminRoutes {
  /**
   * Registers a route. `path` is exact (`/approvals`) or a prefix ending in `/*` (`/approvals/*`).
   * Throws if the method and path are taken. The handler authenticates its own callers (e.g. an
   * approver-group token); the server only frames requests and bounds their size.
   */
  add(method: AdminMethod, path: string, handler: AdminHandler): void;
}

interface Route {
  readonly method: AdminMethod;
  readonly path: string;
  readonly prefix: boolean;
  readonly handler: AdminHandler;
}

export class RouteTable implements AdminRoutes {
  private readonly routes: Route[] = [];

  add(method: AdminMethod, path: string, handler: AdminHandler): void {
    if (!path.startsWith('/')) throw new Error(`admin route ${path}: a path starts with /`);
    const prefix = path.endsWith('/*');
    const p = prefix ? path.slice(0, -1) : path;
    if (this.routes.some((r) => r.method === method && r.path === p && r.prefix === prefix)) throw new Error(`admin route ${method} ${path} is already registered`);
    this.routes.push({ method, path: p, prefix, handler });
  }

  /** Exact routes win over prefixes; a longer prefix wins over a shorter one. */
  find(method: string, pathname: string): { readonly handler: AdminHandler } | { readonly handler: undefined; readonly allowed: readonly string[] } {
    const matching = this.routes.filter((r) => (r.prefix ? pathname.startsWith(r.path) : pathname === r.path));
    const best = matching
      .filter((r) => r.method === method)
      .sort((a, b) => Number(a.prefix) - Number(b.prefix) || b.path.length - a.path.length)[0];
    if (best) return { handler: best.handler };
    return { handler: undefined, allowed: [...new Set(matching.map((r) => r.method))] };
  }
}
