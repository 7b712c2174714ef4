// The demo's narration: numbered steps, indented output, and checks that stop the demo with the reason when a step misbehaves.
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

let step = 0;
let interrupted = false;

/** Ctrl-C / SIGTERM: the next step or check stops the demo instead of going on. */
export function interrupt(): void {
  interrupted = true;
}

export function wasInterrupted(): boolean {
  return interrupted;
}

/** A new numbered step with what is about to happen. */
export function say(title: string, detail = ''): void {
  if (interrupted && title !== 'Shut down') throw new StepFailed('interrupted: shutting down');
  step += 1;
  console.log(`\n${bold(`[${step}] ${title}`)}${detail ? `\n    ${detail}` : ''}`);
}

/** Output of a command, indented under the step. */
export function show(text: string): void {
  const t = text.trimEnd();
  if (t === '') return;
  for (const line of t.split('\n')) console.log(`    │ ${line}`);
}

export function note(text: string): void {
  console.log(`    ${text}`);
}

export class StepFailed extends Error {
  override readonly name = 'StepFailed';
}

/** Stops the demo unless `ok`; prints a tick otherwise. */
export function check(ok: boolean, what: string, why = ''): void {
  if (interrupted) throw new StepFailed('interrupted: shutting down');
  if (!ok) throw new StepFailed(`demo step failed: ${what}${why ? `\n${why}` : ''}`);
  console.log(`    ✔ ${what}`);
}

export function done(text: string): void {
  console.log(`\n${bold(text)}`);
}
