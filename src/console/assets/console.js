// Progressive enhancement of the console's pages: every page works without this file.

// Copy-once secrets: the Copy button, and a note when the clipboard is unavailable.
for (const button of document.querySelectorAll('[data-copy]')) {
  button.addEventListener('click', async () => {
    const input = document.getElementById(button.dataset.copy);
    const status = document.querySelector('[data-copy-status]');
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      if (status) status.textContent = 'Copied to the clipboard.';
    } catch {
      if (status) status.textContent = 'Selected: press Ctrl+C (or ⌘C) to copy.';
    }
  });
}

// A form the server refused comes back with its fields in error marked: the first one gets the focus.
document.querySelector('main [aria-invalid="true"]')?.focus();

// Inline validation before a round trip: required fields and groups get their message beside them.
for (const form of document.querySelectorAll('form[data-validate]')) {
  form.addEventListener('submit', (event) => {
    let first;
    for (const input of form.querySelectorAll('input[required]')) {
      const error = form.querySelector(`[data-error-for="${input.id}"]`);
      const missing = input.value.trim() === '';
      input.setAttribute('aria-invalid', String(missing));
      if (error) {
        error.hidden = !missing;
        if (missing) {
          error.textContent = `${form.querySelector(`label[for="${input.id}"]`).textContent} is required.`;
          input.setAttribute('aria-describedby', error.id);
        }
      }
      if (missing) first ??= input;
    }
    for (const group of form.querySelectorAll('[data-required-group]')) {
      const error = form.querySelector('[data-error-for="scopes"]');
      const none = !group.querySelector('input:checked');
      if (error) {
        error.hidden = !none;
        if (none) error.textContent = 'Choose at least one scope.';
      }
      if (none) first ??= group.querySelector('input');
    }
    if (first) {
      event.preventDefault();
      first.focus();
    }
  });
}

// The sensors list: latest values and status refreshed in place.
const liveTable = document.querySelector('[data-live-sensors]');
if (liveTable) {
  const status = document.querySelector('[data-live-status]');
  const refresh = async () => {
    try {
      const response = await fetch(liveTable.dataset.liveSensors, { headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error(String(response.status));
      const { sensors } = await response.json();
      for (const s of sensors) {
        const row = liveTable.querySelector(`tr[data-sensor-id="${s.id}"]`);
        if (!row) continue;
        row.querySelector('[data-field=value]').textContent = s.value === null ? '—' : `${s.value} ${s.unit}`;
        row.querySelector('[data-field=at]').textContent = s.at ? `${s.at.slice(0, 19).replace('T', ' ')} UTC` : '—';
        const badge = row.querySelector('[data-field=status]');
        badge.textContent = s.status;
        badge.className = `status status-${s.status.replace(' ', '-')}`;
      }
      if (status) status.textContent = `Live: updated ${new Date().toLocaleTimeString()}`;
    } catch {
      if (status) status.textContent = 'Live updates paused: the server could not be reached. Retrying…';
    }
  };
  setInterval(refresh, 5000);
}

// A sensor's chart (uPlot), extended with new readings every few seconds.
const chartElement = document.getElementById('chart');
if (chartElement && window.uPlot) {
  const status = document.querySelector('[data-chart-status]');
  const xs = [];
  const ys = [];
  let plot;
  const size = () => ({ width: Math.max(280, chartElement.clientWidth), height: 320 });
  const load = async () => {
    const url = new URL(chartElement.dataset.series, location.href);
    if (xs.length > 0) url.searchParams.set('after', String(xs[xs.length - 1] * 1000));
    const response = await fetch(url, { headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(String(response.status));
    const { points } = await response.json();
    for (const [t, v] of points) {
      xs.push(t / 1000);
      ys.push(v);
    }
    const unit = chartElement.dataset.unit;
    if (!plot) {
      plot = new window.uPlot(
        {
          ...size(),
          series: [{}, { label: `${chartElement.dataset.label} (${unit})`, stroke: '#0f5bb5', width: 2 }],
          axes: [{}, { label: unit }],
        },
        [xs, ys],
        chartElement,
      );
      chartElement.dataset.points = String(xs.length);
      window.addEventListener('resize', () => plot.setSize(size()));
    } else if (points.length > 0) {
      plot.setData([xs, ys]);
    }
    chartElement.dataset.points = String(xs.length);
    if (status) status.textContent = xs.length === 0 ? 'No readings in this range yet. Waiting for data…' : `${xs.length} points, live.`;
  };
  const tick = () =>
    load().catch(() => {
      if (status) status.textContent = 'Live updates paused: the server could not be reached. Retrying…';
    });
  tick();
  setInterval(tick, 5000);
}
