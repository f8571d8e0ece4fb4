/**
 * One thread of the argon2id pool (argon2-pool.ts): runs each task synchronously, so this thread
 * is exactly one core's worth of hashing while it works.
 */
import { hashRawSync, hashSync, verifySync } from '@node-rs/argon2';
import type { Argon2Task } from './argon2-pool.js';

export default function run(task: Argon2Task): string | boolean | Uint8Array {
  switch (task.op) {
    case 'hash':
      return hashSync(task.password, task.options);
    case 'hashRaw':
      return hashRawSync(task.password, task.options);
    case 'verify':
      try {
        return verifySync(task.hash, task.password);
      } catch {
        return false; // malformed stored hash: never a match, never a crash
      }
  }
}
