import fs from 'node:fs/promises';
import Value from 'typebox/value';
import { type Document, LineCounter, parseDocument } from 'yaml';
import { ProvisioningFile } from './file-schema.js';
import { type PathSegment, formatPath } from './path.js';
import { semanticIssues } from './validate.js';

/** One problem in a provisioning file: where (path in the file, and line when known) and what. */
export interface ProvisioningIssue {
  /** Path in the file's data, e.g. `organizations[0].users[1].role`. */
  path: string;
  line?: number | undefined;
  message: string;
}

export class ProvisioningError extends Error {
  constructor(
    readonly file: string,
    readonly issues: ProvisioningIssue[],
    options?: ErrorOptions,
  ) {
    super(
      issues.map((issue) => `${file}${issue.line ? `:${issue.line}` : ''}: ${issue.path || '(top level)'}: ${issue.message}`).join('\n'),
      options,
    );
    this.name = 'ProvisioningError';
  }
}

interface SchemaError {
  instancePath: string;
  keyword: string;
  message: string;
  params: Record<string, unknown>;
}

function pointerSegments(pointer: string): PathSegment[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** Schema errors in readable form: the noise TypeBox reports alongside (`schema is false`, `anyOf` branches) is dropped. */
function schemaIssues(data: unknown): { path: PathSegment[]; message: string }[] {
  const errors = [...Value.Errors(ProvisioningFile, data)] as SchemaError[];
  const issues: { path: PathSegment[]; message: string }[] = [];
  for (const error of errors) {
    if (error.keyword === 'boolean') continue;
    const path = pointerSegments(error.instancePath);
    if (error.keyword === 'additionalProperties') {
      for (const name of (error.params.additionalProperties as string[]) ?? [])
        issues.push({ path: [...path, name], message: 'is not a known field' });
    } else if (error.keyword === 'required') {
      for (const name of (error.params.requiredProperties as string[]) ?? [])
        issues.push({ path: [...path, name], message: 'is required' });
    } else {
      issues.push({ path, message: error.message });
    }
  }
  return issues;
}

function lineOf(doc: Document, counter: LineCounter, path: readonly PathSegment[]): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Parses and validates text; throws ProvisioningError listing every problem found. */
export function parseProvisioning(text: string, file: string): ProvisioningFile {
  // A .json file is held to JSON itself: YAML would quietly accept trailing commas, comments and
  // unquoted keys that the JSON tooling the operator uses elsewhere rejects.
  if (/\.json$/i.test(file)) {
    try {
      JSON.parse(text);
    } catch (error) {
      const message = (error as Error).message;
      const position = /position (\d+)/.exec(message)?.[1];
      const line = position === undefined ? undefined : text.slice(0, Number(position)).split('\n').length;
      throw new ProvisioningError(file, [{ path: '', line, message: `not valid JSON: ${message}` }]);
    }
  }
  const counter = new LineCounter();
  // YAML 1.2 is a superset of JSON, so one parser reads both formats.
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ProvisioningError(
      file,
      doc.errors.map((e) => ({ path: '', line: e.linePos?.[0]?.line, message: `not valid YAML or JSON: ${e.message.split('\n')[0]}` })),
    );
  }
  const data: unknown = doc.toJS();
  const found = schemaIssues(data);
  if (found.length === 0) found.push(...semanticIssues(data as ProvisioningFile));
  if (found.length > 0) {
    throw new ProvisioningError(
      file,
      found.map((issue) => ({ path: formatPath(issue.path), line: lineOf(doc, counter, issue.path), message: issue.message })),
    );
  }
  return data as ProvisioningFile;
}

export async function loadProvisioningFile(file: string): Promise<ProvisioningFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new ProvisioningError(file, [
      { path: '', message: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` },
    ]);
  }
  return parseProvisioning(text, file);
}
