// A person's or a plate's track (#/track?person=…, ?plate=…, or ?event=… for a face found by
// photo, a stranger included): every appearance in time order with its time, camera and best
// shot, one click to its footage, the cameras on the site plan with the path between them, and
// the whole track exported as a case file. Following someone states a reason (audited).
import { api, esc, withToken } from './api.js';
import { toast } from './ui.js';
import { drawTrail } from './map.js';

export async function trackPage(view) {
  const params = new URLSearchParams((location.hash.split('?')[1]) || '');
  const person = params.get('person') || '';
  const plate = params.get('plate') || '';
  const eventID = params.get('event') || '';
  const subject = person ? `person ${person}` : plate ? `plate ${plate}` : eventID ? `the face of event ${eventID}` : '';
  view.innerHTML = `
    <form id="tq" class="toolbar">
      <strong>Track</strong>
      <input name="person" placeholder="person id" size="12" value="${esc(person)}">
      <input name="plate" placeholder="plate (whole)" size="10" value="${esc(plate)}">
      <label>last <input name="hours" type="number" value="${esc(params.get('hours') || '24')}" min="1" max="720" size="4"> h</label>
      <input name="reason" placeholder="reason (case number…)" required size="20" value="${esc(sessionStorage.getItem('vigil.track.reason') || '')}">
      <button>Show track</button>
      <span id="tstate" class="muted"></span>
    </form>
    <section class="split">
      <div class="grow"><ol id="stops" class="hits"></ol></div>
      <div class="grow">
        <div id="tstage" class="stage"><img id="tplan" alt="site plan" hidden><svg id="tpath"></svg></div>
        <p><button type="button" id="texport" disabled>Export the track as a case file…</button></p>
        <div id="texported"></div>
        <section id="tverdicts" hidden><h3>Verdicts on matches</h3><ol class="list"></ol></section>
      </div>
    </section>`;
  const form = view.querySelector('#tq');
  const stops = view.querySelector('#stops');
  const st = view.querySelector('#tstate');
  let shown = [];
  // Before anything is awaited: a click on "Show track" while the plan loads must not submit the
  // form natively (a page load with the reason in the address).
  form.onsubmit = (e) => { e.preventDefault(); load(); };

  // The plan under the path, when one was uploaded.
  try {
    const m = await api('/v1/map');
    if (m.plan) {
      const img = view.querySelector('#tplan');
      img.src = withToken(m.plan_url) + '&v=' + Date.parse(m.plan.updated_at);
      img.hidden = false;
      view.querySelector('#tstage').style.aspectRatio = `${m.plan.width} / ${m.plan.height}`;
    }
  } catch { /* the path is drawn on the grid */ }

  // The operators' verdicts on this person's matches, and what each changed.
  async function verdicts() {
    if (!person) return;
    const sec = view.querySelector('#tverdicts');
    try {
      const res = await api(`/v1/verdicts?person=${encodeURIComponent(person)}`);
      const effect = (v) => v.verdict === 'correct' ? (v.template ? 'confirmed; shot offered as a template' : 'confirmed')
        : v.matched === person ? `faces like this no longer match ${v.matched}` : `said to be ${v.person}`;
      sec.querySelector('ol').innerHTML = res.verdicts.map((v) => `<li class="verdict ${esc(v.verdict)}" data-event="${esc(v.event_id)}">
        <b>${esc(v.verdict.replace('_', ' '))}</b>${v.person ? ' ' + esc(v.person) : ''} · matched ${esc(v.matched || 'no one')} at ${esc(v.camera)},
        ${esc(new Date(v.event_time).toLocaleString())} · by ${esc(v.by)} (${esc(v.role)})${v.note ? ': ' + esc(v.note) : ''}
        <div class="muted">${esc(effect(v))}</div></li>`).join('');
      sec.hidden = res.verdicts.length === 0;
    } catch { sec.hidden = true; }
  }
  verdicts();

  function render(list) {
    shown = list;
    stops.innerHTML = list.map((a, i) => `
      <li class="hit" data-event="${esc(a.id)}">
        ${a.snapshot_url ? `<img alt="" loading="lazy" src="${esc(withToken(a.snapshot_url))}">` : ''}
        <div class="grow">
          <b>${i + 1}. ${esc(a.camera)}</b> · ${esc(new Date(a.time).toLocaleString())}
          ${a.person_name || a.person_id ? ` · <span class="person" title="${esc(a.person_id || '')}">${esc(a.person_name || a.person_id)}</span>` : ''}
          ${a.plate ? ` · ${esc(a.plate)}` : ''}
          <div class="actions"><button type="button" class="play">Footage</button></div>
          <video class="clip" controls hidden></video>
        </div>
      </li>`).join('') || '<p class="muted">No appearance in that time.</p>';
    drawTrail(view.querySelector('#tpath'), list);
    view.querySelector('#texport').disabled = list.length === 0;
    const cams = [];
    for (const a of list) if (cams[cams.length - 1] !== a.camera) cams.push(a.camera);
    st.textContent = `${list.length} appearances${cams.length ? ': ' + cams.join(' → ') : ''}`;
    stops.dataset.count = String(list.length);
  }

  stops.addEventListener('click', (e) => {
    const b = e.target.closest('button.play');
    if (!b) return;
    const li = b.closest('li');
    const a = shown.find((x) => x.id === li.dataset.event);
    const t = new Date(a.time).getTime();
    const video = li.querySelector('video');
    video.hidden = false;
    video.src = withToken(`/v1/cameras/${encodeURIComponent(a.camera)}/footage?from=${new Date(t - 5e3).toISOString()}&to=${new Date(t + 10e3).toISOString()}`);
    video.play().catch(() => {});
  });

  async function load() {
    const f = new FormData(form);
    const reason = f.get('reason').trim();
    if (!reason) { st.textContent = 'State a reason: following someone is audited.'; return; }
    sessionStorage.setItem('vigil.track.reason', reason);
    const now = Date.now();
    const from = new Date(now - Number(f.get('hours')) * 3600e3).toISOString();
    const to = new Date(now + 60e3).toISOString();
    st.textContent = 'loading…';
    try {
      if (!f.get('person') && !f.get('plate') && eventID) {
        // A face by its event: every appearance of the same face (a stranger too), in time order.
        const res = await api('/v1/search/faces', { method: 'POST', body: { event_id: eventID, from, to, reason, k: 200, order: 'time' } });
        const cams = Object.fromEntries(((await api('/v1/map')).items || []).filter((i) => i.kind === 'camera').map((i) => [i.id, [i.x, i.y]]));
        render(res.matches.map((m) => ({ id: m.event_id, camera: m.camera, time: m.time, snapshot_url: m.snapshot_url,
          person_id: m.person_id, person_name: m.person_name, position: cams[m.camera] })));
        return;
      }
      const q = new URLSearchParams({ reason, from, to });
      if (f.get('person')) q.set('person', f.get('person')); else if (f.get('plate')) q.set('plate', f.get('plate'));
      else { st.textContent = 'Name a person or a plate.'; return; }
      const t = await api('/v1/search/timeline?' + q);
      render(t.appearances.map((a) => ({ ...a, snapshot_url: a.snapshot_url })));
    } catch (err) { st.textContent = err.message; }
  }
  view.querySelector('#texport').onclick = async () => {
    const reason = prompt('Reason for the export (recorded with it):', new FormData(form).get('reason'));
    if (!reason) return;
    try {
      const res = await api('/v1/exports', { method: 'POST', body: { event_ids: shown.slice(0, 200).map((a) => a.id), reason } });
      const ex = res.export;
      view.querySelector('#texported').innerHTML = `<div class="card export" data-export="${esc(ex.id)}">
        <b>Case file ${esc(ex.id)}</b> · ${ex.events.length} appearances of ${esc(subject || 'the track')}
        <div class="muted">manifest sha256 <code class="sha">${esc(res.manifest_sha256)}</code></div>
        <ul class="files"><li><a class="zip" href="${esc(withToken(`/v1/exports/${encodeURIComponent(ex.id)}/zip`))}" download>case-${esc(ex.id)}.zip</a> <span class="muted">(everything below, one file)</span></li>
          <li><a class="manifest" href="${esc(withToken(res.manifest_url))}" download>manifest.json</a></li>
        ${ex.files.map((x) => `<li><a href="${esc(withToken(x.url))}" download>${esc(x.name)}</a></li>`).join('')}</ul></div>`;
    } catch (err) { toast(err.message, 'error'); }
  };
  if ((person || plate || eventID) && new FormData(form).get('reason')) await load();
  else if (subject) st.textContent = `State a reason to follow ${subject}.`;
  return null;
}
