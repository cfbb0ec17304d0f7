// Camera health: every camera's state, frame rate, bit rate, reconnects, last key frame,
// recording and storage, and how much of its analysis the node drops; the cameras that need
// attention first (down, not recording, no key frame lately, under-analysed), any column sortable
// by a click on its heading. Refreshed every 5 s; the rates are measured over 5 s of the stream's
// own time, so a steady camera reads steady.
import { api, esc } from './api.js';

const columns = [
  ['attention', 'Needs'], ['id', 'Camera'], ['node', 'Node'], ['state', 'State'], ['fps', 'fps'], ['kbps', 'kb/s'],
  ['reconnects', 'Reconnects'], ['keyAge', 'Last key frame'], ['recAge', 'Recording'], ['bytes', 'Stored'], ['drop', 'Analysis dropped'],
];

// trouble lists what is wrong with a camera, worst first.
function trouble(c, now) {
  const out = [];
  if (c.state !== 'live') out.push(c.state === 'unplaced' ? 'no node runs it' : `${c.state}${c.last_error ? ': ' + c.last_error : ''}`);
  const keyAge = c.last_keyframe ? (now - Date.parse(c.last_keyframe)) / 1000 : Infinity;
  if (c.state === 'live' && keyAge > 10) out.push(`no key frame for ${Math.round(keyAge)} s`);
  if (c.recording && (now - Date.parse(c.recording.last_segment_end)) / 1000 > 120) out.push('not recording');
  if (c.analysis && c.analysis.drop_ratio > 0.01) out.push(`${(100 * c.analysis.drop_ratio).toFixed(1)}% of frames not analysed`);
  if (c.lost_packets > 0 && c.units > 0 && c.lost_packets / c.units > 0.01) out.push('losing packets');
  return out;
}

const ago = (s) => (s === Infinity || Number.isNaN(s) ? '—' : s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`);
const size = (b) => (b >= 1e12 ? `${(b / 1e12).toFixed(2)} TB` : b >= 1e9 ? `${(b / 1e9).toFixed(1)} GB` : `${(b / 1e6).toFixed(0)} MB`);

export async function healthPage(view) {
  let key = sessionStorage.getItem('vigil.health.sort') || 'attention';
  let desc = sessionStorage.getItem('vigil.health.desc') !== '0';
  view.innerHTML = `
    <section class="toolbar"><strong>Camera health</strong> <span id="hsum" class="muted"></span></section>
    <table class="events health"><thead><tr>${columns.map(([k, t]) => `<th data-key="${k}" tabindex="0">${t}</th>`).join('')}</tr></thead><tbody></tbody></table>`;
  let rows = [];
  function draw() {
    const sorted = [...rows].sort((a, b) => {
      const x = a[key], y = b[key];
      const c = typeof x === 'string' ? x.localeCompare(y) : (x ?? -1) - (y ?? -1);
      return (desc ? -c : c) || a.id.localeCompare(b.id);
    });
    view.querySelectorAll('th').forEach((th) => { th.dataset.sort = th.dataset.key === key ? (desc ? 'desc' : 'asc') : ''; });
    view.querySelector('tbody').innerHTML = sorted.map((r) => `
      <tr data-camera="${esc(r.id)}" class="${r.problems.length ? 'deny' : ''}">
        <td>${r.problems.length ? `<span class="warn">${esc(r.problems.join('; '))}</span>` : '<span class="ok">ok</span>'}</td>
        <td><a href="#/review?cameras=${encodeURIComponent(r.id)}">${esc(r.id)}</a></td><td>${esc(r.node || '—')}</td>
        <td>${esc(r.state)}</td><td>${r.fps.toFixed(1)}</td><td>${Math.round(r.kbps)}</td><td>${r.reconnects}</td>
        <td>${ago(r.keyAge)}</td><td>${r.recAge === Infinity ? '—' : ago(r.recAge)}</td><td>${r.bytes ? size(r.bytes) : '—'}</td>
        <td>${r.drop == null ? '—' : (100 * r.drop).toFixed(1) + '%'}</td>
      </tr>`).join('');
  }
  async function refresh() {
    const now = Date.now();
    const cams = (await api('/v1/cameras')).cameras;
    rows = cams.map((c) => {
      const problems = trouble(c, now);
      return {
        id: c.id, node: c.node, state: c.state, fps: c.fps || 0, kbps: (c.bitrate_bps || 0) / 1000, reconnects: c.reconnects || 0,
        keyAge: c.last_keyframe ? (now - Date.parse(c.last_keyframe)) / 1000 : Infinity,
        recAge: c.recording ? (now - Date.parse(c.recording.last_segment_end)) / 1000 : Infinity,
        bytes: c.recording?.bytes || 0, drop: c.analysis ? c.analysis.drop_ratio : null,
        problems, attention: problems.length * 10 + (c.state !== 'live' ? 100 : 0),
      };
    });
    const bad = rows.filter((r) => r.problems.length).length;
    view.querySelector('#hsum').textContent = `${rows.length} cameras, ${rows.filter((r) => r.state === 'live').length} live, ${bad} need attention`;
    view.querySelector('tbody').dataset.count = String(rows.length);
    draw();
  }
  view.querySelector('thead').addEventListener('click', (e) => {
    const th = e.target.closest('th');
    if (!th) return;
    desc = th.dataset.key === key ? !desc : th.dataset.key === 'attention';
    key = th.dataset.key;
    sessionStorage.setItem('vigil.health.sort', key);
    sessionStorage.setItem('vigil.health.desc', desc ? '1' : '0');
    draw();
  });
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 5000);
  return () => clearInterval(timer);
}
