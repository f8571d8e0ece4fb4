/**
 * Server-rendered pages (setup, login, consent, device) are plain HTML forms that work without
 * JavaScript. Every interpolated value goes through `escapeHtml` via the `html` tag; `raw` marks
 * markup that is already safe.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

export const raw = (value: string): SafeHtml => new SafeHtml(value);

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(value);
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f6f8;color:#1d2733;margin:0}
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #b8c2cc;border-radius:4px;font-size:1rem}
button{margin-top:1.2rem;padding:.6rem 1.2rem;border:0;border-radius:4px;background:#1b6ac9;color:#fff;font-size:1rem;cursor:pointer}
button.secondary{background:#e3e8ee;color:#1d2733}.error{background:#fdecea;color:#8a1c1c;padding:.6rem;border-radius:4px}
.hint{color:#5b6b7b;font-size:.9rem}ul.scopes{padding-left:1.2rem}
main.wide{max-width:44rem}.brand{font-weight:700;color:#1b6ac9;letter-spacing:.02em;margin:0 0 1.2rem}
.app{display:flex;align-items:center;gap:.8rem;margin-bottom:1rem}.app .badge{flex:none;width:2.6rem;height:2.6rem;border-radius:8px;background:#1b6ac9;color:#fff;display:grid;place-items:center;font-weight:700;font-size:1.2rem}
.app h1{margin:0}ul.scopes{list-style:none;padding:0;margin:.6rem 0;border:1px solid #e3e8ee;border-radius:6px}
ul.scopes li{padding:.55rem .8rem;border-top:1px solid #e3e8ee}ul.scopes li:first-child{border-top:0}
ul.scopes code,td code{display:block;font-size:.8rem;color:#5b6b7b}td div+div{margin-top:.4rem}td.when{white-space:nowrap}ul.scopes li.missing{background:#fdecea}
.actions{display:flex;gap:.6rem;flex-wrap:wrap}.actions button{flex:1}button.danger{background:#b42318}
.notice{background:#fff6e0;color:#6b4a00;padding:.6rem;border-radius:4px}.ok{background:#e7f6ec;color:#14532d;padding:.6rem;border-radius:4px}
.who{display:flex;justify-content:space-between;align-items:center;gap:.5rem;font-size:.9rem;color:#5b6b7b;border-top:1px solid #e3e8ee;margin-top:1.4rem;padding-top:.8rem}
.who form{margin:0}.who button,button.link{margin:0;padding:0;background:none;color:#1b6ac9;font-size:.9rem;text-decoration:underline}
.code{font-family:ui-monospace,monospace;font-size:1.6rem;letter-spacing:.15em;text-align:center;background:#f4f6f8;border-radius:6px;padding:.6rem}
input.code-input{font-family:ui-monospace,monospace;font-size:1.4rem;letter-spacing:.12em;text-transform:uppercase;text-align:center}
table{width:100%;border-collapse:collapse;font-size:.95rem}th,td{text-align:left;padding:.6rem .4rem;border-top:1px solid #e3e8ee;vertical-align:top}
td form{margin:0}td button{margin:0;padding:.4rem .8rem;font-size:.9rem}a{color:#1b6ac9}
.other-options{border-top:1px solid #e3e8ee;margin-top:1.4rem}.other-options .hint{text-align:center}
a.button{display:block;text-align:center;margin-top:.6rem;padding:.6rem 1.2rem;border-radius:4px;background:#e3e8ee;color:#1d2733;text-decoration:none}`;

export interface PageOptions {
  /** A wider card, for tables. */
  wide?: boolean;
}

export function page(title: string, body: SafeHtml, options: PageOptions = {}): string {
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>${title} · sensorcloud</title><style>${raw(STYLE)}</style></head>
<body><main${options.wide ? raw(' class="wide"') : ''}>${body}</main></body>
</html>`.value;
}
