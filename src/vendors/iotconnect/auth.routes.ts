import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { sourceOf } from '../../abuse/source.js';
import type { Params } from '../../oauth/client-auth.js';
import { GRANT_HANDLERS } from '../../oauth/grants/index.js';
import type { OAuthClient } from '../../oauth/oauth.schema.js';
import type { OAuthRuntime } from '../../oauth/runtime.js';
import { safeEqual } from '../../security/tokens.js';
import { IoTConnectError } from './responses.js';
import { profileClientFor } from './profile-client.js';

/**
 * IoTConnect's three-step sign-in (seeds/004) in front of the canonical password and refresh
 * grants (oauth/grants/): no token logic of its own.
 *
 * 1. `POST /api/v2/Auth/basic-token` hands out the basic token. Anyone may ask for it (the
 *    document's request carries no credential), so it is not a secret: it only says the caller
 *    speaks this profile.
 * 2. `POST /api/v2/Auth/login` with `Authorization: Basic <basic token>`, the organization's
 *    `solution-key` header and `{username, password}` runs the password grant for the
 *    organization's profile client (profile-client.ts). The solution key is the application's
 *    credential: its guesses are counted by the abuse guard like a client secret's.
 * 3. `POST /api/v2/Auth/refresh-token` with the same headers and `{refreshToken}` runs the
 *    refresh grant (rotation and reuse detection included).
 */

/** The basic token: constant, and public by the document's own flow. */
export const BASIC_TOKEN = Buffer.from('sensorcloud:iotconnect').toString('base64');
const BASIC_HEADER = `Basic ${BASIC_TOKEN}`;

const Headers = Type.Object({
  authorization: Type.Optional(Type.String()),
  'solution-key': Type.Optional(Type.String()),
});
const Login = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 320 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
});
const Refresh = Type.Object({
  refreshToken: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'Alias of refreshToken.' })),
});

const TokenAnswer = Type.Object({
  token_type: Type.Literal('bearer'),
  access_token: Type.String(),
  expires_in: Type.Integer(),
  refresh_token: Type.String(),
  status: Type.Literal(200),
});

export function registerIoTConnectAuthRoutes(api: FastifyInstance, rt: OAuthRuntime): void {
  const tags = ['iotconnect'];

  const basicToken = async () => ({ data: BASIC_TOKEN, status: 200, message: 'Basic token has been generated successfully' });
  const basicTokenSchema = {
    tags,
    summary: 'IoTConnect step 1: the basic token for the login request',
    response: { 200: Type.Object({ data: Type.String(), status: Type.Literal(200), message: Type.String() }) },
  };
  api.post('/v2/Auth/basic-token', { schema: basicTokenSchema }, basicToken);
  api.get('/v2/Auth/basic-token', { schema: { ...basicTokenSchema, summary: `${basicTokenSchema.summary} (GET)` } }, basicToken);

  /** Steps 2 and 3 name the application the same way: the basic token and the solution key. */
  const profileClient = async (request: FastifyRequest): Promise<OAuthClient> => {
    const { authorization, 'solution-key': solutionKey } = request.headers as { authorization?: string; 'solution-key'?: string };
    if (!authorization || !safeEqual(authorization.trim(), BASIC_HEADER))
      throw new IoTConnectError(401, 'The Authorization header must be "Basic <basic_token>" with the token of /api/v2/Auth/basic-token.', [
        { param: 'Authorization', msg: 'missing or not the basic token' },
      ]);
    if (!solutionKey)
      throw new IoTConnectError(400, 'The solution-key header is required.', [{ param: 'solution-key', msg: 'is required' }]);
    const source = sourceOf(request.ip);
    const result = await rt.abuse.attempt({ door: 'client', credential: 'iotconnect-solution-key', source }, async () =>
      solutionKey.length <= 512 ? profileClientFor(rt.db, solutionKey) : undefined,
    );
    if ('refused' in result)
      throw new IoTConnectError(429, `Too many failed attempts from this address; retry in ${result.refused.retryAfterSeconds} s.`, [], {
        'retry-after': String(result.refused.retryAfterSeconds),
      });
    if ('failed' in result) throw new IoTConnectError(401, 'The solution key is not valid.', [{ param: 'solution-key', msg: 'unknown' }]);
    return result.value;
  };

  /**
   * Runs a canonical grant for the organization's profile client and answers in IoTConnect's
   * shape. The application is authenticated by the solution key, IoTConnect's client credential.
   */
  const grant = async (request: FastifyRequest, reply: FastifyReply, grantType: 'password' | 'refresh_token', params: () => Params) => {
    // The application first (401 before anything about the body), then the grant's own parameters.
    const client = await profileClient(request);
    const response = await GRANT_HANDLERS[grantType]({
      rt,
      client,
      method: 'client_secret_basic',
      params: { grant_type: grantType, ...params() },
      source: sourceOf(request.ip),
      address: request.ip,
    });
    if (!response.refresh_token) throw new Error('the password and refresh grants always issue a refresh token');
    reply.header('cache-control', 'no-store');
    return {
      token_type: 'bearer' as const,
      access_token: response.access_token,
      expires_in: response.expires_in,
      refresh_token: response.refresh_token,
      status: 200 as const,
    };
  };

  api.post(
    '/v2/Auth/login',
    {
      schema: {
        tags,
        summary: 'IoTConnect step 2: access and refresh tokens for a user',
        headers: Headers,
        body: Login,
        response: { 200: TokenAnswer },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body as { username: string; password: string };
      return grant(request, reply, 'password', () => ({ username, password }));
    },
  );

  api.post(
    '/v2/Auth/refresh-token',
    {
      schema: {
        tags,
        summary: 'IoTConnect: new tokens for a refresh token (it rotates)',
        headers: Headers,
        body: Refresh,
        response: { 200: TokenAnswer },
      },
    },
    async (request, reply) => {
      const body = request.body as { refreshToken?: string; refresh_token?: string };
      return grant(request, reply, 'refresh_token', () => {
        const refreshToken = body.refreshToken ?? body.refresh_token;
        if (!refreshToken) throw new IoTConnectError(400, 'refreshToken is required.', [{ param: 'refreshToken', msg: 'is required' }]);
        return { refresh_token: refreshToken };
      });
    },
  );
}
