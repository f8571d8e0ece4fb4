import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): any;
}

export interface RawRequest {
  method?: string;
  /** Sent exactly as given (no normalisation, unlike fetch). */
  path: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  /** Send the body with Transfer-Encoding: chunked instead of Content-Length. */
  chunked?: boolean;
}

/**
 * One HTTP/1.1 request over a fresh connection with node:http: any method token, any path bytes,
 * any header, which fetch would refuse or rewrite.
 */
export function rawRequest(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { connection: 'close', ...request.headers };
    if (request.body !== undefined && !request.chunked && headers['content-length'] === undefined)
      headers['content-length'] = Buffer.byteLength(request.body);
    const req = http.request(
      { host: url.hostname, port: url.port, method: request.method ?? 'GET', path: request.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (request.body !== undefined) req.write(request.body);
    req.end();
  });
}
