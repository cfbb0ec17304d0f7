// Search: faces by photo, plates by fragment, events by filters; each hit with its best shot,
// its footage (played from the recordings) and a case export. Every search states its reason,
// which goes to the audit trail with it.
import { api, esc, session, withToken } from './api.js';
import { toast } from './ui.js';

const tabs = {
  faces: { title: 'Faces', roles: ['admin', 'investigator'] },
  plates: { title: 'Plates', roles: ['admin', 'investigator', 'operator'] },
  events: { title: 'Events', roles: ['admin', 'investigator', 'operator', 'patrol'] },
};

const iso = (d) => new Date(d).toISOString();
const daysAgo = (n) => new Date(Date.now() - n * 86400e3);

export async function searchPage(view) {
  const role = session().role;
  const mine = Object.entries(tabs).filter(([, t]) => t.roles.includes(role));
  let tab = sessionStorage.getItem('vigil.search.tab');
  if (!mine.some(([id]) => id === tab)) tab = mine[0][0];
  view.innerHTML = `
    <nav class="tabs">${mine.map(([id, t]) => `<button type="button" data-tab="${id}">${t.title}</button>`).join('')}</nav>
    <form id="q" class="toolbar"></form>
    <section id="results"></section>
    <section id="export" class="toolbar" hidden>
      <span id="selected"></span>
      <button type="button" id="doexport">Export selected…</button>
    </section>`;
  const form = view.querySelector('#q');
  const results = view.querySelector('#results');
  const selected = new Set();

  const forms = {
    faces: `<input type="file" name="image" accept="image/jpeg,image/png" required>
      <label>last <input name="days" type="number" value="30" min="1" max="365" size="4"> days</label>
      <input name="reason" placeholder="reason (case number…)" required size="24">
      <button>Search faces</button>`,
    plates: `<input name="q" placeholder="粤B12345, B123, 粤B*45, B1?345" required size="16">
      <label>last <input name="days" type="number" value="30" min="1" max="365" size="4"> days</label>
      <input name="reason" placeholder="reason (case number…)" required size="24">
      <button>Search plates</button>`,
    events: `<input name="camera" placeholder="camera" size="8">
      <select name="kind"><option value="">any kind</option><option>face</option><option>plate</option></select>
      <input name="person" placeholder="person id" size="10">
      <input name="plate" placeholder="plate" size="10">
      <label>last <input name="hours" type="number" value="24" min="1" max="720" size="4"> hours</label>
      <input name="reason" placeholder="reason (with a person or plate)" size="24">
      <button>List events</button>`,
  };

  function select(id) {
    tab = id;
    sessionStorage.setItem('vigil.search.tab', id);
    view.querySelectorAll('.tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === id));
    form.innerHTML = forms[id];
    results.innerHTML = '';
    selected.clear();
    updateExport();
  }

  function updateExport() {
    const box = view.querySelector('#export');
    box.hidden = selected.size === 0 || !['admin', 'investigator'].includes(role);
    view.querySelector('#selected').textContent = `${selected.size} selected`;
  }

  // hit renders one event: best shot, where and when, footage on demand, a box to export it.
  function hit(e, extra = '') {
    return `<li class="hit" data-event="${esc(e.event_id || e.id)}">
      ${e.snapshot_url !== '' ? `<img alt="" loading="lazy" src="${esc(withToken(e.snapshot_url || `/v1/events/${e.event_id || e.id}/snapshot`))}">` : ''}
      <div class="grow">
        <b>${esc(e.camera)}</b> · ${esc(new Date(e.time).toLocaleString())} ${extra}
        <div class="actions">
          ${e.footage_url || e.camera ? `<button type="button" class="play" data-footage="${esc(e.footage_url || footage(e))}">Footage</button>` : ''}
          ${trackLink(e)}
          <label><input type="checkbox" class="pick"> export</label>
        </div>
        <video class="clip" controls hidden></video>
      </div>
    </li>`;
  }
  // trackLink follows what a hit shows: the person matched, the plate, or the face itself (a
  // stranger found by photo).
  const trackLink = (e) => {
    const q = e.person_id ? `person=${encodeURIComponent(e.person_id)}` : e.plate ? `plate=${encodeURIComponent(e.plate)}`
      : (e.event_id || e.kind === 'face') && ['admin', 'investigator'].includes(role) ? `event=${encodeURIComponent(e.event_id || e.id)}` : '';
    return q && role !== 'patrol' ? `<a class="button track" href="#/track?${q}">Track</a>` : '';
  };
  // who names the person an event matched (the id on hover), or nothing.
  const who = (e) => (e.person_id ? `<span class="person" title="${esc(e.person_id)}">${esc(e.person_name || e.person_id)}</span>` : '');
  const footage = (e) => {
    const t = new Date(e.time).getTime();
    return `/v1/cameras/${encodeURIComponent(e.camera)}/footage?from=${iso(t - 10e3)}&to=${iso(t + 10e3)}`;
  };

  results.addEventListener('click', (ev) => {
    const b = ev.target.closest('button.play');
    if (!b) return;
    const video = b.closest('li').querySelector('video');
    video.hidden = false;
    video.src = withToken(b.dataset.footage);
    video.play().catch(() => {});
  });
  results.addEventListener('change', (ev) => {
    if (!ev.target.classList.contains('pick')) return;
    const id = ev.target.closest('li').dataset.event;
    if (ev.target.checked) selected.add(id); else selected.delete(id);
    updateExport();
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    results.innerHTML = '<p class="muted">searching…</p>';
    try {
      if (tab === 'faces') {
        const body = new FormData();
        body.append('image', f.get('image'));
        body.append('reason', f.get('reason'));
        body.append('from', iso(daysAgo(Number(f.get('days')))));
        body.append('to', iso(Date.now() + 60e3));
        body.append('k', '100');
        body.append('order', 'time');
        const res = await api('/v1/search/faces', { method: 'POST', body });
        // Hits come in calibrated bands: "possible" ones are look-alikes as often as not.
        const b = res.bands || {};
        const summary = res.matches.length
          ? `<p class="bands"><strong>${b['very likely'] || 0} very likely</strong> · ${b.possible || 0} possible` +
            ` <span class="muted">(${esc(res.model || '')}; a possible match is a lead to check, not a sighting)</span></p>` : '';
        const band = (name) => res.matches.filter((m) => m.band === name);
        const list = (name) => band(name).length
          ? `<h3>${esc(name)} <span class="muted">(in time order)</span></h3><ol class="hits">${band(name).map((m) => hit(m, `· ${m.person_id ? who(m) + ' · ' : ''}${esc(m.band)} · score ${m.score.toFixed(2)}`)).join('')}</ol>` : '';
        const more = res.more ? `<p class="warn more">Showing the ${res.matches.length} most similar: there may be more. Narrow the time range to see them.</p>` : '';
        results.innerHTML = (res.note ? `<p class="muted">${esc(res.note)}</p>` : '') + summary + more +
          list('very likely') + list('possible') +
          (res.matches.length ? '' : '<p class="muted">No match in that time.</p>');
      } else if (tab === 'plates') {
        const q = new URLSearchParams({ q: f.get('q'), reason: f.get('reason'), from: iso(daysAgo(Number(f.get('days')))), to: iso(Date.now() + 60e3) });
        const res = await api('/v1/search/plates?' + q);
        results.innerHTML = res.plates.map((p) => `<h3>${esc(p.plate)} <span class="muted">${esc(p.kind || '')}</span></h3>
          <ol class="hits">${p.events.map((e) => hit(e)).join('')}</ol>`).join('') || '<p class="muted">No plate like that.</p>';
      } else {
        const q = new URLSearchParams({ from: iso(Date.now() - Number(f.get('hours')) * 3600e3), limit: '100' });
        for (const k of ['camera', 'kind', 'person', 'plate', 'reason']) if (f.get(k)) q.set(k, f.get(k));
        // Newest first, 100 at a time; "Older events" follows the API's cursor.
        const page = async (cursor) => {
          if (cursor) q.set('cursor', cursor);
          const res = await api('/v1/events?' + q);
          const more = results.querySelector('button.more');
          if (more) more.remove();
          let ol = results.querySelector('ol.hits');
          if (!ol) { results.innerHTML = '<ol class="hits"></ol>'; ol = results.querySelector('ol.hits'); }
          ol.insertAdjacentHTML('beforeend', res.events.map((e) => hit(e, `· ${esc(e.kind)} ${e.person_id ? who(e) : esc(e.plate || '')}`)).join(''));
          if (!ol.children.length) results.insertAdjacentHTML('beforeend', '<p class="muted">No events.</p>');
          if (res.next) {
            results.insertAdjacentHTML('beforeend', '<button type="button" class="more">Older events</button>');
            results.querySelector('button.more').onclick = () => page(res.next).catch((err) => toast(err.message, 'error'));
          }
        };
        results.innerHTML = '';
        await page('');
      }
    } catch (err) {
      results.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
  });

  view.querySelector('#doexport').onclick = async () => {
    const reason = prompt('Reason for the export (recorded with it):');
    if (!reason) return;
    try {
      const res = await api('/v1/exports', { method: 'POST', body: { event_ids: [...selected], reason } });
      const ex = res.export;
      const missing = ex.events.flatMap((e) => (e.missing || []).map((m) => `${e.camera} ${new Date(e.time).toLocaleString()}: ${m}`));
      results.insertAdjacentHTML('afterbegin', `<div class="card export" data-export="${esc(ex.id)}">
        <b>Export ${esc(ex.id)}</b> · ${ex.events.length} events · ${esc(ex.watermark)}
        <div class="muted">manifest sha256 <code class="sha">${esc(res.manifest_sha256)}</code> (recorded in the audit trail)</div>
        <ul class="files">
          <li><a class="zip" href="${esc(withToken(`/v1/exports/${encodeURIComponent(ex.id)}/zip`))}" download>case-${esc(ex.id)}.zip</a> <span class="muted">(everything below, one file)</span></li>
          <li><a class="manifest" href="${esc(withToken(res.manifest_url))}" download>manifest.json</a></li>
          ${ex.files.map((f) => `<li><a href="${esc(withToken(f.url))}" download>${esc(f.name)}</a> <span class="muted">${(f.bytes / 1024).toFixed(0)} KB</span></li>`).join('')}
        </ul>
        ${missing.length ? `<p class="warn">Not included: ${missing.map(esc).join('; ')}</p>` : ''}</div>`);
      selected.clear();
      results.querySelectorAll('input.pick:checked').forEach((c) => { c.checked = false; });
      updateExport();
    } catch (err) { toast(err.message, 'error'); }
  };

  view.querySelectorAll('.tabs button').forEach((b) => { b.onclick = () => select(b.dataset.tab); });
  select(tab);
  return null;
}
