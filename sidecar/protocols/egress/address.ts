// Which resolved addresses the egress proxy may connect to (pure): the SSRF / DNS-rebinding guard, checked on the address actually dialed.
import { BlockList, isIP } from 'node:net';
import type { AddressScope } from './allow-list.ts';

/** What kind of address it is, most restrictive first. */
export type AddressClass = 'unspecified' | 'multicast' | 'reserved' | 'metadata' | 'loopback' | 'link-local' | 'private' | 'public';

/** Cloud metadata services (AWS, GCP, Azure, OpenStack share the v4 one; AWS's IPv6 endpoint; Alibaba). */
export const METADATA_ADDRESSES: readonly string[] = ['169.254.169.254', 'fd00:ec2::254', '100.100.100.200'];

function list(v4: readonly string[], v6: readonly string[]): BlockList {
  const b = new BlockList();
  for (const c of v4) {
    const [net, bits] = c.split('/');
    b.addSubnet(net ?? '', Number(bits), 'ipv4');
  }
  for (const c of v6) {
    const [net, bits] = c.split('/');
    b.addSubnet(net ?? '', Number(bits), 'ipv6');
  }
  return b;
}

const UNSPECIFIED = list(['0.0.0.0/8'], ['::/128']);
const MULTICAST = list(['224.0.0.0/4', '255.255.255.255/32'], ['ff00::/8']);
const RESERVED = list(['240.0.0.0/4', '192.0.0.0/24', '192.0.2.0/24', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24'], ['2001:db8::/32', '100::/64']);
const LOOPBACK = list(['127.0.0.0/8'], ['::1/128']);
const LINK_LOCAL = list(['169.254.0.0/16'], ['fe80::/10']);
const PRIVATE = list(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'], ['fc00::/7']);

/** The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) IPv6 address: judged as that IPv4 address. */
export function embeddedV4(ip6: string): string | undefined {
  const words = expand6(ip6);
  if (words === undefined) return undefined;
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zero = (from: number, to: number): boolean => words.slice(from, to).every((w) => w === 0);
  if (zero(0, 5) && words[5] === 0xffff) return v4(words[6]!, words[7]!);
  if (words[0] === 0x64 && words[1] === 0xff9b && zero(2, 6)) return v4(words[6]!, words[7]!);
  if (words[0] === 0x2002) return v4(words[1]!, words[2]!);
  return undefined;
}

/** Eight 16-bit words of an IPv6 address (with an embedded dotted quad allowed), or undefined. */
function expand6(ip: string): number[] | undefined {
  if (isIP(ip) !== 6) return undefined;
  let s = ip.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split('.').map(Number);
    s = `${s.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const words = [...h, ...new Array<string>(Math.max(0, fill)).fill('0'), ...t].map((w) => parseInt(w, 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}

export function classifyAddress(ip: string): AddressClass {
  const family = isIP(ip);
  if (family === 0) return 'reserved';
  if (family === 6) {
    const v4 = embeddedV4(ip);
    if (v4 !== undefined) return classifyAddress(v4);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (METADATA_ADDRESSES.some((m) => isIP(m) === family && single(m).check(ip, type))) return 'metadata';
  if (UNSPECIFIED.check(ip, type)) return 'unspecified';
  if (MULTICAST.check(ip, type)) return 'multicast';
  if (RESERVED.check(ip, type)) return 'reserved';
  if (LOOPBACK.check(ip, type)) return 'loopback';
  if (LINK_LOCAL.check(ip, type)) return 'link-local';
  if (PRIVATE.check(ip, type)) return 'private';
  return 'public';
}

const singles = new Map<string, BlockList>();
function single(ip: string): BlockList {
  let b = singles.get(ip);
  if (b === undefined) {
    b = new BlockList();
    b.addAddress(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
    singles.set(ip, b);
  }
  return b;
}

/** The sidecar's own listeners: an address:port that lands on one of them is never a way out. */
export interface OwnListeners {
  readonly ports: ReadonlySet<number>;
  /** Addresses of this host (loopback and every interface): a wildcard-bound listener answers on all of them. */
  readonly localAddresses: ReadonlySet<string>;
}

export type AddressDecision = { readonly ok: true } | { readonly ok: false; readonly reason: 'address-blocked' | 'own-listener'; readonly message: string };

const SCOPE_ALLOWS: Readonly<Record<AddressScope, ReadonlySet<AddressClass>>> = {
  public: new Set(['public']),
  private: new Set(['public', 'private']),
  any: new Set(['public', 'private', 'loopback', 'link-local', 'metadata']),
};

function normalized(ip: string): string {
  const v4 = isIP(ip) === 6 ? embeddedV4(ip) : undefined;
  return v4 !== undefined && expand6(ip)?.[5] === 0xffff ? v4 : ip.toLowerCase();
}

/**
 * May the proxy dial `ip:port` for an entry of `scope`? `listed`: the agent asked for exactly this IP
 * literal and it is on the allow-list, which allows any class but unspecified and multicast. The
 * sidecar's own listeners are refused whatever the entry says.
 */
export function checkAddress(ip: string, port: number, scope: AddressScope, listed: boolean, own: OwnListeners): AddressDecision {
  const cls = classifyAddress(ip);
  const shown = isIP(ip) === 6 ? `[${ip}]` : ip;
  if (own.ports.has(port) && (cls === 'loopback' || cls === 'unspecified' || own.localAddresses.has(normalized(ip)))) {
    return { ok: false, reason: 'own-listener', message: `${shown}:${port} is one of the sidecar's own listeners; the proxy does not loop into itself` };
  }
  if (cls === 'unspecified' || cls === 'multicast') return { ok: false, reason: 'address-blocked', message: `${shown} is a ${cls} address, never a destination` };
  if (listed || SCOPE_ALLOWS[scope].has(cls)) return { ok: true };
  const hint = cls === 'private' ? 'set addresses: private on the allow-list entry if this in-cluster destination is intended' : `list the IP address itself, or set addresses: any on the entry, if this ${cls} destination is intended`;
  return { ok: false, reason: 'address-blocked', message: `the name resolved to ${shown}, a ${cls} address, which this allow-list entry does not permit (DNS rebinding / SSRF guard); ${hint}` };
}
