// Audit review for the privacy officer (auditor) and admins: the audit chain's entries, newest
// first, filtered by who, what, whom (a person, plate or door) and when. "Who searched for this
// person, when and why" is the subject filter. Reading the audit is itself audited.
import { api, esc } from './api.js';

const actions = [
  ['', 'any action'], ['search.', 'searches (faces, plates, timelines)'], ['events.track', 'following a person or plate'],
  ['export.', 'exports'], ['snapshot.view', 'snapshot views'], ['footage.view', 'footage views'],
  ['door.', 'door decisions and refusals'], ['face.', 'face enrolment and erasure'], ['audit.read', 'audit reviews'],
];

export async function auditPage(view) {
  view.innerHTML = `
    <form id="q" class="toolbar">
      <input name="subject" placeholder="person, plate or door" size="18">
      <input name="actor" placeholder="who (principal name)" size="16">
      <select name="action">${actions.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join('')}</select>
      <label>last <input name="days" type="number" value="30" min="1" max="3650" size="4"> days</label>
      <button>Review</button>
    </form>
    <div id="results"></div>`;
  const form = view.querySelector('#q');
  const results = view.querySelector('#results');
  const pre = new URLSearchParams(location.hash.split('?')[1] || '');
  for (const k of ['subject', 'actor', 'action']) if (pre.get(k)) form.elements[k].value = pre.get(k);
  let before = '';
  async function load(more) {
    const f = new FormData(form);
    const q = new URLSearchParams({ from: new Date(Date.now() - Number(f.get('days')) * 86400e3).toISOString(), limit: '100' });
    for (const k of ['subject', 'actor', 'action']) if (f.get(k)) q.set(k, f.get(k));
    if (more && before) q.set('before', before);
    try {
      const res = await api('/v1/audit?' + q);
      before = res.before || '';
      const rows = res.entries.map((e) => `<tr data-seq="${e.seq}">
        <td>${esc(new Date(e.time).toLocaleString())}</td>
        <td>${esc(e.actor)} <span class="muted">${esc(e.role)}</span></td>
        <td>${esc(e.action)}</td>
        <td>${esc(e.reason || '')}</td>
        <td class="detail">${summary(e.detail, res.names || {})}</td>
        <td>${e.results ?? ''}</td></tr>`).join('');
      if (!more) {
        results.innerHTML = `<table class="events audit"><thead><tr><th>when</th><th>who</th><th>what</th><th>why</th><th>about</th><th>results</th></tr></thead>
          <tbody>${rows}</tbody></table><p id="none" class="muted"></p>
          <button type="button" id="more" ${before ? '' : 'hidden'}>Older…</button>`;
        results.querySelector('#more').onclick = () => load(true);
      } else {
        results.querySelector('tbody').insertAdjacentHTML('beforeend', rows);
        results.querySelector('#more').hidden = !before;
      }
      results.querySelector('#none').textContent = results.querySelectorAll('tbody tr').length ? '' : 'Nothing in the audit matches.';
    } catch (err) {
      results.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(false); });
  load(false);
}

// summary says what an entry was about in a few words (HTML): people and doors by name, their
// ids on hover.
function summary(d, names) {
  if (!d) return '';
  const named = (id) => (names[id] ? `<span title="${esc(id)}">${esc(names[id])}</span>` : esc(id));
  const parts = [];
  for (const k of ['person', 'person_id', 'person_ids', 'plate', 'q', 'door', 'camera', 'event', 'export', 'grant']) {
    const v = d[k];
    if (v === undefined || v === '' || v === null) continue;
    const vs = Array.isArray(v) ? v : [v];
    const shown = ['person', 'person_id', 'person_ids', 'door'].includes(k) ? vs.map((x) => named(String(x))) : vs.map((x) => esc(x));
    parts.push(`${esc(k)}: ${shown.join(', ')}`);
  }
  return parts.join(' · ');
}
