// Charts: events per hour (stacked by camera, the busiest eight named), recognitions per kind and
// list, and every camera's uptime since it was added. Plain SVG, refreshed every minute.
import { api, esc } from './api.js';

const palette = ['#4ea1ff', '#4cc38a', '#f0b429', '#ff5a5a', '#b48cff', '#2ec4c4', '#ff8f3f', '#c6d04a', '#8a98a6'];

function hourChart(perHour, from, hours) {
  const W = 900, H = 240, pad = 30;
  const slots = Array.from({ length: hours }, (_, i) => new Date(new Date(from).getTime() + i * 3600e3));
  const totals = new Map();
  for (const r of perHour) totals.set(r.camera, (totals.get(r.camera) || 0) + r.events);
  const top = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([c]) => c);
  const series = [...top, 'other'];
  const grid = slots.map(() => new Map(series.map((c) => [c, 0])));
  for (const r of perHour) {
    const i = Math.round((new Date(r.hour) - new Date(from)) / 3600e3);
    if (i < 0 || i >= hours) continue;
    const key = top.includes(r.camera) ? r.camera : 'other';
    grid[i].set(key, grid[i].get(key) + r.events);
  }
  const max = Math.max(1, ...grid.map((m) => [...m.values()].reduce((a, b) => a + b, 0)));
  const bw = (W - pad) / hours;
  let bars = '';
  grid.forEach((m, i) => {
    let y = H - pad;
    series.forEach((c, k) => {
      const v = m.get(c);
      if (!v) return;
      const h = (v / max) * (H - 2 * pad);
      y -= h;
      bars += `<rect x="${pad + i * bw + 1}" y="${y}" width="${Math.max(1, bw - 2)}" height="${h}" fill="${palette[k]}"><title>${esc(c)} ${slots[i].getHours()}:00 — ${v}</title></rect>`;
    });
  });
  const labels = slots.map((t, i) => (i % Math.ceil(hours / 12) === 0 ? `<text x="${pad + i * bw}" y="${H - 10}">${t.getHours()}:00</text>` : '')).join('');
  const legend = series.map((c, k) => `<span class="legend"><i data-color="${palette[k]}"></i>${esc(c)}</span>`).join(' ');
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" data-bars="${grid.filter((m) => [...m.values()].some((v) => v)).length}">
    <text x="${pad}" y="14">max ${max}/h</text>${bars}${labels}</svg><div>${legend}</div>`;
}

function listChart(lists) {
  const rows = lists.map((l) => ({ label: `${l.kind} · ${l.list || 'unrecognised'}`, n: l.count }));
  const max = Math.max(1, ...rows.map((r) => r.n));
  return `<table class="bars">${rows.map((r) => `<tr><td>${esc(r.label)}</td>
    <td><div class="bar" data-width="${(100 * r.n) / max}"></div></td><td>${r.n}</td></tr>`).join('')}</table>`;
}

function uptimeChart(cams) {
  return `<table class="bars uptime">${cams.map((c) => `<tr data-camera="${esc(c.id)}"><td>${esc(c.id)}</td>
    <td><div class="bar ${c.uptime < 0.99 ? 'warn' : ''}" data-width="${100 * c.uptime}"></div></td>
    <td>${(100 * c.uptime).toFixed(1)}% <span class="muted">${esc(c.state)}</span></td></tr>`).join('')}</table>`;
}

export async function chartsPage(view) {
  view.innerHTML = `
    <section class="toolbar"><label>last <select id="hours"><option>6</option><option selected>24</option><option>72</option><option>168</option></select> hours</label>
      <span id="chartstate" class="muted"></span></section>
    <h3>Events per hour</h3><div id="perhour"></div>
    <div class="split"><div class="grow"><h3>Recognitions</h3><div id="lists"></div></div>
    <div class="grow"><h3>Camera uptime</h3><div id="uptime"></div></div></div>`;
  async function load() {
    const hours = Number(view.querySelector('#hours').value);
    try {
      const s = await api(`/v1/stats?hours=${hours}`);
      view.querySelector('#perhour').innerHTML = hourChart(s.hours, s.from, hours + 1);
      view.querySelector('#lists').innerHTML = listChart(s.lists);
      view.querySelector('#uptime').innerHTML = uptimeChart(s.cameras);
      // Sizes and colours through the CSSOM: the console's CSP allows no inline styles.
      view.querySelectorAll('[data-width]').forEach((el) => { el.style.width = `${el.dataset.width}%`; });
      view.querySelectorAll('[data-color]').forEach((el) => { el.style.background = el.dataset.color; });
      view.querySelector('#chartstate').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      view.querySelector('#chartstate').textContent = err.message;
    }
  }
  view.querySelector('#hours').onchange = load;
  await load();
  const timer = setInterval(load, 60000);
  return () => clearInterval(timer);
}
