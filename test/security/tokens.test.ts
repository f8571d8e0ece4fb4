import { describe, expect, it } from 'vitest';
import { generateToken } from '../../src/security/tokens.js';

describe('generated tokens', () => {
  it('carry the prefix and 256 fresh random bits each, across many refills of the random pool', () => {
    const count = 5_000; // 40 refills of the 4 KiB pool
    const seen = new Set<string>();
    const chunks = new Set<string>();
    for (let i = 0; i < count; i += 1) {
      const token = generateToken('sc_at_');
      expect(token).toMatch(/^sc_at_[A-Za-z0-9_-]{43}$/);
      seen.add(token);
      // No 8-byte window of any token's randomness ever shows up again (bytes are handed out once).
      const bytes = Buffer.from(token.slice(6), 'base64url');
      for (let offset = 0; offset + 8 <= bytes.length; offset += 8) chunks.add(bytes.subarray(offset, offset + 8).toString('hex'));
    }
    expect(seen.size).toBe(count);
    expect(chunks.size).toBe(count * 4);
  });

  it('serves sizes larger than the pool too', () => {
    const token = generateToken('x_', 5000);
    expect(Buffer.from(token.slice(2), 'base64url')).toHaveLength(5000);
  });
});
