// Checks that a parsed body is an admission.k8s.io/v1 AdmissionReview with a usable request, and says what is wrong when not (pure).
import { ADMISSION_API_VERSION, ADMISSION_KIND, type AdmissionRequest } from './admission.ts';

export type Decoded =
  | { readonly ok: true; readonly apiVersion: string; readonly request: AdmissionRequest }
  | { readonly ok: false; readonly message: string };

const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(message: string): Decoded {
  return { ok: false, message: `not a usable AdmissionReview: ${message}` };
}

function gvk(v: unknown, field: string, last: 'kind' | 'resource'): string | undefined {
  if (!isObject(v)) return `request.${field} is missing`;
  if (typeof v['version'] !== 'string' || typeof v[last] !== 'string' || typeof v['group'] !== 'string') {
    return `request.${field} needs string group, version and ${last}`;
  }
  return undefined;
}

function requestProblem(r: Record<string, unknown>): string | undefined {
  if (typeof r['uid'] !== 'string' || r['uid'] === '') return 'request.uid is missing (the response must echo it)';
  if (typeof r['operation'] !== 'string' || !OPERATIONS.has(r['operation'])) return `request.operation ${JSON.stringify(r['operation'])} is not one of CREATE, UPDATE, DELETE, CONNECT`;
  if (!isObject(r['userInfo'])) return 'request.userInfo is missing';
  return gvk(r['kind'], 'kind', 'kind') ?? gvk(r['resource'], 'resource', 'resource');
}

/** Only v1: the webhook configurations list admissionReviewVersions [v1], so anything else is not the API server. */
export function decodeReview(body: unknown): Decoded {
  if (!isObject(body)) return bad('the body must be a JSON object');
  if (body['kind'] !== ADMISSION_KIND) return bad(`kind is ${JSON.stringify(body['kind'])}, expected ${ADMISSION_KIND}`);
  if (body['apiVersion'] !== ADMISSION_API_VERSION) return bad(`apiVersion is ${JSON.stringify(body['apiVersion'])}; this webhook speaks ${ADMISSION_API_VERSION} only`);
  const r = body['request'];
  if (!isObject(r)) return bad('request is missing');
  const problem = requestProblem(r);
  if (problem) return bad(problem);
  return { ok: true, apiVersion: ADMISSION_API_VERSION, request: r as unknown as AdmissionRequest };
}
