import readline from 'node:readline';
import { Writable } from 'node:stream';

/** A failure to report in one line, with the exit code to end on. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

/**
 * A generated credential, shown this once and stored only hashed: `note` says what it is (on
 * standard error when standard output is to carry the secret alone), then the secret alone on its
 * line of standard output, for scripts.
 */
export function printSecret(note: string, secret: string, noteTo: 'stdout' | 'stderr' = 'stdout'): void {
  process[noteTo].write(`${note}\n`);
  print(secret);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function promptHidden(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
  const answer = new Promise<string>((resolve) => rl.question(question, resolve));
  muted = true;
  const value = await answer;
  rl.close();
  process.stderr.write('\n');
  return value;
}

/**
 * Passwords never come from argv (visible in `ps`): standard input when asked, the
 * SENSORCLOUD_PASSWORD variable, or a hidden prompt on a terminal.
 */
export async function readPassword(fromStdin: boolean | undefined): Promise<string> {
  if (fromStdin) return readStdin();
  const fromEnv = process.env.SENSORCLOUD_PASSWORD;
  if (fromEnv) return fromEnv;
  if (process.stdin.isTTY) return promptHidden('Password: ');
  throw new CliError('no password given: use --password-stdin, SENSORCLOUD_PASSWORD or run on a terminal', 2);
}
