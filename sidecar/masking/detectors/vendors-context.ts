// Vendors whose keys have no prefix: a vendor name in the key, then a value of the vendor's shape.
import type { Detector } from '../types.ts';
import { ALNUM, ALNUM_LOWER, B64URL, alnum, b64url, contextual, entropy, fake, hex, run, token } from './lib.ts';

const lowerAlnum = (n: number): ReturnType<typeof run> => run('a-z0-9', ALNUM_LOWER, n);
const UUID = [hex(8), '-', hex(4), '-', hex(4), '-', hex(4), '-', hex(12)];

const C = (id: string, vendor: string, names: string[], value: Parameters<typeof contextual>[0]['value'], keys: string[]): Detector =>
  contextual({ id, description: `${vendor}: ${describe(value)} after a ${names.join(' / ')} name`, names, value, sampleKeys: keys });

function describe(value: Parameters<typeof contextual>[0]['value']): string {
  return value.map((s) => (typeof s === 'string' ? `"${s}"` : `${s.max === undefined ? s.min : `${s.min}-${s.max}`} [${s.cls}]`)).join(' + ');
}

export const CONTEXT_VENDORS: readonly Detector[] = [
  C('algolia-api-key', 'Algolia admin API key', ['algolia'], [lowerAlnum(32)], ['ALGOLIA_API_KEY', 'algolia_admin_key']),
  C('asana-client-secret', 'Asana client secret', ['asana'], [lowerAlnum(32)], ['ASANA_CLIENT_SECRET']),
  C('codecov-access-token', 'Codecov upload token', ['codecov'], [...UUID], ['CODECOV_TOKEN']),
  C('coinbase-access-token', 'Coinbase access token', ['coinbase'], [b64url(64)], ['COINBASE_ACCESS_TOKEN']),
  C('confluent-secret-key', 'Confluent Cloud API secret', ['confluent'], [alnum(64)], ['CONFLUENT_SECRET_KEY', 'confluent_api_secret']),
  C('contentful-delivery-token', 'Contentful delivery API token', ['contentful'], [b64url(43)], ['CONTENTFUL_DELIVERY_TOKEN']),
  C('droneci-access-token', 'Drone CI token', ['droneci', 'drone_token'], [alnum(32)], ['DRONE_TOKEN']),
  C('dropbox-long-lived-token', 'Dropbox long-lived token', ['dropbox'], [lowerAlnum(11), 'AAAAAAAAAA', b64url(43)], ['DROPBOX_TOKEN']),
  C('fastly-api-token', 'Fastly API token', ['fastly'], [b64url(32)], ['FASTLY_API_TOKEN']),
  C('freshbooks-access-token', 'FreshBooks access token', ['freshbooks'], [lowerAlnum(64)], ['FRESHBOOKS_TOKEN']),
  C('gitter-access-token', 'Gitter access token', ['gitter'], [b64url(40)], ['GITTER_TOKEN']),
  C('intercom-api-key', 'Intercom access token', ['intercom'], [b64url(60)], ['INTERCOM_ACCESS_TOKEN']),
  C('kraken-access-token', 'Kraken API secret', ['kraken'], [run('A-Za-z0-9/=_+-', ALNUM, 80, 90)], ['KRAKEN_API_SECRET']),
  C('kucoin-secret-key', 'KuCoin API secret', ['kucoin'], [...UUID], ['KUCOIN_API_SECRET']),
  C('launchdarkly-access-token', 'LaunchDarkly access token', ['launchdarkly'], [b64url(40)], ['LAUNCHDARKLY_ACCESS_TOKEN']),
  C('messagebird-api-token', 'MessageBird API key', ['messagebird', 'message_bird', 'message-bird'], [alnum(25)], ['MESSAGEBIRD_API_KEY']),
  C('netlify-legacy-token', 'Netlify access token', ['netlify'], [b64url(40, 46)], ['NETLIFY_AUTH_TOKEN']),
  C('rapidapi-access-token', 'RapidAPI key', ['rapidapi'], [b64url(50)], ['RAPIDAPI_KEY', 'x-rapidapi-key']),
  C('sendbird-access-token', 'Sendbird API token', ['sendbird'], [hex(40)], ['SENDBIRD_API_TOKEN']),
  C('squarespace-access-token', 'Squarespace API key', ['squarespace'], [...UUID], ['SQUARESPACE_API_KEY']),
  C('sumologic-access-token', 'Sumo Logic access key', ['sumo'], [alnum(64)], ['SUMO_ACCESS_KEY', 'sumologic_access_key']),
  C('travisci-access-token', 'Travis CI token', ['travis'], [alnum(22)], ['TRAVIS_TOKEN']),
  C('twitch-api-token', 'Twitch client secret / token', ['twitch'], [lowerAlnum(30)], ['TWITCH_CLIENT_SECRET']),
  C('twitter-api-secret', 'Twitter / X API secret', ['twitter', 'x_api_secret'], [alnum(50)], ['TWITTER_API_SECRET', 'TWITTER_CONSUMER_SECRET']),
  C('twitter-access-secret', 'Twitter / X access token secret', ['twitter'], [alnum(45)], ['TWITTER_ACCESS_SECRET']),
  C('zendesk-secret-key', 'Zendesk API token', ['zendesk'], [alnum(40)], ['ZENDESK_API_TOKEN']),
  C('jfrog-api-key', 'JFrog / Artifactory API key', ['jfrog', 'artifactory', 'bintray', 'xray'], [alnum(73)], ['JFROG_API_KEY', 'ARTIFACTORY_API_KEY']),
  C('jfrog-identity-token', 'JFrog identity token', ['jfrog', 'artifactory'], [alnum(64)], ['JFROG_ACCESS_TOKEN']),
  C('snowflake-password', 'Snowflake password', ['snowflake'], [run('A-Za-z0-9!%*_+.~-', ALNUM + '!%*_+.~-', 12, 64)], ['SNOWFLAKE_PASSWORD']),
  C('openweather-api-key', 'OpenWeather API key', ['openweather', 'owm_api'], [hex(32)], ['OPENWEATHER_API_KEY']),
  C('google-maps-server-key', 'Google reCAPTCHA / Maps secret', ['recaptcha'], ['6L', b64url(38)], ['RECAPTCHA_SECRET_KEY']),
  C('pagerduty-api-key', 'PagerDuty API key', ['pagerduty'], [run('A-Za-z0-9_+-', ALNUM, 20)], ['PAGERDUTY_TOKEN']),
  C('circleci-api-token', 'CircleCI legacy API token', ['circleci', 'circle_token'], [hex(40)], ['CIRCLE_TOKEN', 'CIRCLECI_TOKEN']),
  C('jenkins-api-token', 'Jenkins API token', ['jenkins'], [hex(34)], ['JENKINS_API_TOKEN']),
  C('vercel-access-token', 'Vercel access token', ['vercel'], [alnum(24)], ['VERCEL_TOKEN']),
  C('elastic-cloud-api-key', 'Elastic Cloud API key', ['elastic'], [run('A-Za-z0-9=_-', B64URL, 40, 100)], ['ELASTIC_API_KEY', 'ELASTICSEARCH_API_KEY']),
];

const ent = (c: string): boolean => entropy(c) >= 3.5;
const MMK1 = `${fake(701, ALNUM, 6)}_${fake(702, ALNUM, 29)}_mmk`;
const MMK2 = `${fake(703, ALNUM, 6)}_${fake(704, ALNUM, 29)}_mmk`;
export const PREFIXED_VENDORS: readonly Detector[] = [
  token({ id: 'adobe-client-secret', description: 'Adobe OAuth client secret (p8e- + 32)', prefix: 'p8e-', body: [alnum(32)], validate: ent }),
  token({ id: 'dropbox-short-lived-token', description: 'Dropbox short-lived access token (sl. + 130-150 base64url)', prefix: 'sl.', body: [b64url(130, 150)], after: 'A-Za-z0-9_-', validate: ent, keywords: ['sl.'] }),
  { ...token({ id: 'facebook-access-token', description: 'Facebook / Meta access token (EAAB / EAAC / EAAG / EAAM + 100+)', prefix: 'EAAB', body: [alnum(100, 400)], validate: ent }),
    keywords: ['eaab', 'eaac', 'eaag', 'eaam'],
    pattern: /(?<![A-Za-z0-9_])EAA[BCGM][A-Za-z0-9]{100,400}(?![A-Za-z0-9_])/g },
  token({ id: 'twitter-bearer-token', description: 'Twitter / X app bearer token (22 A + 80-100)', prefix: 'AAAAAAAAAAAAAAAAAAAAA', body: [run('A-Za-z0-9%', ALNUM, 80, 100)], keywords: ['aaaaaaaaaaaaaaaaaaaaa'], validate: ent, before: 'A-Za-z0-9' }),
  token({ id: 'mapbox-secret-token', description: 'Mapbox secret token (sk.eyJ… . 22)', prefix: 'sk.eyJ', body: [b64url(40, 200), '.', b64url(20, 30)], keywords: ['sk.eyj'], after: 'A-Za-z0-9_-' }),
  { ...token({ id: 'intra42-client-secret', description: '42 intra client secret (s-s4t2ud- / s-s4t2af- + 64 hex)', prefix: 's-s4t2ud-', body: [hex(64)] }),
    keywords: ['s-s4t2ud-', 's-s4t2af-'],
    pattern: /(?<![A-Za-z0-9_-])s-s4t2(?:ud|af)-[a-f0-9]{64}(?![A-Za-z0-9_])/g },
  { id: 'maxmind-license-key', category: 'secret', description: 'MaxMind license key (6 _ 29 _mmk)', keywords: ['_mmk'],
    pattern: /(?<![A-Za-z0-9_])[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk(?![A-Za-z0-9_])/g, confidence: 'high', maxLength: 40, validate: ent,
    generate: (rng) => `${rng.pick(ALNUM, 6)}_${rng.pick(ALNUM, 29)}_mmk`,
    positives: [
      { text: `MAXMIND_LICENSE_KEY=${MMK1}`, secret: MMK1, reason: 'env' },
      { text: `{"license":"${MMK2}"}`, secret: MMK2, reason: 'JSON' },
    ],
    negatives: [{ text: 'suffix _mmk', reason: 'suffix only' }, { text: 'abc_def_mmk', reason: 'too short' }] },
  token({ id: 'yandex-api-key', description: 'Yandex Cloud API key (AQVN + 35-38)', prefix: 'AQVN', body: [b64url(35, 38)], after: 'A-Za-z0-9_-', validate: ent }),
  token({ id: 'clickhouse-cloud-secret', description: 'ClickHouse Cloud API secret (4b1d + 38)', prefix: '4b1d', body: [alnum(38)], before: 'A-Za-z0-9', validate: (c) => entropy(c) >= 4 }),
];
