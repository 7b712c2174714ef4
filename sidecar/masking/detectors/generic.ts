// Context-only secrets: passwords in URLs and assignments, secret-named keys, auth headers, docker/curl credentials.
import type { Detector, Rng } from '../types.ts';
import { AFTER_SEP, ALNUM, ASSIGN, B64, HEX, KEY_CLOSE, charClasses, entropy, fake, isPlaceholder } from './lib.ts';

const PW_ALPHABET = ALNUM + '!%*_-+.~';
const genPassword = (rng: Rng): string => rng.pick(ALNUM, 2) + rng.pick(PW_ALPHABET, 8 + rng.int(16)) + rng.pick('0123456789', 1);

// Values that are code, not data: function calls, lookups, absolute paths.
function looksLikeCode(v: string): boolean {
  return /^[A-Za-z_][\w.]*\(/.test(v) || /^(?:\/[\w.-]+){2,}\/?$/.test(v) || /^[A-Za-z_]\w*\[/.test(v);
}

/** Quoted values may hold spaces; unquoted ones stop at whitespace, quotes and list/URL separators. */
const VALUE = String.raw`(?<secret>(?<=["'])[^"'\r\n\\]{1,200}(?=\\?["'])|[^\s"'\x60,;&<>\\]{1,200})`;

// Any scheme: userinfo with a password is a credential whatever the protocol (postgresql+psycopg2, redis+sentinel…).
const URL_SCHEMES = String.raw`[A-Za-z][A-Za-z0-9+.-]{1,30}`;
export const connectionUrlPassword: Detector = {
  id: 'connection-url-password',
  category: 'secret',
  description: 'password inside a connection URL (postgres://u:p@h, mysql://, mongodb+srv://, redis://, amqp://, https://u:p@h): only the password is masked',
  keywords: ['://'],
  pattern: new RegExp(String.raw`(?<![A-Za-z0-9+.-])${URL_SCHEMES}://[^\s:/?#@"'<>\\]{0,128}:(?<secret>[^\s/?#@"'<>\\]{1,256})@`, 'gid'),
  validate: (c) => !isPlaceholder(c) && !isPlaceholder(safeDecode(c)),
  confidence: 'high',
  maxLength: 420,
  generate: (rng) => {
    const schemes = ['postgres', 'postgresql', 'mysql', 'mongodb+srv', 'redis', 'amqp', 'https', 'mssql'];
    return `${schemes[rng.int(schemes.length)] ?? 'postgres'}://${rng.pick('abcdefghijklmnopqrstuvwxyz', 6)}:${genPassword(rng)}@db-${rng.int(99)}.internal.test:5432/app`;
  },
  positives: [
    { text: 'DATABASE_URL=postgres://app:Zx8-qL2v!wP9@db.internal:5432/app', secret: 'Zx8-qL2v!wP9', reason: 'postgres URL in env' },
    { text: '{"uri":"mongodb+srv://svc:s3cr3t%40Pw@cluster0.abcd.mongodb.net/db"}', secret: 's3cr3t%40Pw', reason: 'mongodb+srv in JSON, percent-encoded' },
    { text: 'redis://:Pq7rT9sU1v@cache:6379/0', secret: 'Pq7rT9sU1v', reason: 'redis with empty user' },
    { text: 'git clone https://oauth2:tok3nV4lue@gitlab.test/g/p.git', secret: 'tok3nV4lue', reason: 'https basic auth' },
  ],
  negatives: [
    { text: 'postgres://app:${DB_PASSWORD}@db:5432/app', reason: 'environment reference' },
    { text: 'mysql://root:<password>@localhost/db', reason: 'placeholder' },
    { text: 'https://example.test:8443/path?q=1', reason: 'a port, not a password' },
    { text: 'postgres://app@db:5432/app', reason: 'no password at all' },
  ],
};

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// Keys that name a password; the lookahead drops settings *about* passwords (policy, length, reset…).
const PW_KEY = String.raw`(?:password|passwd|passphrase|passwort|contrase(?:n|ñ)a|(?<![A-Za-z])pass(?![A-Za-z])|(?<![A-Za-z])pwd(?![A-Za-z]))(?![A-Za-z_.-]{0,6}(?:policy|length|min|max|reset|expir|field|label|hint|prompt|file|path|url|less|required|strength|rules|changed|age|auth|enabled|history|complexity|forgot|placeholder|regex|pattern|hash_?algo))[A-Za-z0-9_.-]{0,24}`;

function passwordValid(c: string): boolean {
  const v = c.trim();
  if (isPlaceholder(v) || looksLikeCode(v)) return false;
  if (/^[0-9]{1,3}$/.test(v)) return false; // counts and flags, not passwords
  return !/^(?:on|off|yes|no|y|n|0|1)$/i.test(v);
}

const PW1 = fake(601, ALNUM, 14);
const PW2 = fake(602, ALNUM, 10) + '!#';
export const passwordAssignment: Detector = {
  id: 'password-assignment',
  category: 'secret',
  description: 'value after a password key (env, YAML, JSON, INI, CLI --password=, connection strings); any non-placeholder value is masked',
  keywords: ['pass', 'pwd', 'contrase'],
  pattern: new RegExp(String.raw`${PW_KEY}${KEY_CLOSE}[ \t]{0,3}(?::=|=>|[:=])${AFTER_SEP}${VALUE}`, 'gid'),
  validate: passwordValid,
  confidence: 'medium',
  maxLength: 300,
  generate: (rng) => {
    const keys = ['password', 'DB_PASSWORD', 'PGPASSWORD', '"password"', 'spring.datasource.password', 'admin_pass', 'redis-password', 'Password'];
    const k = keys[rng.int(keys.length)] ?? 'password';
    const v = genPassword(rng);
    const forms = [`${k}=${v}`, `${k}: ${v}`, `${k}: "${v}"`, `${k} = '${v}'`, `{${k.startsWith('"') ? k : `"${k}"`}:"${v}"}`, `--${k.replace(/"/g, '')}=${v}`];
    return forms[rng.int(forms.length)] ?? `${k}=${v}`;
  },
  positives: [
    { text: `DB_PASSWORD=${PW1}\nDB_USER=app`, secret: PW1, reason: '.env file' },
    { text: `{"username":"app","password":"${PW2}"}`, secret: PW2, reason: 'JSON' },
    { text: `spring:\n  datasource:\n    password: "${PW1}"\n`, secret: PW1, reason: 'YAML, quoted' },
    { text: `Server=db;User Id=sa;Password=${PW2};`, secret: PW2, reason: 'ADO.NET connection string' },
    { text: `mysql --user=root --password=${PW1} app`, secret: PW1, reason: 'CLI flag' },
    { text: 'password: changeme', secret: 'changeme', reason: 'weak but real-looking values are masked too (documented choice)' },
    { text: `{\\"password\\":\\"${PW2}\\"}`, secret: PW2, reason: 'JSON escaped inside a JSON string' },
    { text: 'password: "correct horse battery staple"', secret: 'correct horse battery staple', reason: 'quoted value with spaces' },
    { text: `"{""user"":""app"",""password"":""${PW1}""}"`, secret: PW1, reason: 'JSON inside a CSV field (doubled quotes)' },
    { text: `{\n  "password" :\n    "${PW2}"\n}`, secret: PW2, reason: 'pretty-printed JSON, value on the next line' },
    { text: `db:\n  password: |\n    ${PW1}\n`, secret: PW1, reason: 'YAML block scalar' },
    { text: `{"password":+"${PW2}"}`, secret: PW2, reason: 'form-encoded JSON: + for the space' },
  ],
  negatives: [
    { text: 'password: ${DB_PASSWORD}', reason: 'environment reference' },
    { text: 'password=<password>', reason: 'angle placeholder' },
    { text: 'PASSWORD=********', reason: 'already masked' },
    { text: '"password_min_length": 12', reason: 'a setting about passwords' },
    { text: 'password: {{ .Values.db.password }}', reason: 'template' },
    { text: 'PWD=/home/agent/src', reason: 'the shell working directory' },
    { text: 'compass: north', reason: 'pass inside another word' },
    { text: 'password: string;', reason: 'a type annotation' },
    { text: '"{""password"":""""}"', reason: 'empty value, doubled quotes' },
    { text: 'env:\n  DB_PASSWORD:\n    valueFrom:\n      secretKeyRef: {name: db}', reason: 'a nested mapping on the next line, not a value' },
    { text: 'password: |\n  ${DB_PASSWORD}\n', reason: 'reference in a block scalar' },
  ],
};

export const passwordFlag: Detector = {
  id: 'password-flag',
  category: 'secret',
  description: 'password given after a space: CLI flags (--password x, -p x), .netrc (password x), SQL (PASSWORD \'x\', IDENTIFIED BY \'x\')',
  keywords: ['pass', 'identified by', 'pwd'],
  pattern: new RegExp(String.raw`(?:--?(?:password|passwd|pass|pwd)|(?<![A-Za-z])(?:password|passwd)|identified[ \t]+by)(?:[ \t]{1,3}(?:is|was|now|set to))?[ \t]{1,3}(?:\\?["'])?${VALUE}`, 'gid'),
  validate: (c) => passwordValid(c) && (charClasses(c) >= 2 || c.length >= 12) && c.length >= 4,
  confidence: 'medium',
  maxLength: 300,
  generate: (rng) => {
    const forms = ['machine api.test login bot password ', '--password ', "ALTER USER app WITH PASSWORD '", "CREATE USER u IDENTIFIED BY '"];
    const f = forms[rng.int(forms.length)] ?? '--password ';
    return f + genPassword(rng) + (f.endsWith("'") ? "'" : '');
  },
  positives: [
    { text: `machine github.test login bot password ${PW1}`, secret: PW1, reason: '.netrc' },
    { text: `ALTER ROLE app WITH LOGIN PASSWORD '${PW2}';`, secret: PW2, reason: 'SQL' },
    { text: `CREATE USER 'u'@'%' IDENTIFIED BY '${PW1}';`, secret: PW1, reason: 'MySQL' },
    { text: `psql --password ${PW2} -h db`, secret: PW2, reason: 'CLI' },
    { text: 'fyi the admin password is hunter2 until Friday', secret: 'hunter2', reason: 'prose with a value that looks like a password' },
  ],
  negatives: [
    { text: 'Enter your password below and press enter.', reason: 'prose: a plain word after password' },
    { text: 'the password field is required', reason: 'prose' },
  ],
};

// Keys that name a credential; the lookahead drops names/refs/counters (secretName, tokens, token_type…).
const SECRET_KEY = String.raw`(?:secret|api[_.-]?key|apikey|(?:access|auth|refresh|id|session|bearer|private|client|app|bot|service|personal)[_.-]?token|(?<![A-Za-z])token|(?:access|secret|private|encryption|signing|master|auth|client|app|service|license|session|account|admin|webhook)[_.-]?key|credentials?|client[_.-]?secret|x-api-key|x-auth-token)(?![A-Za-z_.-]{0,8}(?:name|ref|store|manager|provider|version|arn|type|path|file|url|uri|kind|count|id\b|ids\b|s\b|iz|length|size|endpoint|expir|ttl|limit|usage|header|param|field|label))[A-Za-z0-9_.-]{0,24}`;

function secretValueValid(c: string): boolean {
  const v = c.trim();
  if (v.length < 8 || isPlaceholder(v) || looksLikeCode(v)) return false;
  if (/^[a-z]+(?:[_-][a-z]+)*$/.test(v) || /^[A-Z]+(?:_[A-Z]+)*$/.test(v)) return false; // words and CONSTANT_NAMES
  if (/^https?:\/\//.test(v) || / /.test(v)) return false;
  const h = entropy(v);
  return charClasses(v) >= 2 && (v.length >= 16 ? h >= 3 : h >= 2.5);
}

const SEC1 = fake(603, ALNUM, 32);
const SEC2 = fake(604, HEX, 40);
export const secretAssignment: Detector = {
  id: 'secret-assignment',
  category: 'secret',
  description: 'credential-looking value (entropy and shape checked) after a secret / api_key / token / client_secret / *_key name',
  keywords: ['secret', 'key', 'token', 'credential'],
  pattern: new RegExp(String.raw`${SECRET_KEY}${ASSIGN}${VALUE}`, 'gid'),
  validate: secretValueValid,
  confidence: 'medium',
  maxLength: 290,
  generate: (rng) => {
    const keys = ['API_KEY', 'client_secret', 'SECRET_KEY', 'access_token', 'x-api-key', 'ENCRYPTION_KEY', 'apiKey', 'auth_token', 'WEBHOOK_SECRET'];
    const k = keys[rng.int(keys.length)] ?? 'API_KEY';
    const v = rng.pick(ALNUM, 24 + rng.int(24));
    const forms = [`${k}=${v}`, `"${k}": "${v}"`, `${k}: ${v}`, `${k}: '${v}'`];
    return forms[rng.int(forms.length)] ?? `${k}=${v}`;
  },
  positives: [
    { text: `API_KEY=${SEC1}`, secret: SEC1, reason: 'env' },
    { text: `{"client_secret":"${SEC2}","client_id":"abc"}`, secret: SEC2, reason: 'OAuth client JSON' },
    { text: `X-API-Key: ${SEC1}`, secret: SEC1, reason: 'HTTP header' },
    { text: `app.secret_key = '${SEC2}'`, secret: SEC2, reason: 'Python config' },
    { text: `"{""api_key"": ""${SEC1}""}"`, secret: SEC1, reason: 'JSON inside a CSV field (doubled quotes)' },
    { text: `{\n  "client_secret":\n    "${SEC2}"\n}`, secret: SEC2, reason: 'pretty-printed JSON, value on the next line' },
    { text: `client_secret: >-\n  ${SEC1}\n`, secret: SEC1, reason: 'YAML folded block scalar' },
  ],
  negatives: [
    { text: '"prompt_tokens": 1234, "completion_tokens": 56', reason: 'token counters' },
    { text: 'secretName: my-app-credentials', reason: 'a Secret reference' },
    { text: '"token_type": "Bearer"', reason: 'token type' },
    { text: 'api_key: YOUR_API_KEY', reason: 'placeholder' },
    { text: 'max_tokens: 4096', reason: 'a limit' },
    { text: 'secret: ${{ secrets.DEPLOY_KEY }}', reason: 'CI template' },
    { text: 'primary_key = "user_id"', reason: 'a database key name' },
    { text: '"{""api_key"": ""${API_KEY}""}"', reason: 'reference, doubled quotes' },
    { text: 'api_key:\n  description: the key', reason: 'a nested mapping on the next line' },
  ],
};

export const highEntropyInContext: Detector = {
  id: 'high-entropy-in-context',
  category: 'secret',
  description: 'high-entropy hex (32-128) or base64 (32-256) shortly after a secret / token / key / password word',
  keywords: ['secret', 'token', 'key', 'passw', 'credential', 'auth'],
  pattern: /(?:secret|token|api[_ -]?key|private[_ -]?key|signing[_ -]?key|passw(?:or)?d|credential|auth)[^\r\n,;{}[\]]{0,32}?(?<![A-Za-z0-9+/_.-])(?<secret>[a-fA-F0-9]{32,128}|[A-Za-z0-9+/_-]{32,256}={0,2})(?![A-Za-z0-9+/=_-]|\.[A-Za-z0-9])/gid,
  validate: (c) => {
    if (isPlaceholder(c)) return false;
    if (/^[a-fA-F0-9]+$/.test(c)) return entropy(c) >= 3.2;
    return entropy(c) >= 4.2 && charClasses(c) >= 3;
  },
  confidence: 'low',
  maxLength: 320,
  generate: (rng) => (rng.int(2) === 0 ? `signing secret is ${rng.pick(HEX, 64)}` : `token => ${rng.pick(B64, 44)}`),
  positives: [
    { text: `# webhook secret\n  value ${fake(605, HEX, 64)}`.replace('\n  ', ' '), secret: fake(605, HEX, 64), reason: 'hex after the word secret' },
    { text: `Your new token (copy it now): ${fake(606, B64, 44)}`, secret: fake(606, B64, 44), reason: 'base64 in prose' },
  ],
  negatives: [
    { text: 'commit 3f786850e387550fdab836ed7e6dc881de23001b Merge branch main', reason: 'git SHA without a secret word' },
    { text: '{"token_count": 5, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}', reason: 'hash in another field' },
    { text: 'sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', reason: 'a bare digest' },
  ],
};

/** Basic credentials decode to user:password. */
function basicValid(c: string): boolean {
  const s = Buffer.from(c, 'base64').toString('utf8');
  const i = s.indexOf(':');
  return i > 0 && i < s.length - 1 && /^[\x20-\x7e]+$/.test(s) && !isPlaceholder(s.slice(i + 1));
}
const BASIC = Buffer.from('deploy:' + fake(607, ALNUM, 16)).toString('base64');
export const basicAuthHeader: Detector = {
  id: 'basic-auth-header',
  category: 'secret',
  description: 'HTTP Basic credentials (Authorization: Basic base64(user:password))',
  keywords: ['basic'],
  pattern: /(?<![A-Za-z])[Bb]asic[ \t]{1,3}(?<secret>[A-Za-z0-9+/]{8,400}={0,2})(?![A-Za-z0-9+/=])/gd,
  validate: basicValid,
  confidence: 'high',
  maxLength: 410,
  generate: (rng) => `Authorization: Basic ${Buffer.from(`${rng.pick('abcdefghij', 6)}:${genPassword(rng)}`).toString('base64')}`,
  positives: [
    { text: `Authorization: Basic ${BASIC}`, secret: BASIC, reason: 'request header' },
    { text: `curl -H "Authorization: Basic ${BASIC}" https://api.test`, secret: BASIC, reason: 'curl' },
  ],
  negatives: [
    { text: 'Basic usage: run the tool with --help', reason: 'prose' },
    { text: `Authorization: Basic ${Buffer.from('nocolonhere').toString('base64')}`, reason: 'does not decode to user:password' },
  ],
};

const BEARER = fake(608, ALNUM + '-._~', 40);
export const bearerToken: Detector = {
  id: 'bearer-token',
  category: 'secret',
  description: 'opaque bearer / token credential in an Authorization header (Bearer x, token x)',
  keywords: ['bearer', 'authorization'],
  pattern: /(?:(?<![A-Za-z])[Bb]earer|[Aa]uthorization["']?[ \t]{0,3}[:=][ \t]{0,3}["']?(?:[Tt]oken|[Bb]earer)?)[ \t]{1,3}(?<secret>[A-Za-z0-9._~+/-]{16,4096}={0,2})(?![A-Za-z0-9._~+/=-])/gd,
  validate: (c) => entropy(c) >= 3.3 && !isPlaceholder(c) && charClasses(c) >= 2,
  confidence: 'high',
  maxLength: 4200,
  generate: (rng) => `Authorization: Bearer ${rng.pick(ALNUM + '-._~', 32 + rng.int(60))}`,
  positives: [
    { text: `Authorization: Bearer ${BEARER}`, secret: BEARER, reason: 'header' },
    { text: `{"headers":{"Authorization":"token ${BEARER}"}}`, secret: BEARER, reason: 'GitHub-style token scheme in JSON' },
    { text: `curl -H 'Authorization: Bearer ${BEARER}'`, secret: BEARER, reason: 'curl' },
  ],
  negatives: [
    { text: 'Authorization: Bearer <token>', reason: 'placeholder' },
    { text: 'use a bearer token from the console', reason: 'prose' },
    { text: 'Authorization: Bearer ${ACCESS_TOKEN}', reason: 'reference' },
  ],
};

const DOCKER_AUTH = Buffer.from('robot$ci:' + fake(609, ALNUM, 24)).toString('base64');
export const dockerConfigAuth: Detector = {
  id: 'docker-config-auth',
  category: 'secret',
  description: 'docker config.json / .dockerconfigjson "auth" (base64 user:password) and "identitytoken"',
  keywords: ['"auth"', 'identitytoken', '\\"auth\\"'],
  pattern: /\\?"(?:auth|identitytoken|identityToken|registrytoken)\\?"[ \t]{0,3}:[ \t]{0,3}\\?"(?<secret>[A-Za-z0-9+/=._-]{8,2000})\\?"/gd,
  validate: (c) => basicValid(c) || (c.length >= 20 && entropy(c) >= 3.5),
  confidence: 'high',
  maxLength: 2030,
  generate: (rng) => `{"auths":{"registry.test":{"auth":"${Buffer.from(`ci:${genPassword(rng)}`).toString('base64')}"}}}`,
  positives: [
    { text: `{"auths":{"ghcr.io":{"auth":"${DOCKER_AUTH}"}}}`, secret: DOCKER_AUTH, reason: 'config.json' },
    { text: `{\\"auths\\":{\\"r.test\\":{\\"auth\\":\\"${DOCKER_AUTH}\\"}}}`, secret: DOCKER_AUTH, reason: 'escaped inside a JSON string' },
  ],
  negatives: [
    { text: '{"auth":"none"}', reason: 'a mode word' },
    { text: '{"auth": "oauth2-proxy"}', reason: 'not base64 credentials' },
  ],
};

export const curlUserPassword: Detector = {
  id: 'curl-user-password',
  category: 'secret',
  description: 'password in curl/wget/httpie -u user:password / --user / --password flags',
  keywords: ['-u', '--user', '--http-password', '--auth'],
  pattern: /(?:(?<![A-Za-z0-9-])-u|--user|--auth|-a)[ =]{1,2}["']?[^\s:'"]{1,64}:(?<secret>[^\s'"]{1,128})/gd,
  validate: (c) => passwordValid(c) && c.length >= 3,
  confidence: 'high',
  maxLength: 210,
  generate: (rng) => `curl -u admin:${genPassword(rng)} https://api.test/v1`,
  positives: [
    { text: `curl -u admin:${PW1} https://api.test`, secret: PW1, reason: 'curl -u' },
    { text: `curl --user 'ci:${PW2}' -X POST https://h.test`, secret: PW2, reason: 'quoted --user' },
  ],
  negatives: [
    { text: 'curl -u admin:$API_PASS https://api.test', reason: 'shell variable' },
    { text: 'sort -u file.txt', reason: 'another -u flag' },
  ],
};

export const passwordXml: Detector = {
  id: 'password-xml-element',
  category: 'secret',
  description: 'password / secret inside an XML element or attribute (<password>x</password>, password="x")',
  keywords: ['password', 'secret', 'passwd'],
  pattern: /<(?:password|passwd|Password|secret|Secret|clientSecret|apiKey)>(?<secret>[^<\r\n]{1,200})<\//gd,
  validate: passwordValid,
  confidence: 'medium',
  maxLength: 230,
  generate: (rng) => `<server><id>repo</id><password>${genPassword(rng)}</password></server>`,
  positives: [
    { text: `<server><username>u</username><password>${PW1}</password></server>`, secret: PW1, reason: 'maven settings.xml' },
    { text: `<Secret>${PW2}</Secret>`, secret: PW2, reason: 'capitalized element' },
  ],
  negatives: [
    { text: '<password>${env.REPO_PASS}</password>', reason: 'reference' },
    { text: '<password></password>', reason: 'empty' },
  ],
};

export const GENERIC: readonly Detector[] = [
  connectionUrlPassword, passwordAssignment, passwordFlag, secretAssignment, highEntropyInContext, basicAuthHeader,
  bearerToken, dockerConfigAuth, curlUserPassword, passwordXml,
];
