import { absoluteUrl } from '../api/links.js';
import { html } from '../web/html.js';
import type { ClaimedNotification } from './tasks.repo.js';

/** The email of one notification: subject, plain text and simple HTML, with the alarm's link and the unsubscribe link. */

export interface NotificationEmail {
  subject: string;
  text: string;
  html: string;
}

const number = (value: number | null): string => (value === null ? '' : String(Math.round(value * 1000) / 1000));
const withUnit = (value: number | null, unit: string): string => `${number(value)}${unit ? ` ${unit}` : ''}`;

/** `Fridge 3 temperature above 8 (9.4)`: what happened, in a line. */
export function headline(n: ClaimedNotification): string {
  const a = n.alarm;
  const what = `${a.deviceName} ${a.sensorName ?? a.sensorKind ?? a.sensorKey}`;
  switch (a.condition) {
    case 'above_max':
      return `${what} above ${number(a.limit)} (${number(a.value)})`;
    case 'below_min':
      return `${what} below ${number(a.limit)} (${number(a.value)})`;
    case 'offline':
      return `${what} offline (silent for ${number(a.limit)} s)`;
    default:
      return `${what} ${a.condition}`;
  }
}

export function subjectOf(n: ClaimedNotification): string {
  const severity = `[${n.alarm.severity.toUpperCase()}]`;
  switch (n.reason) {
    case 'alarm.acknowledged':
      return `[ACKNOWLEDGED] ${headline(n)}`;
    case 'alarm.resolved':
      return `[RESOLVED] ${headline(n)}`;
    case 'repeat':
      return `${severity} Not acknowledged yet: ${headline(n)}`;
    case 'escalation':
      return `${severity} Escalated: ${headline(n)}`;
    default:
      return `${severity} ${headline(n)}`;
  }
}

export function composeEmail(n: ClaimedNotification, links: { publicUrl: string; unsubscribeUrl: string }): NotificationEmail {
  const a = n.alarm;
  const alarmUrl = absoluteUrl(links.publicUrl, `/v1/alarms/${n.alarmId}`);
  const facts: [string, string][] = [
    ['Sensor', `${a.deviceName} · ${a.sensorName ?? a.sensorKey} (${a.sensorKind})`],
    ...(a.thresholdName ? [['Threshold', a.thresholdName] as [string, string]] : []),
    ['Severity', a.severity],
    ['Status', a.status],
    ...(a.kind === 'range'
      ? [
          ['Value', withUnit(a.value, a.unit)] as [string, string],
          ['Limit', `${a.condition === 'below_min' ? 'min' : 'max'} ${withUnit(a.limit, a.unit)}`] as [string, string],
          ['Out of range since', a.startedAt.toISOString()] as [string, string],
        ]
      : [['Last heard', a.startedAt.toISOString()] as [string, string]]),
    ['Triggered', a.triggeredAt.toISOString()],
    ...(a.acknowledgedAt ? [['Acknowledged', a.acknowledgedAt.toISOString()] as [string, string]] : []),
    ...(a.resolvedAt ? [['Resolved', a.resolvedAt.toISOString()] as [string, string]] : []),
  ];
  const subject = subjectOf(n);
  const why =
    n.reason === 'escalation'
      ? 'This alarm was not acknowledged in time and is escalated to you.'
      : n.reason === 'repeat'
        ? 'This alarm is still not acknowledged.'
        : 'A notification rule of your organization names you.';
  const text = [
    subject,
    '',
    ...facts.map(([label, value]) => `${label}: ${value}`),
    '',
    `Open the alarm: ${alarmUrl}`,
    '',
    why,
    `Stop these emails: ${links.unsubscribeUrl}`,
    '',
  ].join('\n');
  const body = html`<!doctype html>
<html><body style="font-family:system-ui,sans-serif;color:#1d2733">
<h2 style="font-size:1.1rem">${subject}</h2>
<table style="border-collapse:collapse">${facts.map(
    ([label, value]) => html`<tr><th style="text-align:left;padding:.2rem .8rem .2rem 0">${label}</th><td>${value}</td></tr>`,
  )}</table>
<p><a href="${alarmUrl}">Open the alarm</a></p>
<p style="color:#5b6b7b;font-size:.9rem">${why} <a href="${links.unsubscribeUrl}">Stop these emails</a>.</p>
</body></html>`;
  return { subject, text, html: body.value };
}
