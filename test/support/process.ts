/**
 * Process-wide state a test borrows for a moment and gives back: environment variables, and what
 * the code under test writes on standard output and standard error.
 */

/**
 * Runs `run` with `env` laid over process.env (`undefined` unsets a variable), then restores every
 * variable it touched, whether `run` succeeds or throws.
 */
export async function withEnv<T>(env: Record<string, string | undefined>, run: () => Promise<T>): Promise<T> {
  const saved = new Map<string, string | undefined>();
  for (const [key, value] of Object.entries(env)) {
    saved.set(key, process.env[key]);
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  try {
    return await run();
  } finally {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

export interface Captured {
  stdout: string;
  stderr: string;
}

/**
 * Runs `run` with standard output and standard error (or only the streams named) swallowed and
 * recorded, write callbacks still called; returns its result along with what was written.
 */
export async function captureOutput<T>(
  run: () => Promise<T>,
  streams: readonly (keyof Captured)[] = ['stdout', 'stderr'],
): Promise<{ result: T } & Captured> {
  const written: Captured = { stdout: '', stderr: '' };
  const originals = streams.map((name) => [name, process[name].write] as const);
  for (const name of streams) {
    process[name].write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      written[name] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
      return true;
    }) as typeof process.stdout.write;
  }
  try {
    const result = await run();
    return { result, ...written };
  } finally {
    for (const [name, write] of originals) process[name].write = write;
  }
}
