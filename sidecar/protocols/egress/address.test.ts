// The address guard: classes of addresses, embedded IPv4 in IPv6, scopes, explicit IP literals, the sidecar's own listeners.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkAddress, classifyAddress, embeddedV4 } from './address.ts';

const NONE = { ports: new Set<number>(), localAddresses: new Set<string>() };

describe('classifyAddress', () => {
  for (const [ip, want] of [
    ['8.8.8.8', 'public'],
    ['2606:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12::1', 'private'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['2002:7f00:1::', 'loopback'],
    ['not-an-ip', 'reserved'],
  ] as const) {
    it(`given ${ip}, returns ${want}`, () => assert.equal(classifyAddress(ip), want));
  }
  it('reads IPv4 out of mapped, NAT64 and 6to4 addresses', () => {
    assert.equal(embeddedV4('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(embeddedV4('64:ff9b::808:808'), '8.8.8.8');
    assert.equal(embeddedV4('2002:0a00:0001::1'), '10.0.0.1');
    assert.equal(embeddedV4('2001:db8::1'), undefined);
  });
});

describe('checkAddress', () => {
  const cases: [string, 'public' | 'private' | 'any', boolean, boolean, string][] = [
    ['8.8.8.8', 'public', false, true, 'a public address under the default scope'],
    ['10.0.0.1', 'public', false, false, 'a name resolving to a private address (rebinding into the cluster)'],
    ['10.0.0.1', 'private', false, true, 'private scope allows in-cluster addresses'],
    ['169.254.169.254', 'private', false, false, 'metadata needs scope any'],
    ['169.254.169.254', 'any', false, true, 'scope any allows metadata'],
    ['127.0.0.1', 'private', false, false, 'loopback needs scope any'],
    ['::ffff:127.0.0.1', 'public', false, false, 'mapped loopback is loopback'],
    ['10.0.0.1', 'public', true, true, 'an IP literal listed on the allow-list passes'],
    ['0.0.0.0', 'any', true, false, 'unspecified never'],
    ['224.0.0.1', 'any', true, false, 'multicast never'],
  ];
  for (const [ip, scope, listed, ok, why] of cases) {
    it(`given ${ip} (${scope}${listed ? ', listed' : ''}), ${ok ? 'allows' : 'refuses'}: ${why}`, () => {
      assert.equal(checkAddress(ip, 443, scope, listed, NONE).ok, ok);
    });
  }
  it('refuses the sidecar\'s own listeners on loopback and on this host\'s addresses, whatever the scope', () => {
    const own = { ports: new Set([9901, 3128]), localAddresses: new Set(['10.1.1.5']) };
    for (const ip of ['127.0.0.1', '::1', '10.1.1.5', '::ffff:10.1.1.5']) {
      const d = checkAddress(ip, 9901, 'any', true, own);
      assert.equal(!d.ok && d.reason, 'own-listener', ip);
    }
    assert.equal(checkAddress('10.1.1.5', 443, 'private', false, own).ok, true, 'another port of the pod is not a listener');
  });
  it('says what to change', () => {
    const d = checkAddress('10.0.0.1', 443, 'public', false, NONE);
    assert.match(!d.ok ? d.message : '', /addresses: private/);
  });
});
