// Finds the test control plane's binaries exactly where test/cluster/build-tools.sh puts them (versions from the go.mod pins).
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type ToolName = 'kube-apiserver' | 'etcd' | 'helm' | 'kubectl';

const TOOLS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'tools');

/** Root of the binary cache; `CHAPERONE_CACHE` overrides it (as in the Makefile). */
export function cacheDir(): string {
  return process.env['CHAPERONE_CACHE'] ?? join(homedir(), '.cache', 'chaperone');
}

/** The version a tools module pins for `mod`, read from its go.mod (`require mod vX` or inside a require block). */
export function pinnedVersion(toolsModule: string, mod: string): string {
  const gomod = join(TOOLS_DIR, toolsModule, 'go.mod');
  for (const line of readFileSync(gomod, 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'require' && f[1] === mod && f[2] !== undefined) return f[2];
    if (f[0] === mod && f[1] !== undefined) return f[1];
  }
  throw new Error(`no 'require ${mod}' in ${gomod}; the tools module is broken`);
}

/** k8s.io/kubernetes version pinned for kube-apiserver (and a built kubectl), e.g. "v1.34.4". */
export function kubernetesVersion(): string {
  return pinnedVersion('kube-apiserver', 'k8s.io/kubernetes');
}

function cachedPath(name: ToolName): string {
  const bin = join(cacheDir(), 'bin');
  switch (name) {
    case 'kube-apiserver':
    case 'kubectl':
      return join(bin, `k8s-${kubernetesVersion()}`, name);
    case 'etcd':
      return join(bin, `etcd-${pinnedVersion('etcd', 'go.etcd.io/etcd/server/v3')}`, 'etcd');
    case 'helm':
      return join(bin, `helm-${pinnedVersion('helm', 'helm.sh/helm/v4')}`, 'helm');
  }
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(cmd: string): string | undefined {
  for (const d of (process.env['PATH'] ?? '').split(delimiter)) {
    if (d !== '' && isExecutable(join(d, cmd))) return join(d, cmd);
  }
  return undefined;
}

/**
 * Absolute path of a tool. Cached builds win; kubectl falls back to the machine's (build-tools.sh
 * builds one only when PATH has none). Throws with the command to run when a binary is missing.
 */
export function toolPath(name: ToolName): string {
  const cached = cachedPath(name);
  if (isExecutable(cached)) return cached;
  if (name === 'kubectl') {
    const sys = onPath('kubectl');
    if (sys !== undefined) return sys;
  }
  throw new Error(
    `${name} is not built: expected ${cached}. Run 'make cluster-bins' (bash test/cluster/build-tools.sh); ` +
      `a cold build takes minutes, later runs reuse the cache.`,
  );
}
