/** A place in a provisioning file's data, as segments (`['organizations', 0, 'users']`). */
export type PathSegment = string | number;

/** `organizations[0].users[1].role`: how issues name a place in the file. */
export function formatPath(segments: readonly PathSegment[]): string {
  return segments.reduce<string>((out, s) => (typeof s === 'number' ? `${out}[${s}]` : out ? `${out}.${s}` : s), '');
}
