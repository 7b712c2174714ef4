// GitHub: classic tokens (ghp_/gho_/ghu_/ghs_/ghr_) with their CRC32 checksum, fine-grained PATs, app keys.
import type { Detector } from '../types.ts';
import { alnum, base62, crc32, crcTokenOrRandom, token } from './lib.ts';

/** 36 random-looking base62 characters whose last 6 are not their CRC32 (synthesized, not a token). */
const BAD_CHECKSUM_BODY = 'k3Jd9QwZ1xP0aL7mV2cR8tY5uN4bE6hG0sFj';

/** Classic GitHub token: prefix + 30 random base62 + base62(CRC32(random)) padded to 6. */
function classic(id: string, prefix: string, what: string): Detector {
  return token({
    id,
    description: `GitHub ${what} (${prefix}, 36 base62 characters, last 6 are the CRC32 checksum; a random-looking body with a bad checksum is still masked)`,
    prefix,
    body: [alnum(36)],
    validate: (c) => crcTokenOrRandom(c, prefix.length),
    finish: (t) => t.slice(0, prefix.length + 30) + base62(crc32(t.slice(prefix.length, prefix.length + 30)), 6),
    positives: [
      {
        text: `token=${prefix}${BAD_CHECKSUM_BODY}`,
        secret: `${prefix}${BAD_CHECKSUM_BODY}`,
        reason: 'random-looking body with a wrong checksum is masked anyway (fail safe)',
      },
    ],
    negatives: [
      { text: `${prefix}${'x'.repeat(30)}000000`, reason: 'placeholder body whose checksum does not match' },
      { text: `${prefix}${'ab'.repeat(18)}`, reason: 'low-entropy filler whose checksum does not match' },
    ],
  });
}

export const githubPat = classic('github-pat', 'ghp_', 'personal access token (classic)');
export const githubOauth = classic('github-oauth-token', 'gho_', 'OAuth access token');
export const githubUserToServer = classic('github-user-to-server-token', 'ghu_', 'user-to-server token');
export const githubServerToServer = classic('github-server-to-server-token', 'ghs_', 'app installation (server-to-server) token');
export const githubRefresh = classic('github-refresh-token', 'ghr_', 'refresh token');

export const githubFineGrainedPat: Detector = token({
  id: 'github-fine-grained-pat',
  description: 'GitHub fine-grained personal access token (github_pat_ + 22 + _ + 59 base62)',
  prefix: 'github_pat_',
  body: [alnum(22), '_', alnum(59)],
  negatives: [{ text: 'github_pat_' + 'A'.repeat(22) + '_short', reason: 'second part too short' }],
});

export const GITHUB: readonly Detector[] = [
  githubPat,
  githubOauth,
  githubUserToServer,
  githubServerToServer,
  githubRefresh,
  githubFineGrainedPat,
];
