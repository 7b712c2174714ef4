// A local OIDC issuer for trying the sidecar on a laptop: the test suite's oidc-provider on 127.0.0.1:8099; prints a fresh agent token.
// Run with tsx (it imports TypeScript): node_modules/.bin/node --import tsx examples/standalone/dev-idp.js [client]
import process from 'node:process';
import { startOidcProvider } from '../../test/helpers/oidc-provider.ts';

const port = Number(process.env.DEV_IDP_PORT ?? 8099);
const idp = await startOidcProvider({ port });
const client = process.argv[2] ?? 'agent-writer';
process.stdout.write(`issuer ${idp.issuer} (clients: agent-writer in db-writers, agent-reader in db-readers, agent-nogroups)\n`);
process.stdout.write(`token for ${client} (valid a few minutes; restart this script for another; Ctrl-C stops it):\n${await idp.token(client)}\n`);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => void idp.close().then(() => process.exit(0)));
