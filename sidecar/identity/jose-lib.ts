// The jose functions the verifier runs, loaded on the first token to check rather than at start (~2 MB of idle RSS); a failed load is not cached.
// Subpath exports, not the package index: the index loads every module (JWE, remote JWKS, key
// generation...), ~9 MB more RSS (measured). The JWKS/discovery prefetch at start is plain fetch and
// needs none of this; a load failure makes verify() refuse the token (fail closed: jwks-unavailable, 28000).
import type { decodeJwt } from 'jose/jwt/decode';
import type { decodeProtectedHeader } from 'jose/decode/protected_header';
import type * as JoseErrors from 'jose/errors';
import type { jwtVerify } from 'jose/jwt/verify';
import type { createLocalJWKSet } from 'jose/jwks/local';

export interface JoseLib {
  readonly decodeJwt: typeof decodeJwt;
  readonly decodeProtectedHeader: typeof decodeProtectedHeader;
  readonly errors: typeof JoseErrors;
  readonly jwtVerify: typeof jwtVerify;
  readonly createLocalJWKSet: typeof createLocalJWKSet;
}

let loading: Promise<JoseLib> | undefined;
let loaded: JoseLib | undefined;

async function load(): Promise<JoseLib> {
  const [d, h, errors, v, l] = await Promise.all([
    import('jose/jwt/decode'),
    import('jose/decode/protected_header'),
    import('jose/errors'),
    import('jose/jwt/verify'),
    import('jose/jwks/local'),
  ]);
  return { decodeJwt: d.decodeJwt, decodeProtectedHeader: h.decodeProtectedHeader, errors, jwtVerify: v.jwtVerify, createLocalJWKSet: l.createLocalJWKSet };
}

/** jose, loaded once; concurrent first callers share one load, and a failed load is retried by the next caller. */
export function loadJose(): Promise<JoseLib> {
  if (loaded !== undefined) return Promise.resolve(loaded);
  loading ??= load().then(
    (lib) => (loaded = lib),
    (e: unknown) => {
      loading = undefined;
      throw new Error(`the JWT library (jose) could not be loaded: ${(e as Error).message}`);
    },
  );
  return loading;
}
