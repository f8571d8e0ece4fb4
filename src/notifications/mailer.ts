import nodemailer from 'nodemailer';

/** What the worker sends email with: nodemailer over SMTP_URL. */
export interface Mailer {
  send(message: { to: string; subject: string; text: string; html: string; headers: Record<string, string> }): Promise<void>;
  close(): void;
}

export function smtpMailer(url: string, from: string): Mailer {
  const transport = nodemailer.createTransport({
    url,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    async send(message) {
      await transport.sendMail({ from, ...message });
    },
    close: () => transport.close(),
  };
}

/** An SMTP refusal that will not change by trying again (5xx), as opposed to an outage or a 4xx. */
export function isPermanentRefusal(error: unknown): boolean {
  const code = (error as { responseCode?: unknown }).responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

export function describeMailError(error: unknown): string {
  const e = error as { code?: string; responseCode?: number; response?: string; message?: string };
  const text = e.response ?? e.message ?? String(error);
  return [e.code, e.responseCode, text]
    .filter((part) => part !== undefined && part !== '')
    .join(': ')
    .slice(0, 500);
}
