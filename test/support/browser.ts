/**
 * A cookie-keeping HTTP client that behaves like a browser without JavaScript: manual redirects,
 * forms parsed from the HTML. Enough to walk the login, consent and account pages.
 */

export interface Form {
  action: string;
  method: string;
  fields: Record<string, string>;
  /** name=value pairs of submit buttons. */
  buttons: { name: string; value: string; text: string }[];
}

const decode = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
const attr = (tag: string, name: string): string | undefined => {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m?.[1] === undefined ? undefined : decode(m[1]);
};

/** Every form of a page, with its inputs (hidden and visible) and submit buttons. */
export function parseForms(html: string): Form[] {
  const forms: Form[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const [, open = '', body = ''] = match;
    const fields: Record<string, string> = {};
    for (const input of body.matchAll(/<input\b[^>]*>/g)) {
      const name = attr(input[0], 'name');
      if (name) fields[name] = attr(input[0], 'value') ?? '';
    }
    const buttons = [...body.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/g)].map((b) => ({
      name: attr(b[0], 'name') ?? '',
      value: attr(b[0], 'value') ?? '',
      text: (b[2] ?? '').trim(),
    }));
    forms.push({
      action: attr(`<form${open}>`, 'action') ?? '',
      method: (attr(`<form${open}>`, 'method') ?? 'get').toLowerCase(),
      fields,
      buttons,
    });
  }
  return forms;
}

export class Browser {
  readonly cookies = new Map<string, string>();
  /** `passwords` (by email) lets login() sign in without being given one. */
  constructor(
    readonly base: string,
    private readonly passwords: Record<string, string> = {},
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(
    path: string,
    init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.cookies.size > 0) headers.cookie = this.cookieHeader();
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const response = await fetch(new URL(path, this.base), {
      method: init.method ?? (body ? 'POST' : 'GET'),
      headers,
      body,
      redirect: 'manual',
    });
    for (const setCookie of response.headers.getSetCookie()) {
      const [pair = ''] = setCookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(setCookie) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  /** GET a page and return it with its forms. */
  async page(path: string): Promise<{ response: Response; html: string; forms: Form[] }> {
    const response = await this.request(path);
    const html = await response.text();
    return { response, html, forms: parseForms(html) };
  }

  /** Submits a form, optionally pressing a named button and overriding fields. */
  async submit(form: Form, overrides: Record<string, string> = {}, button?: { name: string; value: string }): Promise<Response> {
    const fields = { ...form.fields, ...overrides };
    if (button) fields[button.name] = button.value;
    if (form.method === 'get') return this.request(`${form.action}?${new URLSearchParams(fields)}`);
    return this.request(form.action, { form: fields });
  }

  /** Signs in through the login form found at `path` (which must show it); returns the response to the form post. */
  async login(path: string, email: string, password = this.passwords[email] ?? ''): Promise<Response> {
    const { forms } = await this.page(path);
    const form = forms.find((f) => 'password' in f.fields);
    if (!form) throw new Error(`no login form at ${path}`);
    return this.submit(form, { email, password });
  }

  /**
   * Walks an authorization URL like a user: signs in, then allows (or denies) on the consent page
   * if one is shown; returns the final redirect to the client.
   */
  async authorize(authorizationUrl: string, email: string, password: string, decision: 'allow' | 'deny' = 'allow'): Promise<URL> {
    const url = new URL(authorizationUrl);
    let response = await this.request(url.pathname + url.search);
    for (let step = 0; step < 6; step++) {
      if (response.status >= 300 && response.status < 400) {
        const location = new URL(response.headers.get('location') as string, this.base);
        if (location.origin !== new URL(this.base).origin) return location;
        response = await this.request(location.pathname + location.search);
        continue;
      }
      const html = await response.text();
      const forms = parseForms(html);
      const login = forms.find((f) => 'password' in f.fields);
      const consent = forms.find((f) => f.buttons.some((b) => b.name === 'decision'));
      if (login) response = await this.submit(login, { email, password });
      else if (consent) response = await this.submit(consent, {}, { name: 'decision', value: decision });
      else throw new Error(`unexpected page (status ${response.status}): ${html.slice(0, 500)}`);
    }
    throw new Error('too many steps');
  }
}
