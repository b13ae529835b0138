// The live page at `/`: plain HTML and a script, no build step. It polls `/stats` every second
// for the charts (drawn by uPlot, shipped as a dependency and served from /assets/), listens on
// `/events` for the latest events, and looks hosts up with `/hosts/<id>`. It never lists all
// hosts, so it works the same against a server tracking a million.

export const pageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>heartwatch</title>
<link rel="stylesheet" href="/assets/uPlot.min.css">
<style>
  body { font: 14px system-ui, sans-serif; margin: 1rem 2rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
  h2 { font-size: 1rem; margin: 1rem 0 .3rem; }
  #summary { font-family: ui-monospace, monospace; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }
  .chart { min-height: 230px; }
  #lateness .row { display: flex; align-items: center; gap: .5rem; font-family: ui-monospace, monospace; }
  #lateness .bar { background: #c60; height: .8rem; }
  #lateness .label { width: 6rem; text-align: right; }
  #events { font-family: ui-monospace, monospace; list-style: none; padding: 0; max-height: 22rem; overflow: auto; }
  #events li { white-space: pre; }
  #events li.down { color: #b00; } #events li.up { color: #080; } #events li.restart { color: #a60; }
  #host { font-family: ui-monospace, monospace; white-space: pre; }
</style>
</head>
<body>
<h1>heartwatch</h1>
<div id="summary">connecting...</div>
<div class="grid">
  <section><h2>Hosts</h2><div id="chart-hosts" class="chart"></div></section>
  <section><h2>Heartbeats per second</h2><div id="chart-rate" class="chart"></div></section>
  <section><h2>Drops and rejects per second</h2><div id="chart-drops" class="chart"></div></section>
  <section><h2>Detection lateness (after the deadline)</h2><div id="lateness"></div></section>
</div>
<div class="grid">
  <section><h2>Latest events</h2><div id="events-note"></div><ol id="events"></ol></section>
  <section><h2>Host lookup</h2>
    <form id="lookup"><input id="host-id" placeholder="host id" inputmode="numeric" required>
    <button type="submit">Look up</button></form>
    <div id="host"></div>
  </section>
</div>
<script src="/assets/uPlot.iife.min.js"></script>
<script src="/assets/page.js"></script>
</body>
</html>
`;

export const pageScript = `'use strict';
(() => {
  const keep = 600;
  const shown = 50;
  const data = { t: [], up: [], down: [], rate: [], socket: [], ring: [], rejected: [] };
  let previous;
  const fmt = (n) => Math.round(n).toLocaleString('en-US');

  function chart(id, labels, colors) {
    const el = document.getElementById(id);
    const series = [{}].concat(labels.map((label, i) => ({ label, stroke: colors[i], width: 2 })));
    const opts = { width: Math.max(300, el.clientWidth), height: 200, series, scales: { x: { time: true } } };
    return new uPlot(opts, [[]].concat(labels.map(() => [])), el);
  }
  const charts = {
    hosts: chart('chart-hosts', ['up', 'down'], ['#080', '#b00']),
    rate: chart('chart-rate', ['received/s'], ['#06c']),
    drops: chart('chart-drops', ['socket/s', 'ring/s', 'rejected/s'], ['#b00', '#a60', '#666']),
  };
  window.heartwatchPage = { charts, data };

  function push(key, value) {
    data[key].push(value);
    if (data[key].length > keep) data[key].shift();
  }

  function record(s) {
    const t = s.time / 1000;
    const st = s.stats;
    const rejected = st.malformed + st.authUnsupported + st.refused;
    const dt = previous === undefined ? 0 : t - previous.t;
    const per = (now, then) => (dt > 0 ? Math.max(0, now - then) / dt : 0);
    push('t', t);
    push('up', st.hostsUp);
    push('down', st.hostsDown);
    push('rate', previous === undefined ? 0 : per(st.received, previous.received));
    push('socket', previous === undefined ? 0 : per(st.kernelDrops, previous.kernelDrops));
    push('ring', previous === undefined ? 0 : per(st.ringDrops, previous.ringDrops));
    push('rejected', previous === undefined ? 0 : per(rejected, previous.rejected));
    previous = { t, received: st.received, kernelDrops: st.kernelDrops, ringDrops: st.ringDrops, rejected };
    charts.hosts.setData([data.t, data.up, data.down]);
    charts.rate.setData([data.t, data.rate]);
    charts.drops.setData([data.t, data.socket, data.ring, data.rejected]);
    document.getElementById('summary').textContent =
      'engine ' + st.engine + ' | up ' + fmt(st.hostsUp) + ' | down ' + fmt(st.hostsDown) +
      ' | tracked ' + fmt(st.trackedHosts) + ' | ' + fmt(data.rate[data.rate.length - 1]) + ' heartbeats/s' +
      ' | events ' + fmt(st.eventsDelivered);
    lateness(s.lateness);
  }

  function lateness(h) {
    const el = document.getElementById('lateness');
    const counts = h.counts.map((c, i) => c - (i === 0 ? 0 : h.counts[i - 1]));
    const most = Math.max(1, ...counts);
    const labels = h.buckets.map((b) => '<= ' + (b < 1 ? b * 1000 + ' ms' : b + ' s')).concat(['> ' + h.buckets[h.buckets.length - 1] + ' s']);
    el.replaceChildren(...counts.map((c, i) => {
      const row = document.createElement('div');
      row.className = 'row';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = labels[i];
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = (c / most) * 20 + 'rem';
      const n = document.createElement('span');
      n.textContent = fmt(c);
      row.append(label, bar, n);
      return row;
    }));
  }

  async function poll() {
    try {
      const res = await fetch('/stats');
      if (res.ok) record(await res.json());
    } catch (err) {
      document.getElementById('summary').textContent = 'server unreachable: ' + err.message;
    }
  }
  poll();
  setInterval(poll, 1000);

  // Events: batched into the list every 100 ms, the newest first; a burst keeps only the newest.
  let pending = [];
  let skipped = 0;
  const list = document.getElementById('events');
  function flush() {
    if (pending.length === 0) return;
    const items = pending.map((e) => {
      const li = document.createElement('li');
      li.className = e.event;
      li.dataset.id = e.id === undefined ? '' : e.id;
      li.dataset.event = e.event;
      li.textContent = e.event === 'gap'
        ? 'missed ' + fmt(e.missed) + ' events while disconnected'
        : (e.time || '') + '  ' + e.event.padEnd(7) + ' ' + e.id + '  ' + e.address + (e.reason ? '  ' + e.reason : '');
      return li;
    });
    list.prepend(...items.reverse());
    while (list.children.length > shown) list.lastChild.remove();
    document.getElementById('events-note').textContent = skipped > 0 ? fmt(skipped) + ' more events not shown (bursts keep the newest ' + shown + ')' : '';
    if (pending.some((e) => e.id === looked)) lookup(looked);
    pending = [];
  }
  setInterval(flush, 100);
  const source = new EventSource('/events');
  for (const type of ['up', 'down', 'restart', 'gap']) {
    source.addEventListener(type, (m) => {
      pending.push(JSON.parse(m.data));
      if (pending.length > shown) { skipped += pending.length - shown; pending.splice(0, pending.length - shown); }
    });
  }

  // Host lookup.
  let looked;
  async function lookup(id) {
    looked = id;
    const out = document.getElementById('host');
    const res = await fetch('/hosts/' + encodeURIComponent(id));
    const body = await res.json();
    if (!res.ok) { out.dataset.state = ''; out.textContent = body.error; return; }
    out.dataset.state = body.state;
    out.textContent = Object.entries(body).map(([k, v]) => k.padEnd(12) + ' ' + (k === 'lastSeen' ? new Date(v).toISOString() : v)).join('\\n');
  }
  document.getElementById('lookup').addEventListener('submit', (e) => {
    e.preventDefault();
    lookup(document.getElementById('host-id').value.trim());
  });
})();
`;
