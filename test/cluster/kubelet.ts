// A kubelet stand-in for the demo and the e2e tests: writes a stored Pod's volumes to a temp dir and starts its containers' commands locally with the pod's env, args and files.
//
// The test control plane has no kubelet, so nothing would ever run the injected containers. This does
// the part of a kubelet that matters here: each volume a container mounts (Secret and ConfigMap keys,
// projected ServiceAccount tokens from a TokenRequest bound to the pod, the downward API, emptyDirs)
// is written under `<dir>/<mountPath>`, and absolute mount paths in the args, env and mounted files
// (the compiled config, a kubeconfig) are rewritten to those files. `https://kubernetes.default.svc`
// (cluster DNS in a real pod) is rewritten to the API server's loopback URL.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import type { ControlPlane } from './control-plane.ts';

const IN_CLUSTER_API = /https:\/\/kubernetes\.default\.svc(?![.\w-])/g;

export interface Materialized {
  /** The container's args with mount paths rewritten. */
  readonly args: string[];
  /** Its env: literal values, fieldRefs resolved, mount paths rewritten. */
  readonly env: Record<string, string>;
}

export class Kubelet {
  constructor(private readonly cp: ControlPlane, private readonly pod: V1Pod, private readonly dir: string) {}

  private get ns(): string {
    return this.pod.metadata?.namespace ?? 'default';
  }

  /** A TokenRequest bound to this pod, as the kubelet refreshes a projected token. */
  async token(audiences?: string[]): Promise<string> {
    const sa = this.pod.spec?.serviceAccountName ?? 'default';
    const r = await this.cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${this.ns}/serviceaccounts/${sa}/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
      spec: { expirationSeconds: 900, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: this.pod.metadata?.name ?? '', uid: this.pod.metadata?.uid ?? '' }, ...(audiences ? { audiences } : {}) },
    });
    if (r.status !== 201) throw new Error(`TokenRequest for ServiceAccount ${sa} failed: ${r.status} ${r.text.slice(0, 300)}`);
    return r.body.status.token;
  }

  private async keyData(kind: 'secrets' | 'configmaps', name: string): Promise<Record<string, string>> {
    const r = await this.cp.request<{ data?: Record<string, string> }>('admin', 'GET', `/api/v1/namespaces/${this.ns}/${kind}/${name}`);
    if (r.status !== 200) throw new Error(`${kind}/${name} for the pod's volume: ${r.status} ${r.text.slice(0, 200)}`);
    const data = r.body.data ?? {};
    return kind === 'secrets' ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : data;
  }

  private async itemsOf(kind: 'secrets' | 'configmaps', name: string, items: readonly { key: string; path: string }[] | undefined): Promise<Record<string, string>> {
    const data = await this.keyData(kind, name);
    const out: Record<string, string> = {};
    for (const it of items ?? Object.keys(data).map((k) => ({ key: k, path: k }))) {
      const v = data[it.key];
      if (v === undefined) throw new Error(`${kind}/${name} has no key ${it.key}`);
      out[it.path] = v;
    }
    return out;
  }

  /** The files of one volume, relative to its mount path (kube-root-ca.crt, absent without a controller-manager, is the cluster CA). */
  private async volumeFiles(v: V1Volume): Promise<Record<string, string>> {
    if (v.secret) return this.itemsOf('secrets', v.secret.secretName ?? '', v.secret.items);
    if (v.configMap) return this.itemsOf('configmaps', v.configMap.name ?? '', v.configMap.items);
    const out: Record<string, string> = {};
    for (const s of v.projected?.sources ?? []) {
      const t = s.serviceAccountToken;
      if (t) out[t.path] = await this.token(t.audience ? [t.audience] : undefined);
      for (const it of s.configMap?.items ?? []) out[it.path] = s.configMap?.name === 'kube-root-ca.crt' ? this.cp.caPem : (await this.keyData('configmaps', s.configMap?.name ?? ''))[it.key] ?? '';
      for (const it of s.downwardAPI?.items ?? []) out[it.path] = it.fieldRef?.fieldPath === 'metadata.namespace' ? this.ns : '';
      if (s.secret) Object.assign(out, await this.itemsOf('secrets', s.secret.name ?? '', s.secret.items));
    }
    return out;
  }

  /** Writes the container's volumes under dir/<mountPath>; returns args and env with mount paths and the in-cluster API URL rewritten. */
  async materialize(c: V1Container): Promise<Materialized> {
    const mapped: string[] = [];
    for (const m of c.volumeMounts ?? []) {
      const v = this.pod.spec?.volumes?.find((x) => x.name === m.name);
      if (!v) throw new Error(`container ${c.name} mounts volume ${m.name}, which the pod does not have`);
      await mkdir(join(this.dir, m.mountPath), { recursive: true }); // an emptyDir is just this
      for (const [p, content] of Object.entries(await this.volumeFiles(v))) {
        const file = join(this.dir, m.mountPath, p);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, content, { mode: 0o600 });
      }
      mapped.push(m.mountPath);
    }
    const rewrite = (s: string): string => mapped.reduce((acc, mp) => acc.split(`${mp}/`).join(`${join(this.dir, mp)}/`), s).replace(IN_CLUSTER_API, this.cp.url);
    const fields: Record<string, string> = { 'metadata.name': this.pod.metadata?.name ?? '', 'metadata.uid': this.pod.metadata?.uid ?? '', 'metadata.namespace': this.ns, 'spec.serviceAccountName': this.pod.spec?.serviceAccountName ?? '' };
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) env[e.name] = rewrite(e.value ?? fields[e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? '');
    return { args: (c.args ?? []).map(rewrite), env };
  }

  /** Rewrites a mounted file of container c (a kubeconfig, say) in place: mount paths and the in-cluster API URL. */
  async rewriteFile(file: string, c: V1Container): Promise<void> {
    const mapped = (c.volumeMounts ?? []).map((m) => m.mountPath);
    const text = await readFile(file, 'utf8');
    await writeFile(file, mapped.reduce((acc, mp) => acc.split(`${mp}/`).join(`${join(this.dir, mp)}/`), text).replace(IN_CLUSTER_API, this.cp.url));
  }

  /** Rewrites the compiled sidecar config (a mounted ConfigMap file named by `--config`) the same way, in place. */
  async rewriteConfig(args: readonly string[], c: V1Container): Promise<string> {
    const i = args.indexOf('--config');
    const file = i >= 0 ? args[i + 1] : undefined;
    if (file === undefined) throw new Error(`container ${c.name} has no --config argument`);
    await this.rewriteFile(file, c);
    return file;
  }
}

export interface RunningContainer {
  readonly child: ChildProcess;
  /** Recording lines and anything else on stdout (what `kubectl logs -c chaperone-sidecar` shows). */
  readonly stdoutFile: string;
  readonly stderrFile: string;
  stop(): Promise<void>;
}

/** Starts `bin` with the container's args and env only (plus PATH and extraEnv), stdout and stderr to files under dir. */
export function startContainer(bin: string, m: Materialized, o: { dir: string; name: string; cwd: string; extraEnv?: Record<string, string> }): RunningContainer {
  const stdoutFile = join(o.dir, `${o.name}.stdout`);
  const stderrFile = join(o.dir, `${o.name}.stderr`);
  const child = spawn(bin, m.args, { cwd: o.cwd, env: { PATH: process.env.PATH ?? '', ...o.extraEnv, ...m.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(stdoutFile);
  const err = createWriteStream(stderrFile);
  child.stdout?.pipe(out);
  child.stderr?.pipe(err);
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    child, stdoutFile, stderrFile,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await closed;
        clearTimeout(t);
      } else await closed;
      await Promise.all([new Promise((r) => out.end(r)), new Promise((r) => err.end(r))]);
    },
  };
}

export interface StartedSidecar extends RunningContainer {
  /** stdout and stderr so far (recording lines and logs). */
  output(): Promise<string>;
}

/**
 * The stored Pod's sidecar container, materialized and started as its own command, then waited for until
 * its admin listener says /readyz 200 (what the injected startup probe checks). Fails with its output if it exits.
 */
export async function startPodSidecar(kubelet: Kubelet, c: V1Container, o: { bin: string; dir: string; cwd: string; adminPort: number; extraEnv?: Record<string, string>; timeoutMs?: number }): Promise<StartedSidecar> {
  const m = await kubelet.materialize(c);
  await kubelet.rewriteConfig(m.args, c);
  const running = startContainer(o.bin, m, { dir: o.dir, name: c.name, cwd: o.cwd, ...(o.extraEnv ? { extraEnv: o.extraEnv } : {}) });
  const output = async (): Promise<string> => (await readFile(running.stdoutFile, 'utf8').catch(() => '')) + (await readFile(running.stderrFile, 'utf8').catch(() => ''));
  const deadline = Date.now() + (o.timeoutMs ?? 45_000);
  for (;;) {
    if (running.child.exitCode !== null || running.child.signalCode !== null) throw new Error(`sidecar exited (${running.child.exitCode ?? running.child.signalCode}): ${(await output()).slice(-2000)}`);
    const r = await fetch(`http://127.0.0.1:${o.adminPort}/readyz`).catch(() => undefined);
    if (r?.status === 200) break;
    if (Date.now() > deadline) {
      await running.stop();
      throw new Error(`sidecar not ready on admin port ${o.adminPort} after ${o.timeoutMs ?? 45_000} ms: ${(await output()).slice(-2000)}`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  return { ...running, output };
}
