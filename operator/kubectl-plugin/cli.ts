#!/usr/bin/env node
// The kubectl-chaperone executable: kubectl finds it on PATH as a plugin (`kubectl chaperone …`).
import { run } from './main.ts';

const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
const code = await run(process.argv.slice(2), { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`), env: process.env, signal: controller.signal });
process.exitCode = code;
