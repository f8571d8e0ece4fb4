import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `npm start` runs `scripts/build.mjs --if-stale` first: it must skip tsc when dist/ is up to
 * date and compile when an input changed. The script runs here on a one-file copy of the project
 * layout (its own src/, tsconfigs and package.json; node_modules linked to this checkout's), so
 * each tsc run takes about a second instead of compiling the whole server.
 */

const repo = fileURLToPath(new URL('../..', import.meta.url));
let project: string;

const file = (name: string) => path.join(project, name);
const readJson = (name: string) => JSON.parse(fs.readFileSync(path.join(repo, name), 'utf8'));

function build(...args: string[]): string {
  return execFileSync(process.execPath, [file('scripts/build.mjs'), ...args], { cwd: project, encoding: 'utf8', stdio: 'pipe' });
}

/** Sets a file's mtime `seconds` from now (negative: in the past). */
function setMtime(name: string, seconds: number): void {
  const time = new Date(Date.now() + seconds * 1000);
  fs.utimesSync(file(name), time, time);
}

beforeAll(() => {
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'sensorcloud-build-'));
  fs.mkdirSync(file('scripts'));
  fs.mkdirSync(file('src/lib'), { recursive: true });
  fs.copyFileSync(path.join(repo, 'scripts/build.mjs'), file('scripts/build.mjs'));
  fs.symlinkSync(path.join(repo, 'node_modules'), file('node_modules'), 'dir');
  fs.writeFileSync(file('package.json'), JSON.stringify({ name: 'fixture', type: 'module', private: true }));
  fs.writeFileSync(
    file('tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2023', module: 'NodeNext', strict: true, types: [], skipLibCheck: true } }),
  );
  // The same build settings as this repository's tsconfig.build.json.
  fs.writeFileSync(
    file('tsconfig.build.json'),
    JSON.stringify({
      extends: './tsconfig.json',
      compilerOptions: { ...readJson('tsconfig.build.json').compilerOptions },
      include: ['src'],
    }),
  );
  fs.writeFileSync(file('src/main.ts'), 'export const version: number = 1;\n');
  fs.writeFileSync(file('src/lib/extra.ts'), 'export const extra = 1;\n');
  // A checkout made a minute ago.
  for (const name of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src/main.ts', 'src/lib/extra.ts', 'src/lib', 'src']) {
    setMtime(name, -60);
  }
});

afterAll(() => {
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

describe('scripts/build.mjs', () => {
  it('is what npm runs: prepare and build always compile, prestart only when stale', () => {
    const { scripts } = readJson('package.json');
    expect(scripts.build).toBe('node scripts/build.mjs');
    expect(scripts.prepare).toBe('npm run build');
    expect(scripts.prestart).toBe('node scripts/build.mjs --if-stale');
    const { compilerOptions } = readJson('tsconfig.build.json');
    expect(compilerOptions.incremental).toBe(true);
    // Build info inside the output directory: deleting dist/ forces a full build.
    expect(path.dirname(path.normalize(compilerOptions.tsBuildInfoFile))).toBe(path.normalize(compilerOptions.outDir));
  });

  it('compiles when there is no previous build, then skips while nothing changed', () => {
    expect(build('--if-stale')).toMatch(/compiling \(no build stamp/);
    expect(fs.readFileSync(file('dist/main.js'), 'utf8')).toContain('version = 1');
    const builtAt = fs.statSync(file('dist/main.js')).mtimeMs;

    expect(build('--if-stale')).toMatch(/up to date, not compiling/);
    expect(build('--if-stale')).toMatch(/up to date, not compiling/);
    expect(fs.statSync(file('dist/main.js')).mtimeMs).toBe(builtAt);
  });

  it('compiles again when a source file is touched', () => {
    fs.writeFileSync(file('src/main.ts'), 'export const version: number = 2;\n');
    setMtime('src/main.ts', 5);
    expect(build('--if-stale')).toMatch(/compiling \(src\/main\.ts changed/);
    expect(fs.readFileSync(file('dist/main.js'), 'utf8')).toContain('version = 2');
    expect(build('--if-stale')).toMatch(/up to date/);
  });

  it('compiles again when a file is removed (its directory changes) or a tsconfig changes', () => {
    fs.rmSync(file('src/lib/extra.ts'));
    setMtime('src/lib', 10);
    expect(build('--if-stale')).toMatch(/compiling \(src\/lib changed/);
    expect(build('--if-stale')).toMatch(/up to date/);

    setMtime('tsconfig.build.json', 15);
    expect(build('--if-stale')).toMatch(/compiling \(tsconfig\.build\.json changed/);
    expect(build('--if-stale')).toMatch(/up to date/);
  });

  it('compiles again when dist/ is deleted, and always without --if-stale', () => {
    fs.rmSync(file('dist'), { recursive: true });
    expect(build('--if-stale')).toMatch(/compiling \(no build stamp/);
    expect(fs.existsSync(file('dist/main.js'))).toBe(true);
    fs.rmSync(file('dist/main.js'));
    // A forced build re-emits what is missing even though tsc's build info says nothing changed.
    build();
    expect(fs.existsSync(file('dist/main.js'))).toBe(true);
  });
});
