#!/usr/bin/env node
/**
 * Compiles src/ to dist/ (`tsc -p tsconfig.build.json`, incremental: its build info is kept in
 * dist/, so deleting dist/ forces a full build).
 *
 *   node scripts/build.mjs             compile everything (`npm run build`, `npm install`)
 *   node scripts/build.mjs --if-stale  compile, incrementally, only when an input changed since
 *                                      the last build (`npm start`'s prestart step)
 *
 * Inputs are every file and directory under src/ (a directory's mtime changes when an entry is
 * added, removed or renamed), tsconfig*.json and package.json. After a successful build the newest
 * input mtime seen before tsc started is written to dist/.build-stamp.json; the build is stale when
 * that stamp is missing or an input is now newer than the mtime it records. Recording the inputs'
 * own mtime rather than the time of the build means a file saved during a build is still seen as
 * newer, whatever the clock granularity of the file system.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = path.join(root, 'dist', '.build-stamp.json');

/** The newest mtime (ms) among the build's inputs, and the input that has it. */
function newestInput() {
  let newest = { mtimeMs: 0, file: '' };
  const consider = (file, stat) => {
    if (stat.mtimeMs > newest.mtimeMs) newest = { mtimeMs: stat.mtimeMs, file: path.relative(root, file) };
  };
  for (const name of fs.readdirSync(root)) {
    if (name === 'package.json' || /^tsconfig.*\.json$/.test(name)) consider(path.join(root, name), fs.statSync(path.join(root, name)));
  }
  const walk = (dir) => {
    consider(dir, fs.statSync(dir));
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else consider(file, fs.statSync(file));
    }
  };
  walk(path.join(root, 'src'));
  return newest;
}

/** Why the build is stale, or undefined when dist/ is up to date. */
function staleness(newest) {
  let stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(STAMP, 'utf8'));
  } catch {
    return 'no build stamp (dist/.build-stamp.json)';
  }
  if (typeof stamp.inputsMtimeMs !== 'number') return 'unreadable build stamp';
  if (newest.mtimeMs > stamp.inputsMtimeMs) return `${newest.file} changed since the last build`;
  return undefined;
}

/** tsc's incremental build info (tsconfig.build.json's tsBuildInfoFile), if it names one. */
function buildInfoFile() {
  try {
    const { compilerOptions } = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8'));
    return compilerOptions?.tsBuildInfoFile ? path.resolve(root, compilerOptions.tsBuildInfoFile) : undefined;
  } catch {
    return undefined;
  }
}

function build(newest, { full }) {
  // tsc trusts its build info: an output deleted by hand is not emitted again while the sources it
  // records are unchanged. A full build (install, `npm run build`) forgets it and emits everything.
  const info = full ? buildInfoFile() : undefined;
  if (info) fs.rmSync(info, { force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    // A failed build leaves no stamp: the next start tries again.
    fs.rmSync(STAMP, { force: true });
    process.exit(result.status ?? 1);
  }
  fs.mkdirSync(path.dirname(STAMP), { recursive: true });
  fs.writeFileSync(STAMP, `${JSON.stringify({ inputsMtimeMs: newest.mtimeMs, newestInput: newest.file })}\n`);
}

const args = process.argv.slice(2);
for (const arg of args) {
  if (arg !== '--if-stale') {
    console.error(`build.mjs: unknown argument "${arg}" (only --if-stale)`);
    process.exit(2);
  }
}
const newest = newestInput();
if (args.includes('--if-stale')) {
  const reason = staleness(newest);
  if (!reason) {
    console.log('build: dist/ is up to date, not compiling');
    process.exit(0);
  }
  console.log(`build: compiling (${reason})`);
}
build(newest, { full: !args.includes('--if-stale') });
