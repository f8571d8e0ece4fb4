import type { Module } from '../module.js';
import * as m0007 from './migrations/0007_abuse_counters.js';

/** The abuse guard's counters (the guard itself is a server service: server/app.ts). */
export const abuseModule: Module = {
  name: 'abuse',
  migrations: { '0007_abuse_counters': m0007 },
};
