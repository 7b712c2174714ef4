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
 * in `headers`, so repeats are found in `headersDistinct` (the bytes received): two headers refuse
 * (ambiguous). The token itself is read from `headers`, which the egress proxy rewrites.
 */
export function requestBearer(req: { readonly headers: { readonly authorization?: string | undefined }; readonly headersDistinct?: { readonly authorization?: readonly string[] | undefined } }): string | undefined {
  if ((req.headersDistinct?.authorization?.length ?? 0) > 1) return undefined;
  return bearerToken(req.headers.authorization);
}
