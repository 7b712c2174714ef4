// The token out of an HTTP Authorization header (RFC 6750 §2.1): `Bearer <token>`, scheme case-insensitive.

/** The token, or undefined when the header is absent or not a Bearer credential (the verifier then says `missing`). */
export function bearerToken(authorization: string | readonly string[] | undefined): string | undefined {
  // Two Authorization headers are ambiguous: refuse rather than pick one.
  if (authorization === undefined || Array.isArray(authorization)) return undefined;
  const m = /^\s*bearer\s+([^\s]+)\s*$/i.exec(authorization as string);
  return m?.[1];
}

/**
 * The bearer token of a Node request. Node keeps only the first of repeated Authorization headers
 * in `headers`, so the repeats are read from `headersDistinct`: two headers refuse (ambiguous).
 */
export function requestBearer(req: { readonly headers: { readonly authorization?: string | undefined }; readonly headersDistinct?: { readonly authorization?: readonly string[] | undefined } }): string | undefined {
  const all = req.headersDistinct?.authorization;
  if (all !== undefined && all.length !== 1) return undefined;
  return bearerToken(all?.[0] ?? req.headers.authorization);
}
