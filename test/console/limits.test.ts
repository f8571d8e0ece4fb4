import { describe, expect, it } from 'vitest';
import { API_KEY_NAME_MAX } from '../../src/api-keys/api-keys.service.js';
import { Browser, usePagesServer } from '../oauth-pages/support.js';

/**
 * The console refuses what /v1 refuses, with the same bounds (they are the owning module's
 * constants), and says so beside the field: checked here over HTTP with the form client, signed in
 * through the login page as a person would.
 */

const KEYS = '/console/developer/api-keys';

describe('console form limits', () => {
  const server = usePagesServer();

  async function signedIn(): Promise<Browser> {
    const browser = new Browser(server.url);
    const first = await browser.request(KEYS);
    expect(first.status).toBe(303);
    const login = first.headers.get('location')!;
    expect((await browser.login(login, 'admin@acme.test')).status).toBe(303);
    return browser;
  }

  it('refuses an API key name longer than /v1/api-keys allows, with a message beside the name', async () => {
    const browser = await signedIn();
    const { forms, html } = await browser.page(KEYS);
    expect(html).toContain(`maxlength="${API_KEY_NAME_MAX}"`);
    const create = forms.find((form) => form.action === KEYS && 'name' in form.fields)!;
    expect(create).toBeDefined();

    const tooLong = 'k'.repeat(API_KEY_NAME_MAX + 1);
    const refused = await browser.request(KEYS, { form: { ...create.fields, name: tooLong, scopes: 'devices:read' } });
    expect(refused.status).toBe(400);
    const page = await refused.text();
    expect(page).toMatch(
      new RegExp(`<p class="error" id="key-name-error" data-error-for="key-name">At most ${API_KEY_NAME_MAX} characters\\.</p>`),
    );
    const stored = await server.db.selectFrom('api_keys').select('name').where('name', '=', tooLong).execute();
    expect(stored).toEqual([]);

    // At the bound it is accepted, as the API accepts it.
    const atBound = 'k'.repeat(API_KEY_NAME_MAX);
    const created = await browser.request(KEYS, { form: { ...create.fields, name: atBound, scopes: 'devices:read' } });
    expect(created.status).toBe(201);
    expect(await server.db.selectFrom('api_keys').select('name').where('name', '=', atBound).execute()).toHaveLength(1);
  });
});
