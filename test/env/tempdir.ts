// Temp dirs for test environments that say who owns them, so a later run can sweep what a SIGKILLed run left.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, killGroupSync } from './process.ts';

const OWNER_FILE = '.owner-pid';

/** Prefixes our helpers use under os.tmpdir(); leftovers.ts looks for exactly these. */
export const TEMP_PREFIXES = ['chaperone-cp-', 'chaperone-pg-'] as const;

/** Processes whose command line mentions `needle` (e.g. a temp dir), from /proc. */
export function processesMentioning(needle: string): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    if (cmd.includes(needle) && isAlive(pid)) found.push({ pid, cmd });
  }
  return found;
}

/**
 * Removes `${tmpdir}/${prefix}*` dirs whose owner process is gone. Their daemons died with the owner
 * (parent-death signal), but a SIGKILLed owner could not delete the directory.
 */
export function sweepStale(prefix: string, parent = tmpdir()): string[] {
  const swept: string[] = [];
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const dir = join(parent, name);
    const ownerFile = join(dir, OWNER_FILE);
    if (!existsSync(ownerFile)) continue;
    const owner = Number(readFileSync(ownerFile, 'utf8'));
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) continue;
    for (const p of processesMentioning(dir)) killGroupSync(p.pid);
    rmSync(dir, { recursive: true, force: true });
    swept.push(dir);
  }
  return swept;
}

/** mkdtemp under `parent` with an owner-pid file, after sweeping stale dirs of the same prefix. */
export async function ownedTempDir(prefix: string, parent = tmpdir()): Promise<string> {
  sweepStale(prefix, parent);
  const dir = await mkdtemp(join(parent, prefix));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  return dir;
}
