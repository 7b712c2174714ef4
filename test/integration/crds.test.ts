// The CRDs on a real kube-apiserver: they install and become Established, every example is accepted, each CEL rule refuses what it must with its message, kubectl shows them.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { sharedControlPlane, type ApiResponse, type ControlPlane } from '../cluster/control-plane.ts';
import { toolPath } from '../cluster/tools.ts';
import { eventually } from '../env/wait.ts';
import { loadCrds, type LoadedCrd } from '../../operator/api/schema.ts';
import { RESOURCES, type AgentIdentity, type ApprovalRequest } from '../../operator/api/types.ts';

const run = promisify(execFile);
const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/policies/', import.meta.url));
const FIELD_MANAGER = 'chaperone-crds-test';

type Obj = Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string } };

let cp: ControlPlane;
let ns: string;
const crds: LoadedCrd[] = loadCrds();

function loadExamples(): Obj[] {
  const out: Obj[] = [];
  for (const file of readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(`${EXAMPLES_DIR}${file}`, 'utf8'))) {
      const o = doc.toJS() as Obj | null;
      if (o !== null) out.push(o);
    }
  }
  return out;
}
const examples = loadExamples();

function pluralOf(kind: string): string {
  const r = RESOURCES[kind as keyof typeof RESOURCES];
  assert.ok(r, `unknown kind ${kind}`);
  return r.plural;
}

function collection(kind: string): string {
  return `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/${pluralOf(kind)}`;
}

/** A deep copy of the example of `kind` (the first, or the one named `name`) in the test namespace. */
function example(kind: string, name?: string): Obj {
  const e = examples.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  assert.ok(e, `no example ${kind} ${name ?? ''}`);
  const o = structuredClone(e);
  o.metadata.namespace = ns;
  return o;
}

/** Sets (or with `undefined` deletes) the value at a JSON pointer; returns the object for chaining. */
function set<T extends object>(obj: T, at: string, value: unknown): T {
  const keys = at.split('/').slice(1);
  const last = keys.pop();
  assert.ok(last !== undefined);
  let node = obj as Record<string, unknown>;
  for (const k of keys) {
    node[k] ??= {};
    node = node[k] as Record<string, unknown>;
  }
  if (value === undefined) delete node[last];
  else node[last] = value;
  return obj;
}

function message(r: ApiResponse): string {
  const b = r.body as { message?: string } | string;
  return typeof b === 'string' ? b : (b.message ?? r.text);
}

async function create(obj: Obj, dryRun: boolean): Promise<ApiResponse> {
  return cp.request('admin', 'POST', `${collection(obj.kind)}${dryRun ? '?dryRun=All' : ''}`, obj);
}

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(toolPath('kubectl'), ['--kubeconfig', cp.kubeconfig('admin'), ...args]);
  return stdout;
}

before(async () => {
  cp = await sharedControlPlane();
  ns = await cp.createNamespace('crds');
  // Server-side apply: idempotent when another test file (or a reused control plane) installed them already.
  for (const { crd } of crds) {
    const r = await cp.request('admin', 'PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}?fieldManager=${FIELD_MANAGER}&force=true`, crd, {
      contentType: 'application/apply-patch+yaml',
    });
    assert.ok(r.status === 200 || r.status === 201, `installing ${crd.metadata.name}: ${r.status} ${message(r)}`);
  }
});

after(async () => {
  // CRDs are cluster-scoped and other test files may share this control plane: leave them installed.
  if (cp.owned) await cp.stop();
});

describe('CRDs install', () => {
  it('every CRD becomes Established with its names accepted', async () => {
    for (const { crd } of crds) {
      await eventually(
        async () => {
          const r = await cp.request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>('admin', 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
          const c = r.body.status?.conditions ?? [];
          const ok = (t: string): boolean => c.some((x) => x.type === t && x.status === 'True');
          return ok('Established') && ok('NamesAccepted') ? true : undefined;
        },
        { what: `${crd.metadata.name} Established and NamesAccepted` },
      );
    }
  });

  it('each resource is served (discovery caught up) in the test namespace', async () => {
    for (const { crd } of crds) {
      await eventually(async () => ((await cp.request('admin', 'GET', collection(crd.spec.names.kind))).status === 200 ? true : undefined), {
        what: `GET ${collection(crd.spec.names.kind)} answers 200`,
      });
    }
  });

  it('our short names and the chaperone category are in discovery, and no other resource uses the short names', async () => {
    const out = await kubectl('api-resources', '--no-headers', '-o', 'wide');
    for (const { crd } of crds) {
      const short = crd.spec.names.shortNames?.[0] ?? '';
      const rows = out.split('\n').filter((l) => l.split(/\s+/)[1]?.split(',').includes(short));
      assert.equal(rows.length, 1, `short name ${short} used by: ${rows.join(' | ')}`);
      assert.match(rows[0] ?? '', new RegExp(`^${crd.spec.names.plural}\\s`));
      assert.match(rows[0] ?? '', /chaperone\s*$/, 'category chaperone');
    }
  });
});

describe('examples are accepted by the real API server', () => {
  for (const e of examples) {
    it(`${e.kind} ${e.metadata.name}: server-side dry run, then create`, async () => {
      const dry = await create(example(e.kind, e.metadata.name), true);
      assert.equal(dry.status, 201, message(dry));
      const real = await create(example(e.kind, e.metadata.name), false);
      assert.equal(real.status, 201, message(real));
    });
  }

  it('defaults are applied as documented', async () => {
    const r = await cp.request<AgentIdentity>('admin', 'GET', `${collection('AgentIdentity')}/coding-agent`);
    assert.equal(r.status, 200, message(r));
    const spec = r.body.spec;
    assert.equal(spec.sidecar?.adminPort, 9901);
    assert.equal(spec.sidecar?.logLevel, 'info');
    assert.equal(spec.recording?.signing?.secretRef.key, 'ed25519.pem');
    assert.equal(spec.approvals?.backend, 'kubernetes');
    assert.equal(spec.connections[0]?.readOnly, false);
    assert.equal(spec.issuers?.[1]?.maxTokenLifetime, '1h');
    const bare = set(example('AgentIdentity'), '/metadata/name', 'bare-defaults');
    set(bare, '/spec', { connections: [{ name: 'api', protocol: 'http', localPort: 8080, upstream: { url: 'https://api.example.com' } }] });
    const made = await create(bare, true);
    assert.equal(made.status, 201, message(made));
    const b = made.body as AgentIdentity;
    assert.deepEqual(b.spec.issuers, [{ name: 'kubernetes', type: 'kubernetes', audiences: ['chaperone'], usernameClaim: 'sub', groupsClaim: 'groups', maxTokenLifetime: '1h' }]);
    assert.equal(b.spec.interception?.mode, 'explicit');
    assert.equal(b.spec.recording?.sink, 'stdout');
  });
});

interface Case {
  readonly name: string;
  readonly obj: () => Obj;
  /** A substring of the API server's message. */
  readonly expect: string;
}

const ai = (): Obj => example('AgentIdentity');
const mp = (): Obj => example('MaskingPolicy');
const rule = (): Obj => example('ApprovalRule', 'delete-needs-approval');
const areq = (): Obj => example('ApprovalRequest');
const pg = '/spec/connections/0';
const gh = '/spec/connections/1';
const kube = '/spec/connections/2';

/** Each invalid object, and the message the API server must answer with. */
const CEL_CASES: readonly Case[] = [
  { name: 'postgres without database', obj: () => set(ai(), `${pg}/database`, undefined), expect: 'a postgres connection needs database' },
  { name: 'postgres without upstream.host', obj: () => set(ai(), `${pg}/upstream`, { port: 5432 }), expect: 'a postgres connection needs upstream.host' },
  { name: 'postgres with a url', obj: () => set(ai(), `${pg}/upstream/url`, 'https://db.example.com'), expect: 'a postgres connection takes upstream.host and upstream.port, not upstream.url' },
  { name: 'postgres without a Secret', obj: () => set(ai(), `${pg}/credential`, {}), expect: 'a postgres connection needs credential.secretRef' },
  { name: 'database on http', obj: () => set(ai(), `${gh}/database`, 'x'), expect: 'database is for postgres connections only' },
  { name: 'http without url', obj: () => set(ai(), `${gh}/upstream`, {}), expect: 'an http connection needs upstream.url with scheme' },
  { name: 'http with host', obj: () => set(ai(), `${gh}/upstream/host`, 'api.github.com'), expect: 'http and kubernetes connections take upstream.url' },
  { name: 'http:// url with tls', obj: () => set(set(ai(), `${gh}/upstream/url`, 'http://api.internal'), `${gh}/tls`, { mode: 'verify-full' }), expect: 'an http:// upstream has no TLS' },
  { name: 'http Secret without type', obj: () => set(ai(), `${gh}/credential/type`, undefined), expect: 'an http credential needs both secretRef and type' },
  { name: 'Header without headerName', obj: () => set(ai(), `${gh}/credential/type`, 'Header'), expect: 'credential type Header needs headerName' },
  { name: 'Query without queryParam', obj: () => set(ai(), `${gh}/credential/type`, 'Query'), expect: 'credential type Query needs queryParam' },
  { name: 'queryParam with Bearer', obj: () => set(ai(), `${gh}/credential/queryParam`, 'key'), expect: 'credential.queryParam is for type Query only' },
  { name: 'headerName with Bearer', obj: () => set(ai(), `${gh}/credential/headerName`, 'X-Key'), expect: 'credential.headerName is for type Header only' },
  { name: 'credential type on postgres', obj: () => set(ai(), `${pg}/credential/type`, 'Bearer'), expect: 'credential.type (Bearer, Basic, Header, Query) is for http connections only' },
  { name: 'serviceAccountName on http', obj: () => set(ai(), `${gh}/credential/serviceAccountName`, 'sa'), expect: 'credential.serviceAccountName is for kubernetes connections only' },
  { name: 'guardrails.allowProxy on http', obj: () => set(ai(), `${gh}/guardrails`, { allowProxy: true }), expect: 'guardrails is for kubernetes connections only' },
  { name: 'guardrails.allowTokenRequests on postgres', obj: () => set(ai(), `${pg}/guardrails`, { allowTokenRequests: true }), expect: 'guardrails is for kubernetes connections only' },
  { name: 'kubernetes without serviceAccountName', obj: () => set(ai(), `${kube}/credential`, {}), expect: 'a kubernetes connection needs credential.serviceAccountName' },
  { name: 'kubernetes with a Secret', obj: () => set(ai(), `${kube}/credential/secretRef`, { name: 's' }), expect: 'a kubernetes connection uses credential.serviceAccountName, not credential.secretRef' },
  { name: 'two CA sources', obj: () => set(ai(), `${pg}/tls/caConfigMapRef`, { name: 'ca' }), expect: 'set at most one of tls.caSecretRef and tls.caConfigMapRef' },
  { name: 'tls disable with a CA', obj: () => set(ai(), `${pg}/tls/mode`, 'disable'), expect: 'tls.mode disable takes no CA, serverName or client certificate' },
  { name: 'duplicate localPort', obj: () => set(ai(), `${gh}/localPort`, 5432), expect: 'connections[].localPort must be unique' },
  { name: 'localPort on the admin port', obj: () => set(ai(), `${gh}/localPort`, 9901), expect: "a connection's localPort equals sidecar.adminPort" },
  { name: 'forward proxy on a connection port', obj: () => set(ai(), '/spec/interception/forwardProxy', { localPort: 8080, allowedHosts: ['*.github.com'] }), expect: 'interception.forwardProxy.localPort equals' },
  { name: 'duplicate connection name', obj: () => set(ai(), `${gh}/name`, 'orders-db'), expect: 'Duplicate value' },
  { name: 'two kubernetes issuers', obj: () => set(ai(), '/spec/issuers/1', { name: 'k2', type: 'kubernetes' }), expect: 'at most one issuer may have type kubernetes' },
  { name: 'oidc issuer without issuerURL', obj: () => set(ai(), '/spec/issuers/1/issuerURL', undefined), expect: 'an oidc issuer needs issuerURL' },
  { name: 'caConfigMapRef on the kubernetes issuer', obj: () => set(ai(), '/spec/issuers/0/caConfigMapRef', { name: 'ca' }), expect: 'caConfigMapRef is for oidc issuers' },
  { name: 'token lifetime above 24h', obj: () => set(ai(), '/spec/issuers/1/maxTokenLifetime', '48h'), expect: 'maxTokenLifetime must be between 1m and 24h' },
  { name: 'deny-by-default without transparent', obj: () => set(ai(), '/spec/interception/mode', 'explicit'), expect: 'egress.policy deny-by-default needs interception.mode transparent' },
  { name: 'egress.allow without deny-by-default', obj: () => set(ai(), '/spec/interception/egress/policy', 'allow'), expect: 'egress.allow lists exceptions to deny-by-default' },
  { name: 'file sink without a path', obj: () => set(ai(), '/spec/recording/sink', 'file'), expect: 'recording sink file needs recording.file.path' },
  { name: 'file settings with the stdout sink', obj: () => set(ai(), '/spec/recording/file', { path: '/var/lib/chaperone/rec.jsonl' }), expect: 'recording.file is only used with sink file' },
  { name: 'checkpoint interval under 1s', obj: () => set(ai(), '/spec/recording/signing/checkpointInterval', '10ms'), expect: 'checkpointInterval must be between 1s and 24h' },
  { name: 'identity name longer than a label value', obj: () => set(ai(), '/metadata/name', `a${'b'.repeat(63)}`), expect: 'must be at most 63 characters' },
  { name: 'MaskingPolicy selector that selects nothing', obj: () => set(mp(), '/spec/selector', { connections: ['orders-db'] }), expect: 'selector needs identities (names) or identitySelector' },
  { name: 'detector both enabled and disabled', obj: () => set(mp(), '/spec/detectors/enable', ['email']), expect: 'a detector id cannot be in both detectors.enable and detectors.disable' },
  { name: 'category both enabled and disabled', obj: () => set(mp(), '/spec/detectors/disableCategories', ['pii']), expect: 'a category cannot be in both' },
  { name: 'hmac without a key', obj: () => set(mp(), '/spec/replacement', { type: 'hmac' }), expect: 'replacement type hmac needs keySecretRef' },
  { name: 'hmac key on a placeholder', obj: () => set(mp(), '/spec/columns/1/replacement', { type: 'placeholder', keySecretRef: { name: 'k' } }), expect: 'replacement type hmac needs keySecretRef (the HMAC key), and only hmac takes one' },
  { name: 'keepLast on a placeholder', obj: () => set(mp(), '/spec/patterns/0/replacement', { type: 'placeholder', keepLast: 2 }), expect: 'keepLast and maskChar are for replacement type partial' },
  { name: 'format on partial', obj: () => set(mp(), '/spec/columns/1/replacement/format', 'x'), expect: 'format is for replacement type placeholder' },
  { name: 'Skip column with a replacement', obj: () => set(mp(), '/spec/columns/3/replacement', { type: 'placeholder' }), expect: 'a Skip column rule takes no replacement' },
  { name: 'label requirement In without values', obj: () => set(mp(), '/spec/selector/identitySelector/matchExpressions', [{ key: 'team', operator: 'In' }]), expect: 'operators In and NotIn need values' },
  { name: 'duplicate pattern name', obj: () => set(mp(), '/spec/patterns/1', { name: 'internal-service-token', regex: 'x' }), expect: 'Duplicate value' },
  { name: 'RequireApproval without approvers', obj: () => set(rule(), '/spec/approval', undefined), expect: 'action RequireApproval needs approval.approvers' },
  { name: 'Deny with approvers', obj: () => set(rule(), '/spec/action', 'Deny'), expect: 'approval (approvers, timeout, scope) is only for action RequireApproval' },
  { name: 'approvers empty', obj: () => set(rule(), '/spec/approval/approvers', { groups: [] }), expect: 'approval.approvers needs at least one group or user' },
  { name: 'window scope without a window', obj: () => set(rule(), '/spec/approval/scope', 'window'), expect: 'approval scope window needs window' },
  { name: 'window on statement scope', obj: () => set(rule(), '/spec/approval/window', '30m'), expect: 'approval.window is only for scope window' },
  { name: 'mode each without groups', obj: () => set(set(rule(), '/spec/approval/approvers', { users: ['alice', 'bob'] }), '/spec/approval/mode', 'each'), expect: 'approval mode each needs approvers.groups' },
  { name: 'more approvals than listed users', obj: () => set(set(rule(), '/spec/approval/approvers', { users: ['alice'] }), '/spec/approval/required', 2), expect: 'approval.required exceeds the number of approvers.users' },
  { name: 'timeout under 10s', obj: () => set(rule(), '/spec/approval/timeout', '5s'), expect: 'approval.timeout must be between 10s and 24h' },
  { name: 'window over 24h', obj: () => set(set(rule(), '/spec/approval/scope', 'window'), '/spec/approval/window', '25h'), expect: 'approval.window must be between 1m and 24h' },
  { name: 'match with no protocol block', obj: () => set(rule(), '/spec/match', {}), expect: 'match needs at least one of sql, http or kubernetes' },
  { name: 'absent query parameter with values', obj: () => set(rule(), '/spec/match/http', { query: [{ name: 'force', present: false, values: ['true'] }] }), expect: 'a query predicate with present: false takes no values' },
  { name: 'absent body path with a pattern', obj: () => set(rule(), '/spec/match/http', { body: [{ path: 'force', present: false, pattern: 'x' }] }), expect: 'a body predicate with present: false takes no values or pattern' },
  { name: 'ApprovalRequest created with an unconsumed review', obj: () => set(areq(), '/spec/review', { decision: 'Approve' }), expect: 'spec.review was not consumed' },
  { name: 'http details on a postgres command', obj: () => set(areq(), '/spec/command/http', { method: 'GET' }), expect: 'command.http is for protocol http' },
  { name: 'window snapshot without a window', obj: () => set(areq(), '/spec/approval/scope', 'window'), expect: 'approval.window is set exactly when approval.scope is window' },
];

describe('CEL rules refuse invalid objects with their message', () => {
  for (const c of CEL_CASES) {
    it(`${c.name} → “${c.expect}”`, async () => {
      const r = await create(c.obj(), true);
      assert.equal(r.status, 422, `expected 422 Invalid, got ${r.status}: ${message(r)}`);
      assert.ok(message(r).includes(c.expect), `message does not mention “${c.expect}”: ${message(r)}`);
    });
  }

  it('the guardrails opt-outs are accepted on a kubernetes connection', async () => {
    const r = await create(set(set(ai(), '/metadata/name', 'base-guardrails'), `${kube}/guardrails`, { allowProxy: true, allowTokenRequests: true }), true);
    assert.equal(r.status, 201, message(r));
  });

  it('the unmodified bases of the table are valid (so each case fails for its own reason)', async () => {
    for (const o of [ai(), mp(), rule(), areq()]) {
      const r = await create(set(o, '/metadata/name', `base-${o.kind.toLowerCase()}`), true);
      assert.equal(r.status, 201, `${o.kind}: ${message(r)}`);
    }
  });
});

describe('ApprovalRequest: spec immutable, reviews append-only, decided requests frozen', () => {
  const name = 'immutability';
  const path = (): string => `${collection('ApprovalRequest')}/${name}`;
  const mergePatch = (body: unknown, sub = ''): Promise<ApiResponse> => cp.request('admin', 'PATCH', `${path()}${sub}`, body, { contentType: 'application/merge-patch+json' });
  const jsonPatch = (ops: unknown[], sub = ''): Promise<ApiResponse> => cp.request('admin', 'PATCH', `${path()}${sub}`, ops, { contentType: 'application/json-patch+json' });
  const review = (username: string, decision = 'Approve'): object => ({ decision, reason: 'ticket OPS-1', reviewer: { username, groups: ['db-approvers'] }, time: '2030-01-01T12:01:00Z' });

  before(async () => {
    const r = await create(set(areq(), '/metadata/name', name), false);
    assert.equal(r.status, 201, message(r));
  });

  const refused: Array<[string, () => Promise<ApiResponse>, string]> = [
    ['changing the command text', () => mergePatch({ spec: { command: { text: 'DELETE FROM public.orders' } } }), 'spec.command is immutable'],
    ['changing the hash', () => mergePatch({ spec: { command: { sha256: 'a'.repeat(64) } } }), 'spec.command is immutable'],
    ['changing the identity', () => mergePatch({ spec: { identity: 'other' } }), 'spec.identity is immutable'],
    ['changing the requester', () => mergePatch({ spec: { requester: { groups: ['db-approvers'] } } }), 'spec.requester is immutable'],
    ['changing the approval snapshot', () => mergePatch({ spec: { approval: { approvers: { groups: ['developers'] } } } }), 'spec.approval is immutable'],
    ['extending expiresAt', () => mergePatch({ spec: { expiresAt: '2031-01-01T00:00:00Z' } }), 'spec.expiresAt is immutable'],
    ['removing the purpose', () => mergePatch({ spec: { purpose: null } }), 'spec.pod and spec.purpose cannot be added or removed'],
    ['a merge-patched review the webhook did not consume', () => mergePatch({ spec: { review: { decision: 'Approve', reason: 'ok' } } }), 'spec.review was not consumed'],
  ];
  for (const [what, act, expect] of refused) {
    it(`refuses ${what}`, async () => {
      const r = await act();
      assert.equal(r.status, 422, message(r));
      assert.ok(message(r).includes(expect), message(r));
    });
  }

  it('appends reviews, and refuses editing or removing one', async () => {
    let r = await jsonPatch([{ op: 'add', path: '/spec/reviews', value: [review('approver')] }]);
    assert.equal(r.status, 200, message(r));
    r = await jsonPatch([{ op: 'add', path: '/spec/reviews/-', value: review('second-approver') }]);
    assert.equal(r.status, 200, message(r));
    assert.equal((r.body as ApprovalRequest).spec.reviews?.length, 2);
    r = await jsonPatch([{ op: 'replace', path: '/spec/reviews/0/reason', value: 'edited' }]);
    assert.ok(r.status === 422 && message(r).includes('spec.reviews is append-only'), message(r));
    r = await jsonPatch([{ op: 'remove', path: '/spec/reviews/0' }]);
    assert.ok(r.status === 422 && message(r).includes('spec.reviews is append-only'), message(r));
    r = await jsonPatch([{ op: 'remove', path: '/spec/reviews' }]);
    assert.ok(r.status === 422 && message(r).includes('reviews cannot be removed'), message(r));
  });

  it('a review without the stamped reviewer is refused by the schema', async () => {
    const r = await jsonPatch([{ op: 'add', path: '/spec/reviews/-', value: { decision: 'Approve' } }]);
    assert.equal(r.status, 422, message(r));
    assert.match(message(r), /reviewer: Required value/);
  });

  it('once decided, the spec is frozen and the phase cannot go back', async () => {
    let r = await mergePatch({ status: { phase: 'Approved', approvals: 2, decidedAt: '2030-01-01T12:02:00Z' } }, '/status');
    assert.equal(r.status, 200, message(r));
    r = await jsonPatch([{ op: 'add', path: '/spec/reviews/-', value: review('late', 'Deny') }]);
    assert.ok(r.status === 422 && message(r).includes('the request is decided'), message(r));
    r = await mergePatch({ status: { phase: 'Pending' } }, '/status');
    assert.ok(r.status === 422 && message(r).includes('status.phase moves only from Pending'), message(r));
    r = await mergePatch({ status: { phase: 'Denied' } }, '/status');
    assert.ok(r.status === 422 && message(r).includes('status.phase moves only from Pending'), message(r));
    // Labels stay editable (garbage collection, tooling): only the spec is frozen.
    r = await mergePatch({ metadata: { labels: { 'chaperone.dev/archived': 'true' } } });
    assert.equal(r.status, 200, message(r));
  });
});

describe('kubectl shows the resources', () => {
  it('kubectl get aid prints the printer columns', async () => {
    const out = await kubectl('get', 'aid', '-n', ns, '-o', 'wide');
    const [header, ...rows] = out.trim().split('\n');
    assert.match(header ?? '', /^NAME\s+READY\s+REASON\s+INTERCEPTION\s+PODS\s+SESSIONS\s+AGE$/);
    assert.ok(rows.some((l) => /^coding-agent\s+transparent\s+/.test(l)), out);
  });

  it('kubectl get areq shows phase, identity, connection and the command summary', async () => {
    const out = await kubectl('get', 'areq', 'immutability', '-n', ns);
    assert.match(out, /^NAME\s+PHASE\s+IDENTITY\s+CONNECTION\s+COMMAND\s+EXPIRES\s+AGE$/m);
    assert.match(out, /immutability\s+Approved\s+coding-agent\s+orders-db\s+DELETE FROM public\.orders/);
  });

  it('kubectl get ar and mp use their short names', async () => {
    const ar = await kubectl('get', 'ar', '-n', ns);
    assert.match(ar, /^NAME\s+ACTION\s+PRIORITY\s+READY\s+AGE$/m);
    assert.match(ar, /^deny-ddl\s+Deny\s+900\s/m);
    assert.match(ar, /^delete-needs-approval\s+RequireApproval\s+500\s/m);
    assert.match(await kubectl('get', 'mp', '-n', ns), /^payments-data\s/m);
  });

  it('kubectl get chaperone lists all four kinds', async () => {
    const out = await kubectl('get', 'chaperone', '-n', ns, '-o', 'name');
    for (const { crd } of crds) assert.match(out, new RegExp(`^${crd.spec.names.singular}\\.chaperone\\.dev/`, 'm'), crd.spec.names.kind);
  });

  it('kubectl explain reads the descriptions from the published schema', async () => {
    // The OpenAPI document is republished asynchronously after a CRD change: poll until it shows.
    const out = await eventually(
      async () => {
        const o = await kubectl('explain', 'agentidentities.spec.connections.credential', '--api-version=chaperone.dev/v1alpha1');
        return /mounted only into the sidecar\s+container/.test(o) ? o : undefined;
      },
      { what: 'kubectl explain to show the credential description' },
    );
    assert.match(out, /serviceAccountName\s+<string>/);
  });
});
