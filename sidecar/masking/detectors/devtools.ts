// Source hosts, package registries, CI and developer SaaS: GitLab, Bitbucket, Atlassian, npm, PyPI, Docker…
import type { Detector } from '../types.ts';
import { ALNUM, ALNUM_LOWER, B64, HEX, alnum, alnumLower, alnumUpper, b64url, base62, contextual, crc32, crcTokenOrRandom, entropy, fake, hex, run, token } from './lib.ts';

const ent = (min: number) => (c: string): boolean => entropy(c) >= min;
const W = 'A-Za-z0-9_-';

// GitLab: one literal prefix per token kind (docs.gitlab.com "Token prefixes").
export const gitlabPat: Detector = {
  ...token({ id: 'gitlab-pat', description: 'GitLab personal/project/group access token (glpat- + 20, or routable 27-300 + .xx.xxxxxxx)', prefix: 'glpat-', body: [b64url(20)], after: W, validate: ent(3) }),
  pattern: /(?<![A-Za-z0-9_-])glpat-[A-Za-z0-9_-]{20,300}(?:\.[0-9a-z]{2}\.?[0-9a-z]{7,9})?(?![A-Za-z0-9_-])/g,
  maxLength: 320,
};
const gl = (id: string, prefix: string, what: string, len: number): Detector =>
  token({ id, description: `GitLab ${what} (${prefix} + ${len})`, prefix, body: [b64url(len)], after: W, validate: ent(3) });
export const gitlabDeploy = gl('gitlab-deploy-token', 'gldt-', 'deploy token', 20);
export const gitlabRunner: Detector = {
  ...gl('gitlab-runner-token', 'glrt-', 'runner authentication token', 20),
  pattern: /(?<![A-Za-z0-9_-])glrt-(?:t[0-9]_)?[A-Za-z0-9_-]{20,300}(?:\.[0-9a-z]{2}\.?[0-9a-z]{7,9})?(?![A-Za-z0-9_-])/g,
  maxLength: 320,
};
export const gitlabFeedToken = gl('gitlab-feed-token', 'glft-', 'feed token', 20);
export const gitlabIncomingMail = gl('gitlab-incoming-mail-token', 'glimt-', 'incoming mail token', 25);
export const gitlabAgent = gl('gitlab-agent-token', 'glagent-', 'Kubernetes agent token', 50);
export const gitlabOauthSecret = gl('gitlab-oauth-app-secret', 'gloas-', 'OAuth application secret', 64);
export const gitlabFeatureFlag = gl('gitlab-feature-flag-token', 'glffct-', 'feature flag client token', 20);
export const gitlabScim = gl('gitlab-scim-token', 'glsoat-', 'SCIM token', 20);
export const gitlabTrigger = token({ id: 'gitlab-pipeline-trigger-token', description: 'GitLab pipeline trigger token (glptt- + 40 hex)', prefix: 'glptt-', body: [hex(40)] });
export const gitlabJob = token({ id: 'gitlab-ci-job-token', description: 'GitLab CI/CD job token (glcbt- + id _ 20)', prefix: 'glcbt-', body: [alnum(1, 5), '_', b64url(20)], after: W });
export const gitlabRunnerRegistration = token({ id: 'gitlab-runner-registration-token', description: 'GitLab runner registration token (GR1348941 + 20)', prefix: 'GR1348941', body: [b64url(20)], after: W, validate: ent(3) });
export const gitlabSession = token({ id: 'gitlab-session-cookie', description: 'GitLab session cookie (_gitlab_session= + 32 hex)', prefix: '_gitlab_session=', body: [run('0-9a-z', ALNUM_LOWER, 32)], before: 'A-Za-z0-9' });

export const bitbucketAppPassword = token({ id: 'bitbucket-app-password', description: 'Bitbucket / Atlassian app password (ATBB + 32)', prefix: 'ATBB', body: [alnum(32)], validate: ent(3.5) });
export const atlassianApiToken = token({
  id: 'atlassian-api-token',
  description: 'Atlassian (Jira, Confluence, Bitbucket) API token (ATATT3 / ATCTT3 + 186)',
  prefix: 'ATATT3',
  body: [run('A-Za-z0-9_=-', ALNUM + '_-', 186)],
  keywords: ['atatt3', 'atctt3'],
});
export const atlassianAny: Detector = { ...atlassianApiToken, pattern: /(?<![A-Za-z0-9_])AT[AC]TT3[A-Za-z0-9_=-]{150,250}(?![A-Za-z0-9_=-])/g, maxLength: 256 };
export const bitbucketClientSecret = contextual({
  id: 'bitbucket-client-secret',
  description: 'Bitbucket OAuth consumer secret: 32-64 characters after a bitbucket name',
  names: ['bitbucket'],
  value: [b64url(32, 64)],
  sampleKeys: ['BITBUCKET_CLIENT_SECRET', 'bitbucket_secret'],
  minEntropy: 4,
});
export const atlassianLegacy = contextual({
  id: 'atlassian-api-token-legacy',
  description: 'legacy Atlassian API token: 24 characters after a jira / confluence / atlassian name',
  names: ['atlassian', 'jira', 'confluence'],
  value: [alnum(24)],
  sampleKeys: ['JIRA_API_TOKEN', 'CONFLUENCE_TOKEN', 'ATLASSIAN_TOKEN'],
  minEntropy: 3.5,
});
export const sourcegraph: Detector = {
  ...token({ id: 'sourcegraph-access-token', description: 'Sourcegraph access token (sgp_ + [16 hex _] + 40 hex)', prefix: 'sgp_', body: [hex(40)] }),
  pattern: /(?<![A-Za-z0-9_])sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}(?![A-Za-z0-9_])/g,
  maxLength: 62,
};

export const npmToken = token({
  id: 'npm-access-token',
  description: 'npm access token (npm_ + 36 base62, last 6 are the CRC32 checksum)',
  prefix: 'npm_',
  body: [alnum(36)],
  validate: (c) => crcTokenOrRandom(c, 4),
  finish: (t) => t.slice(0, 34) + base62(crc32(t.slice(4, 34)), 6),
});
export const npmrcAuthToken: Detector = {
  id: 'npmrc-auth-token',
  category: 'secret',
  description: '.npmrc / .yarnrc registry credential (_authToken=, _auth=, _password=)',
  keywords: ['_authtoken', '_auth', '_password', 'npmauthtoken'],
  pattern: /(?:_authToken|_auth|_password|npmAuthToken)["']?[ \t]{0,3}[=:][ \t]{0,3}["']?(?<secret>[A-Za-z0-9+/=_.:-]{8,512})/gd,
  validate: (c) => !c.startsWith('${') && entropy(c) >= 3,
  confidence: 'high',
  maxLength: 540,
  generate: (rng) => `//registry.npmjs.org/:_authToken=${rng.pick(ALNUM, 36)}`,
  positives: [
    { text: '//npm.pkg.github.com/:_authToken=Zk3q9LmX2vB7nR4tY8wE1uI6oP5aS0dF', secret: 'Zk3q9LmX2vB7nR4tY8wE1uI6oP5aS0dF', reason: '.npmrc registry line' },
    { text: 'npmAuthToken: "Qp8Wm3Xz7Lk2Vb9Nc4Rt6Yh1Uj5Ig0Ef"', secret: 'Qp8Wm3Xz7Lk2Vb9Nc4Rt6Yh1Uj5Ig0Ef', reason: '.yarnrc.yml' },
  ],
  negatives: [
    { text: '//registry.npmjs.org/:_authToken=${NPM_TOKEN}', reason: 'environment reference' },
    { text: 'always-auth=true', reason: 'a flag' },
  ],
};
export const pypiToken: Detector = {
  ...token({ id: 'pypi-upload-token', description: 'PyPI / TestPyPI API token (pypi-AgEIcHlwaS5vcmc… macaroon)', prefix: 'pypi-AgEIcHlwaS5vcmc', body: [b64url(70, 200)], after: W }),
  keywords: ['pypi-ageichlwas5vcmc', 'pypi-agendgvzdc5wexbplm9yzw'],
  pattern: /(?<![A-Za-z0-9_-])pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,1000}(?![A-Za-z0-9_-])/g,
  maxLength: 1030,
};
export const rubygems = token({ id: 'rubygems-api-key', description: 'RubyGems API key (rubygems_ + 48 hex)', prefix: 'rubygems_', body: [hex(48)] });
export const nuget = token({ id: 'nuget-api-key', description: 'NuGet.org API key (oy2 + 43 lower-case alphanumerics)', prefix: 'oy2', body: [alnumLower(43)], validate: ent(4) });
export const dockerHubPat: Detector = {
  ...token({ id: 'docker-hub-pat', description: 'Docker Hub personal / org access token (dckr_pat_ / dckr_oat_ + 27+)', prefix: 'dckr_pat_', body: [b64url(27)], after: W }),
  keywords: ['dckr_pat_', 'dckr_oat_'],
  pattern: /(?<![A-Za-z0-9_])dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,64}(?![A-Za-z0-9_-])/g,
  maxLength: 73,
};
export const clojars = token({ id: 'clojars-api-token', description: 'Clojars deploy token (CLOJARS_ + 60)', prefix: 'CLOJARS_', body: [alnumLower(60)] });
export const artifactoryKey = token({ id: 'artifactory-api-key', description: 'JFrog Artifactory API key (AKCp + 69 alphanumerics)', prefix: 'AKCp', body: [alnum(69)], validate: ent(4.5) });
export const artifactoryRef = token({ id: 'artifactory-reference-token', description: 'JFrog Artifactory reference token (cmVmd + 59)', prefix: 'cmVmd', body: [alnum(59)], validate: ent(4.5) });
export const sonar: Detector = {
  ...token({ id: 'sonarqube-token', description: 'SonarQube / SonarCloud token (squ_/sqp_/sqa_ + 40 hex)', prefix: 'squ_', body: [hex(40)] }),
  keywords: ['squ_', 'sqp_', 'sqa_'],
  pattern: /(?<![A-Za-z0-9_])sq[upa]_[a-f0-9]{40}(?![A-Za-z0-9_])/g,
};
export const buildkite = token({ id: 'buildkite-agent-token', description: 'Buildkite user API token (bkua_ + 40 hex)', prefix: 'bkua_', body: [hex(40)] });
export const circleci = token({ id: 'circleci-pat', description: 'CircleCI personal API token (CCIPAT_ + 22 + _ + 40 hex)', prefix: 'CCIPAT_', body: [alnum(22), '_', hex(40)] });
export const prefect = token({ id: 'prefect-api-key', description: 'Prefect Cloud API key (pnu_ + 36)', prefix: 'pnu_', body: [alnum(36)] });
export const readme = token({ id: 'readme-api-key', description: 'ReadMe API key (rdme_ + 70)', prefix: 'rdme_', body: [alnumLower(70)] });
export const postman = token({ id: 'postman-api-key', description: 'Postman API key (PMAK- + 24 hex - 34 hex)', prefix: 'PMAK-', body: [hex(24), '-', hex(34)] });
export const linear = token({ id: 'linear-api-key', description: 'Linear API key (lin_api_ + 40)', prefix: 'lin_api_', body: [alnum(40)] });
export const notion = token({ id: 'notion-api-token', description: 'Notion integration token (ntn_ + 11 digits + 35)', prefix: 'ntn_', body: [run('0-9', '0123456789', 11), alnum(35)] });
export const notionLegacy = token({
  id: 'notion-api-token-legacy',
  description: 'legacy Notion integration token (secret_ + 43 alphanumerics)',
  prefix: 'secret_',
  body: [alnum(43)],
  validate: (c) => entropy(c) >= 4 && /[0-9]/.test(c) && /[A-Z]/.test(c),
});
export const sentryUser = token({ id: 'sentry-user-token', description: 'Sentry user auth token (sntryu_ + 64 hex)', prefix: 'sntryu_', body: [hex(64)] });
export const sentryOrg = token({
  id: 'sentry-org-token',
  description: 'Sentry organization auth token (sntrys_eyJ… base64 JSON _ 43)',
  prefix: 'sntrys_eyJpYXQiO',
  body: [run('A-Za-z0-9+/', B64, 60, 300), run('=', '=', 0, 2), '_', run('A-Za-z0-9+/', B64, 43)],
  keywords: ['sntrys_'],
  after: 'A-Za-z0-9+/',
});
export const grafanaCloud = token({ id: 'grafana-cloud-token', description: 'Grafana Cloud access policy token (glc_ + base64)', prefix: 'glc_', body: [run('A-Za-z0-9+/', B64, 32, 400), run('=', '=', 0, 3)], after: 'A-Za-z0-9+/=', validate: ent(4) });
export const grafanaSa = token({ id: 'grafana-service-account-token', description: 'Grafana service account token (glsa_ + 32 + _ + 8 hex)', prefix: 'glsa_', body: [alnum(32), '_', hexAnyRun()] });
function hexAnyRun(): ReturnType<typeof hex> {
  return run('A-Fa-f0-9', HEX, 8);
}
export const grafanaApiKey = token({ id: 'grafana-api-key', description: 'legacy Grafana API key (eyJrIjoi + base64)', prefix: 'eyJrIjoi', body: [alnum(70, 400), run('=', '=', 0, 3)], after: 'A-Za-z0-9=', validate: ent(4) });
export const newRelicUser = token({ id: 'new-relic-user-api-key', description: 'New Relic user API key (NRAK- + 27)', prefix: 'NRAK-', body: [alnumUpper(27)] });
export const newRelicBrowser = token({ id: 'new-relic-browser-key', description: 'New Relic browser ingest key (NRJS- + 19 hex)', prefix: 'NRJS-', body: [hex(19)] });
export const newRelicInsert = token({ id: 'new-relic-insert-key', description: 'New Relic Insights insert key (NRII- + 32)', prefix: 'NRII-', body: [run('A-Za-z0-9-', ALNUM, 32)] });
export const newRelicLicense: Detector = {
  id: 'new-relic-license-key',
  category: 'secret',
  description: 'New Relic ingest license key (36 hex + NRAL)',
  keywords: ['nral'],
  pattern: /(?<![A-Za-z0-9])[a-f0-9]{36}NRAL(?![A-Za-z0-9])/g,
  confidence: 'high',
  maxLength: 40,
  generate: (rng) => rng.pick(HEX, 36) + 'NRAL',
  positives: [
    { text: `license_key: ${'0a1b2c3d4e5f'.repeat(3)}NRAL`, secret: `${'0a1b2c3d4e5f'.repeat(3)}NRAL`, reason: 'newrelic.yml' },
    { text: `NEW_RELIC_LICENSE_KEY=${'9f8e7d6c5b4a'.repeat(3)}NRAL`, secret: `${'9f8e7d6c5b4a'.repeat(3)}NRAL`, reason: 'env' },
  ],
  negatives: [
    { text: 'NRAL suffix', reason: 'suffix alone' },
    { text: `${'0a1b2c3d4e5f'.repeat(2)}NRAL`, reason: 'too short' },
  ],
};
export const datadogApiKey = contextual({
  id: 'datadog-api-key',
  description: 'Datadog API key: 32 hex after a datadog / DD_API_KEY name',
  names: ['datadog', 'dd_api_key', 'dd-api-key', 'ddapikey'],
  value: [hex(32)],
  sampleKeys: ['DD_API_KEY', 'DATADOG_API_KEY', 'dd-api-key'],
  positives: [{ text: 'curl -H "DD-API-KEY: 0123456789abcdef0123456789abcdef" https://api.datadoghq.com', secret: '0123456789abcdef0123456789abcdef', reason: 'HTTP header' }],
  negatives: [{ text: 'md5 0123456789abcdef0123456789abcdef', reason: 'bare 32 hex' }],
});
export const datadogAppKey = contextual({
  id: 'datadog-app-key',
  description: 'Datadog application key: 40 hex after a datadog app key name',
  names: ['dd_app_key', 'dd_application_key', 'dd-application-key', 'datadog_app_key', 'datadog_application_key', 'dd-app-key'],
  value: [hex(40)],
  sampleKeys: ['DD_APP_KEY', 'DATADOG_APP_KEY', 'dd-application-key'],
  negatives: [{ text: 'commit 3f786850e387550fdab836ed7e6dc881de23001b', reason: 'a git SHA' }],
});
export const oktaToken = contextual({
  id: 'okta-api-token',
  description: 'Okta API token: 00 + 40 characters after an okta name',
  names: ['okta'],
  value: ['00', b64url(40)],
  sampleKeys: ['OKTA_API_TOKEN', 'okta_token', 'OKTA_CLIENT_TOKEN'],
  minEntropy: 3.8,
});
const OKTA1 = '00' + fake(310, ALNUM, 40);
const OKTA2 = '00' + fake(311, ALNUM, 40);
export const oktaSsws: Detector = {
  ...oktaToken,
  id: 'okta-ssws-header',
  description: 'Okta API token in an SSWS Authorization header',
  keywords: ['ssws'],
  pattern: /SSWS[ \t]{1,3}(?<secret>[A-Za-z0-9_-]{40,42})(?![A-Za-z0-9_-])/gd,
  maxLength: 50,
  generate: (rng) => `Authorization: SSWS 00${rng.pick(ALNUM, 40)}`,
  positives: [
    { text: `Authorization: SSWS ${OKTA1}`, secret: OKTA1, reason: 'SSWS header' },
    { text: `{"headers":{"Authorization":"SSWS ${OKTA2}"}}`, secret: OKTA2, reason: 'header in JSON' },
  ],
  negatives: [{ text: 'Authorization: SSWS ${OKTA_TOKEN}', reason: 'reference' }, { text: 'SSWS scheme', reason: 'scheme name alone' }],
};
export const dynatrace = token({ id: 'dynatrace-api-token', description: 'Dynatrace API token (dt0c01. + 24 . 64)', prefix: 'dt0c01.', body: [alnumUpper(24), '.', alnumUpper(64)] });
export const snyk = contextual({
  id: 'snyk-api-token',
  description: 'Snyk API token: a UUID after a snyk token name',
  names: ['snyk'],
  value: [hex(8), '-', hex(4), '-', hex(4), '-', hex(4), '-', hex(12)],
  sampleKeys: ['SNYK_TOKEN', 'snyk_api_token'],
});
export const figma = token({ id: 'figma-pat', description: 'Figma personal access token (figd_ + 40)', prefix: 'figd_', body: [b64url(40)], after: W });
export const contentful = token({ id: 'contentful-pat', description: 'Contentful personal access token (CFPAT- + 43)', prefix: 'CFPAT-', body: [b64url(43)], after: W });
export const airtable = token({ id: 'airtable-pat', description: 'Airtable personal access token (pat + 14 . 64 hex)', prefix: 'pat', body: [alnum(14), '.', hex(64)] });
export const hubspot = token({ id: 'hubspot-private-app-token', description: 'HubSpot private app token (pat-na1-/pat-eu1- + UUID)', prefix: 'pat-na1-', body: [hex(8), '-', hex(4), '-', hex(4), '-', hex(4), '-', hex(12)], keywords: ['pat-na', 'pat-eu'] });
export const hubspotAny: Detector = { ...hubspot, pattern: /(?<![A-Za-z0-9_-])pat-(?:na|eu)[0-9]-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}(?![A-Za-z0-9_-])/g };
export const typeform = token({ id: 'typeform-api-token', description: 'Typeform personal token (tfp_ + 59)', prefix: 'tfp_', body: [run('A-Za-z0-9_.=-', ALNUM, 59)] });
export const frameio = token({ id: 'frameio-api-token', description: 'Frame.io developer token (fio-u- + 64)', prefix: 'fio-u-', body: [b64url(64)], after: W });
export const infracost = token({ id: 'infracost-api-token', description: 'Infracost API key (ico- + 32)', prefix: 'ico-', body: [alnum(32)], validate: ent(3.5) });
export const settlemint: Detector = {
  ...token({ id: 'settlemint-token', description: 'SettleMint access token (sm_aat_/sm_pat_/sm_sat_ + 16)', prefix: 'sm_pat_', body: [alnum(16)] }),
  keywords: ['sm_aat_', 'sm_pat_', 'sm_sat_'],
  pattern: /(?<![A-Za-z0-9_])sm_(?:aat|pat|sat)_[A-Za-z0-9]{16}(?![A-Za-z0-9_])/g,
};
export const octopus = token({ id: 'octopus-deploy-api-key', description: 'Octopus Deploy API key (API- + 26 upper-case alphanumerics)', prefix: 'API-', body: [alnumUpper(26)], validate: (c) => entropy(c) >= 3.5 && /[0-9]/.test(c) });
const HARNESS1 = `pat.${fake(301, ALNUM, 22)}.${fake(302, ALNUM, 24)}.${fake(303, ALNUM, 20)}`;
const HARNESS2 = `sat.${fake(304, ALNUM, 22)}.${fake(305, ALNUM, 24)}.${fake(306, ALNUM, 20)}`;
export const harness: Detector = {
  id: 'harness-api-key',
  category: 'secret',
  description: 'Harness personal / service account token (pat.|sat. + 22 . 24 . 20)',
  keywords: ['pat.', 'sat.'],
  pattern: /(?<![A-Za-z0-9_])(?:pat|sat)\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}(?![A-Za-z0-9_])/g,
  confidence: 'high',
  maxLength: 72,
  generate: (rng) => `pat.${rng.pick(ALNUM, 22)}.${rng.pick(ALNUM, 24)}.${rng.pick(ALNUM, 20)}`,
  positives: [
    { text: `x-api-key: ${HARNESS1}`, secret: HARNESS1, reason: 'header' },
    { text: `HARNESS_TOKEN=${HARNESS2}`, secret: HARNESS2, reason: 'env' },
  ],
  negatives: [
    { text: 'see pat.docs.example for details', reason: 'dotted words' },
    { text: 'pat.Ab3Cd4Ef5Gh6Ij7Kl8Mn9O.short.x', reason: 'wrong segment lengths' },
  ],
};


export const DEVTOOLS: readonly Detector[] = [
  gitlabPat, gitlabDeploy, gitlabRunner, gitlabFeedToken, gitlabIncomingMail, gitlabAgent, gitlabOauthSecret,
  gitlabFeatureFlag, gitlabScim, gitlabTrigger, gitlabJob, gitlabRunnerRegistration, gitlabSession,
  bitbucketAppPassword, atlassianAny, bitbucketClientSecret, atlassianLegacy, sourcegraph, npmToken, npmrcAuthToken,
  pypiToken, rubygems, nuget, dockerHubPat, clojars, artifactoryKey, artifactoryRef, sonar, buildkite, circleci,
  prefect, readme, postman, linear, notion, notionLegacy, sentryUser, sentryOrg, grafanaCloud, grafanaSa,
  grafanaApiKey, newRelicUser, newRelicBrowser, newRelicInsert, newRelicLicense, datadogApiKey, datadogAppKey,
  oktaToken, oktaSsws, dynatrace, snyk, figma, contentful, airtable, hubspotAny, typeform, frameio, infracost,
  settlemint, octopus, harness,
];
