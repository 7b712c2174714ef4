// IP addresses and CIDRs in the exact spelling iptables-save prints (canonical, host bits cleared), so planned and applied rules compare as text (pure).
import { SocketAddress, isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Cidr {
  readonly family: Family;
  /** Network address, canonical (v6 per RFC 5952, the way iptables-save prints it). */
  readonly network: string;
  readonly prefix: number;
}

export function ipFamily(address: string): Family | undefined {
  if (isIPv4(address)) return 4;
  if (isIPv6(address)) return 6;
  return undefined;
}

/** `FD00:0::1` → `fd00::1`; v4 unchanged. Throws on a non-address. */
export function canonicalIp(address: string): string {
  const family = ipFamily(address);
  if (family === undefined) throw new Error(`${JSON.stringify(address)} is not an IP address`);
  return new SocketAddress({ address, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

function v4Bytes(address: string): number[] {
  return address.split('.').map((x) => Number(x));
}

/** 16 bytes of a v6 address (handles `::` and an embedded dotted v4 tail). */
function v6Bytes(address: string): number[] {
  let text = address;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail.push(...v4Bytes(text.slice(lastColon + 1)));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = all.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function formatBytes(family: Family, bytes: readonly number[]): string {
  if (family === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return canonicalIp(groups.join(':'));
}

/** `10.1.2.3/8` → 10.0.0.0/8; a bare address is a host route (/32, /128). Throws with the reason on anything else. */
export function parseCidr(text: string): Cidr {
  const [addr = '', len, extra] = text.trim().split('/');
  const family = ipFamily(addr);
  if (family === undefined || extra !== undefined) throw new Error(`${JSON.stringify(text)} is not a CIDR (want e.g. 10.0.0.0/8 or fd00::/8)`);
  const max = family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!/^\d{1,3}$/.test(len ?? String(max)) || prefix > max) throw new Error(`${JSON.stringify(text)}: the prefix length must be 0..${max}`);
  const bytes = family === 4 ? v4Bytes(addr) : v6Bytes(addr);
  const masked = bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
  return { family, network: formatBytes(family, masked), prefix };
}

export function formatCidr(c: Cidr): string {
  return `${c.network}/${c.prefix}`;
}

export function isLoopback(address: string): boolean {
  const family = ipFamily(address);
  if (family === 4) return address.startsWith('127.');
  return family === 6 && canonicalIp(address) === '::1';
}

/** Whether a listener on `listenHost` receives what REDIRECT sends: locally generated packets go to 127.0.0.1 (v4) or ::1 (v6); a wildcard accepts those too. */
export function listensOn(listenHost: string, family: Family): boolean {
  const h = listenHost === 'localhost' ? (family === 4 ? '127.0.0.1' : '::1') : listenHost;
  if (ipFamily(h) === undefined) return false;
  const c = canonicalIp(h);
  if (c === '::') return true; // a dual-stack socket
  return family === 4 ? c === '127.0.0.1' || c === '0.0.0.0' : c === '::1';
}
