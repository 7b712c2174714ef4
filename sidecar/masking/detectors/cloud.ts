// Cloud and infrastructure providers: GCP, Azure, Alibaba, Tencent, DigitalOcean, Heroku, Vault, Terraform…
import type { Detector } from '../types.ts';
import { B64, alnum, fake, b64url, contextual, entropy, hex, run, token } from './lib.ts';

const SK1 = fake(201, B64, 86) + '==';
const SK2 = fake(202, B64, 88);
const SAK1 = fake(203, B64, 43) + '=';
const SAK2 = fake(204, B64, 43) + '=';
const SAS1 = fake(205, B64, 43) + '=';
const SAS2 = fake(206, B64, 43) + '=';
const AZC = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_~.-';
const AD1 = 'abC8Q~' + fake(207, AZC, 34);
const AD2 = 'Xy77Q~' + fake(208, AZC, 32);
const UUID_SEGS = [hex(8), '-', hex(4), '-', hex(4), '-', hex(4), '-', hex(12)];

export const gcpApiKey = token({
  id: 'gcp-api-key',
  description: 'Google Cloud / Firebase / Gemini API key (AIza + 35 base64url characters)',
  prefix: 'AIza',
  body: [b64url(35)],
  after: 'A-Za-z0-9_-',
  validate: (c) => !c.includes('abcdefghijklmnopqrstuvwxyz') && entropy(c) >= 3.5,
  negatives: [{ text: 'key=AIzaSyabcdefghijklmnopqrstuvwxyz1234567', reason: 'documented placeholder key' }],
});
export const gcpOauthClientSecret = token({
  id: 'gcp-oauth-client-secret',
  description: 'Google OAuth client secret (GOCSPX- + 28 base64url characters)',
  prefix: 'GOCSPX-',
  body: [b64url(28)],
  after: 'A-Za-z0-9_-',
});
export const gcpAccessToken = token({
  id: 'gcp-oauth-access-token',
  description: 'Google OAuth 2.0 access token (ya29. + base64url)',
  prefix: 'ya29.',
  body: [b64url(50, 2048)],
  after: 'A-Za-z0-9_-',
  validate: (c) => entropy(c) >= 4,
});
export const gcpRefreshToken = token({
  id: 'gcp-oauth-refresh-token',
  description: 'Google OAuth 2.0 refresh token (1//0 + base64url)',
  prefix: '1//0',
  body: [b64url(40, 512)],
  keywords: ['1//0'],
  before: 'A-Za-z0-9_/-',
  after: 'A-Za-z0-9_-',
  validate: (c) => entropy(c) >= 4 && /[A-Z]/.test(c) && /[a-z]/.test(c),
});

export const azureStorageKey: Detector = {
  id: 'azure-storage-account-key',
  category: 'secret',
  description: 'Azure storage connection string AccountKey (88 base64 characters)',
  keywords: ['accountkey'],
  pattern: /AccountKey=(?<secret>[A-Za-z0-9+/]{60,100}={0,2})(?![A-Za-z0-9+/=])/gid,
  validate: (c) => entropy(c) >= 4.5,
  confidence: 'high',
  maxLength: 115,
  generate: (rng) => `DefaultEndpointsProtocol=https;AccountName=${rng.pick('abcdefghijklmnopqrstuvwxyz', 10)};AccountKey=${rng.pick(B64, 86)}==;EndpointSuffix=core.windows.net`,
  positives: [
    { text: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${SK1};EndpointSuffix=core.windows.net`, secret: SK1, reason: 'connection string' },
    { text: `{"conn":"AccountName=a;AccountKey=${SK2}"}`, secret: SK2, reason: 'in JSON' },
  ],
  negatives: [
    { text: 'AccountKey=<your-key>;', reason: 'placeholder' },
    { text: 'UseDevelopmentStorage=true;AccountKey=short==', reason: 'too short' },
  ],
};
export const azureSharedAccessKey: Detector = {
  ...azureStorageKey,
  id: 'azure-shared-access-key',
  description: 'Azure Service Bus / Event Hubs / IoT Hub SharedAccessKey (44 base64 characters)',
  keywords: ['sharedaccesskey='],
  pattern: /SharedAccessKey=(?<secret>[A-Za-z0-9+/]{42,44}={0,2})(?![A-Za-z0-9+/=])/gid,
  maxLength: 64,
  generate: (rng) => `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${rng.pick(B64, 43)}=`,
  positives: [
    { text: `Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=${SAK1}`, secret: SAK1, reason: 'Service Bus connection string' },
    { text: `HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=${SAK2}`, secret: SAK2, reason: 'IoT Hub device string' },
  ],
  negatives: [
    { text: 'SharedAccessKeyName=RootManageSharedAccessKey;', reason: 'the key name, not the key' },
    { text: 'SharedAccessKey=abc=', reason: 'too short' },
  ],
};

/** A SAS signature is base64 of an HMAC-SHA256: 32 bytes, 44 base64 characters once percent-decoded. */
function sasSigValid(c: string): boolean {
  let d: string;
  try {
    d = decodeURIComponent(c);
  } catch {
    return false;
  }
  return /^[A-Za-z0-9+/]{43}=$/.test(d) && entropy(d) >= 4;
}
export const azureSasSignature: Detector = {
  id: 'azure-sas-signature',
  category: 'secret',
  description: 'Azure SAS token signature (sig= parameter: percent-encoded base64 HMAC-SHA256)',
  keywords: ['sig='],
  pattern: /(?<![A-Za-z0-9])sig=(?<secret>[A-Za-z0-9%+/=]{40,70})(?![A-Za-z0-9%+/=])/gd,
  validate: sasSigValid,
  confidence: 'high',
  maxLength: 75,
  generate: (rng) => `https://acct.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&sig=${encodeURIComponent(rng.pick(B64, 43) + '=')}`,
  positives: [
    { text: `https://a.blob.core.windows.net/c?sv=2021-08-06&sp=rl&sig=${encodeURIComponent(SAS1)}`, secret: encodeURIComponent(SAS1), reason: 'blob SAS URL' },
    { text: `SharedAccessSignature=sv=2020-08-04&ss=q&sig=${SAS2};`, secret: SAS2, reason: 'connection string form, unencoded' },
  ],
  negatives: [
    { text: 'https://cdn.test/a.js?v=3&sig=abc123', reason: 'short signature' },
    { text: `?sig=${'0123456789abcdef'.repeat(4)}`, reason: 'hex digest, not a 44-char base64 HMAC' },
  ],
};
export const azureAdClientSecret: Detector = {
  id: 'azure-ad-client-secret',
  category: 'secret',
  description: 'Azure AD (Entra ID) application client secret (3 chars, a digit, Q~, 31-34 chars)',
  keywords: ['q~'],
  pattern: /(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/g,
  validate: (c) => entropy(c) >= 3.5,
  confidence: 'high',
  maxLength: 40,
  generate: (rng) => `${rng.pick('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 3)}${rng.int(10)}Q~${rng.pick('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_~.-', 34)}`,
  positives: [
    { text: `AZURE_CLIENT_SECRET=${AD1}`, secret: AD1, reason: 'env' },
    { text: `{"clientSecret":"${AD2}"}`, secret: AD2, reason: 'JSON' },
  ],
  negatives: [
    { text: 'see Q~ operator docs', reason: 'bare marker' },
    { text: 'abc8Q~short', reason: 'too short' },
  ],
};

const ALIBABA = alnum(20);
export const alibabaKeyId = token({ id: 'alibaba-access-key-id', description: 'Alibaba Cloud AccessKey ID (LTAI + 20 alphanumerics)', prefix: 'LTAI', body: [ALIBABA], validate: (c) => entropy(c) >= 3 });
export const tencentSecretId = token({ id: 'tencent-secret-id', description: 'Tencent Cloud SecretId (AKID + 32 alphanumerics)', prefix: 'AKID', body: [alnum(32)] });
export const awsSessionToken: Detector = {
  id: 'aws-session-token',
  category: 'secret',
  description: 'AWS STS session token (base64 starting IQoJb3JpZ2luX2Vj or FwoGZXIvYXdz)',
  keywords: ['iqojb3jpz2lux2vj', 'fwogzxivyxdz'],
  pattern: /(?<![A-Za-z0-9+/])(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdz)[A-Za-z0-9+/]{100,4000}={0,2}(?![A-Za-z0-9+/=])/g,
  confidence: 'high',
  maxLength: 4030,
  generate: (rng) => 'IQoJb3JpZ2luX2Vj' + rng.pick(B64, 300 + rng.int(500)),
  positives: [
    { text: `aws_session_token = IQoJb3JpZ2luX2Vj${'EKf//////////wEaCXVzLWVhc3QtMSJHMEUCIQ'.repeat(4)}`, secret: `IQoJb3JpZ2luX2Vj${'EKf//////////wEaCXVzLWVhc3QtMSJHMEUCIQ'.repeat(4)}`, reason: 'credentials file' },
    { text: `{"SessionToken":"FwoGZXIvYXdz${'Ab3Cd4Ef5Gh6Ij7Kl8Mn9Op0Qr1St2Uv3Wx4Yz5'.repeat(4)}=="}`, secret: `FwoGZXIvYXdz${'Ab3Cd4Ef5Gh6Ij7Kl8Mn9Op0Qr1St2Uv3Wx4Yz5'.repeat(4)}==`, reason: 'STS JSON' },
  ],
  negatives: [
    { text: 'IQoJb3JpZ2luX2Vj', reason: 'prefix only' },
    { text: 'token FwoGZXIvYXdzabc', reason: 'too short' },
  ],
};

export const digitaloceanPat = token({ id: 'digitalocean-pat', description: 'DigitalOcean personal access token (dop_v1_ + 64 hex)', prefix: 'dop_v1_', body: [hex(64)] });
export const digitaloceanOauth = token({ id: 'digitalocean-oauth-token', description: 'DigitalOcean OAuth token (doo_v1_ + 64 hex)', prefix: 'doo_v1_', body: [hex(64)] });
export const digitaloceanRefresh = token({ id: 'digitalocean-refresh-token', description: 'DigitalOcean refresh token (dor_v1_ + 64 hex)', prefix: 'dor_v1_', body: [hex(64)] });
export const herokuV2 = token({ id: 'heroku-api-key', description: 'Heroku API key / OAuth token (HRKU-AA + 58 base64url)', prefix: 'HRKU-AA', body: [b64url(58)], after: 'A-Za-z0-9_-' });
export const herokuLegacy = contextual({
  id: 'heroku-api-key-legacy',
  description: 'legacy Heroku API key: a UUID after a heroku name',
  names: ['heroku'],
  value: UUID_SEGS,
  sampleKeys: ['HEROKU_API_KEY', 'heroku_token'],
  negatives: [{ text: 'request_id=2f1c0a9e-4b7d-4c8e-9f00-1a2b3c4d5e6f', reason: 'a bare UUID' }],
});
export const databricks = token({ id: 'databricks-token', description: 'Databricks personal access token (dapi + 32 hex, optional -N)', prefix: 'dapi', body: [hex(32)], validate: (c) => entropy(c) >= 3 });
export const doppler: Detector = {
  ...token({ id: 'doppler-token', description: 'Doppler token (dp.pt./dp.st./dp.sa./dp.ct./dp.scim./dp.audit. + 40-44 alphanumerics)', prefix: 'dp.pt.', body: [alnum(40, 44)] }),
  keywords: ['dp.pt.', 'dp.st.', 'dp.sa.', 'dp.ct.', 'dp.scim.', 'dp.audit.'],
  pattern: /(?<![A-Za-z0-9_.])dp\.(?:pt|st|sa|ct|scim|audit)\.(?:[a-z0-9_-]{1,40}\.)?[A-Za-z0-9]{40,44}(?![A-Za-z0-9_])/g,
  maxLength: 100,
};
export const vaultService = token({ id: 'vault-service-token', description: 'HashiCorp Vault service token (hvs. + 90-120 base64url)', prefix: 'hvs.', body: [b64url(90, 120)], after: 'A-Za-z0-9_-', validate: (c) => entropy(c) >= 4 });
export const vaultBatch = token({ id: 'vault-batch-token', description: 'HashiCorp Vault batch token (hvb. + 138-300 base64url)', prefix: 'hvb.', body: [b64url(138, 300)], after: 'A-Za-z0-9_-', validate: (c) => entropy(c) >= 4 });
export const vaultRecovery = token({ id: 'vault-recovery-token', description: 'HashiCorp Vault recovery token (hvr. + base64url)', prefix: 'hvr.', body: [b64url(90, 300)], after: 'A-Za-z0-9_-', validate: (c) => entropy(c) >= 4 });
export const terraformCloud: Detector = {
  id: 'terraform-cloud-token',
  category: 'secret',
  description: 'Terraform Cloud / Enterprise API token (14 chars .atlasv1. 60-70 chars)',
  keywords: ['.atlasv1.'],
  pattern: /(?<![A-Za-z0-9])[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}(?![A-Za-z0-9_=-])/g,
  validate: (c) => entropy(c) >= 3.5,
  confidence: 'high',
  maxLength: 93,
  generate: (rng) => `${rng.pick('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 14)}.atlasv1.${rng.pick('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 67)}`,
  positives: [
    { text: `credentials "app.terraform.io" { token = "Ab3dE5gH7jK9mN.atlasv1.${'Qw3rTy6uIo9pAs2dFg5hJk8lZx1cVb4nM7'.repeat(2)}" }`, secret: `Ab3dE5gH7jK9mN.atlasv1.${'Qw3rTy6uIo9pAs2dFg5hJk8lZx1cVb4nM7'.repeat(2)}`, reason: 'credentials.tfrc' },
    { text: `TFE_TOKEN=Zx9cV8bN7mL6kJ.atlasv1.${'Po0iU9yT8rE7wQ6aS5dF4gH3jK2lM1nB'.repeat(2)}`, secret: `Zx9cV8bN7mL6kJ.atlasv1.${'Po0iU9yT8rE7wQ6aS5dF4gH3jK2lM1nB'.repeat(2)}`, reason: 'env' },
  ],
  negatives: [
    { text: 'the .atlasv1. marker', reason: 'marker only' },
    { text: 'Ab3dE5gH7jK9mN.atlasv1.short', reason: 'too short' },
  ],
};
export const pulumi = token({ id: 'pulumi-access-token', description: 'Pulumi access token (pul- + 40 hex)', prefix: 'pul-', body: [hex(40)] });
export const planetscaleToken = token({ id: 'planetscale-api-token', description: 'PlanetScale service token (pscale_tkn_ + 32-64)', prefix: 'pscale_tkn_', body: [run('A-Za-z0-9_.=-', 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_', 32, 64)] });
export const planetscaleOauth = token({ id: 'planetscale-oauth-token', description: 'PlanetScale OAuth token (pscale_oauth_ + 32-64)', prefix: 'pscale_oauth_', body: [run('A-Za-z0-9_.=-', 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_', 32, 64)] });
export const planetscalePassword = token({ id: 'planetscale-password', description: 'PlanetScale database password (pscale_pw_ + 32-64)', prefix: 'pscale_pw_', body: [run('A-Za-z0-9_.=-', 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_', 32, 64)] });
export const supabasePat = token({ id: 'supabase-access-token', description: 'Supabase personal access token (sbp_ + 40 hex)', prefix: 'sbp_', body: [hex(40)] });
export const supabaseSecret = token({ id: 'supabase-secret-key', description: 'Supabase secret API key (sb_secret_ + 31+ base64url)', prefix: 'sb_secret_', body: [b64url(28, 64)], after: 'A-Za-z0-9_-' });
export const flyio: Detector = {
  ...token({ id: 'flyio-access-token', description: 'Fly.io token (fo1_ + 43, or fm1a_/fm1r_/fm2_ macaroons)', prefix: 'fo1_', body: [b64url(43)], after: 'A-Za-z0-9_-' }),
  keywords: ['fo1_', 'fm1a_', 'fm1r_', 'fm2_'],
  pattern: /(?<![A-Za-z0-9_])(?:fo1_[A-Za-z0-9_-]{43}|(?:fm1[ar]|fm2)_[A-Za-z0-9+/]{100,4000}={0,3})(?![A-Za-z0-9_+/=-])/g,
  maxLength: 4010,
};
export const cloudflareOriginCa = token({ id: 'cloudflare-origin-ca-key', description: 'Cloudflare Origin CA key (v1.0- + 24 hex - 146 hex)', prefix: 'v1.0-', body: [hex(24), '-', hex(146)] });
export const cloudflareApiToken = contextual({
  id: 'cloudflare-api-token',
  description: 'Cloudflare API token: 40 base64url characters after a cloudflare / CF_API_TOKEN name',
  names: ['cloudflare', 'cf_api_token', 'cf_api_key'],
  value: [b64url(40)],
  sampleKeys: ['CLOUDFLARE_API_TOKEN', 'CF_API_TOKEN'],
  minEntropy: 3.8,
});
export const cloudflareGlobalKey = contextual({
  id: 'cloudflare-global-api-key',
  description: 'Cloudflare global API key: 37 hex after a cloudflare name',
  names: ['cloudflare', 'cf_api_key', 'cf_key'],
  value: [hex(37)],
  sampleKeys: ['CLOUDFLARE_API_KEY', 'CF_API_KEY'],
});
export const scalingo = token({ id: 'scalingo-api-token', description: 'Scalingo API token (tk-us- + 48)', prefix: 'tk-us-', body: [b64url(48)], after: 'A-Za-z0-9_-' });
export const openshift = token({ id: 'openshift-user-token', description: 'OpenShift OAuth user token (sha256~ + 43 base64url)', prefix: 'sha256~', body: [b64url(43)], after: 'A-Za-z0-9_-', validate: (c) => entropy(c) >= 3.5 });
export const tailscale: Detector = {
  ...token({ id: 'tailscale-key', description: 'Tailscale auth / API / OAuth key (tskey-<kind>-<id>-<secret>)', prefix: 'tskey-api-', body: [alnum(10, 20), '-', alnum(20, 40)] }),
  keywords: ['tskey-'],
  pattern: /(?<![A-Za-z0-9_-])tskey-(?:api|auth|client|scim|webhook)-[A-Za-z0-9]{8,20}-[A-Za-z0-9]{20,40}(?![A-Za-z0-9_-])/g,
};
export const render = token({ id: 'render-api-key', description: 'Render API key (rnd_ + 32 alphanumerics)', prefix: 'rnd_', body: [alnum(32)] });
export const netlifyPat = token({ id: 'netlify-access-token', description: 'Netlify personal access token (nfp_ + 36 alphanumerics)', prefix: 'nfp_', body: [alnum(36, 40)] });
export const linode = contextual({
  id: 'linode-api-token',
  description: 'Linode / Akamai API token: 64 hex after a linode name',
  names: ['linode'],
  value: [hex(64)],
  sampleKeys: ['LINODE_TOKEN', 'LINODE_CLI_TOKEN'],
});
export const ageSecretKey = token({
  id: 'age-secret-key',
  description: 'age encryption secret key (AGE-SECRET-KEY-1 + 58 bech32 characters)',
  prefix: 'AGE-SECRET-KEY-1',
  body: [run('QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L', 'QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L', 58)],
  after: 'A-Za-z0-9',
});
export const onePasswordServiceAccount = token({
  id: '1password-service-account-token',
  description: '1Password service account token (ops_eyJ + 250+ base64)',
  prefix: 'ops_eyJ',
  body: [run('A-Za-z0-9+/', B64, 250, 4000), run('=', '=', 0, 3)],
  after: 'A-Za-z0-9+/=',
});
export const onePasswordSecretKey: Detector = {
  id: '1password-secret-key',
  category: 'secret',
  description: '1Password account secret key (A3-XXXXXX-XXXXXXXXXXX-XXXXX-XXXXX-XXXXX)',
  keywords: ['a3-'],
  pattern: /(?<![A-Za-z0-9-])A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}(?![A-Za-z0-9-])/g,
  validate: (c) => entropy(c) >= 3.8,
  confidence: 'high',
  maxLength: 40,
  generate: (rng) => {
    const a = 'ABCDEFGHJKLMNPQRSTVWXYZ23456789';
    return `A3-${rng.pick(a, 6)}-${rng.pick(a, 11)}-${rng.pick(a, 5)}-${rng.pick(a, 5)}-${rng.pick(a, 5)}`;
  },
  positives: [
    { text: 'Secret Key: A3-ABC7D9-EFGH2JK4LMN-PQR5S-TVW6X-YZ238', secret: 'A3-ABC7D9-EFGH2JK4LMN-PQR5S-TVW6X-YZ238', reason: 'emergency kit' },
    { text: '"secret_key":"A3-Q2W3E4-R5T6Y7-U8I9O-P2A3S-D4F5G-H6J7K"', secret: 'A3-Q2W3E4-R5T6Y7-U8I9O-P2A3S-D4F5G-H6J7K', reason: 'split form' },
  ],
  negatives: [
    { text: 'paper size A3-portrait', reason: 'paper size' },
    { text: 'A3-AAAAAA-AAAAAAAAAAA-AAAAA-AAAAA-AAAAA', reason: 'no entropy' },
  ],
};

export const CLOUD: readonly Detector[] = [
  gcpApiKey, gcpOauthClientSecret, gcpAccessToken, gcpRefreshToken, azureStorageKey, azureSharedAccessKey,
  azureSasSignature, azureAdClientSecret, alibabaKeyId, tencentSecretId, awsSessionToken, digitaloceanPat,
  digitaloceanOauth, digitaloceanRefresh, herokuV2, herokuLegacy, databricks, doppler, vaultService, vaultBatch,
  vaultRecovery, terraformCloud, pulumi, planetscaleToken, planetscaleOauth, planetscalePassword, supabasePat,
  supabaseSecret, flyio, cloudflareOriginCa, cloudflareApiToken, cloudflareGlobalKey, scalingo, openshift,
  tailscale, render, netlifyPat, linode, ageSecretKey, onePasswordServiceAccount, onePasswordSecretKey,
];
