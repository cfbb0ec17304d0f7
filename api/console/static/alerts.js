// The alert feed: live events from vigil (server-sent events), with the best shot, the identity
// or plate, the camera and the time. Alerts are matches on a watch list (faces) or a listed plate;
// "all recognitions" shows every event.
import { esc, withToken } from './api.js';

const quiet = new Set(['residents', 'access']); // lists that open doors, not alerts

export function isAlert(ev) {
  return !!(ev.match && ev.match.list && !quiet.has(ev.match.list));
}

export function describe(ev) {
  if (ev.kind === 'plate') return ev.plate ? `${ev.plate.text} (${ev.plate.color || 'plate'})` : 'plate';
  if (ev.match) return ev.match.name || ev.match.person_id;
  return 'unknown face';
}

export async function alertsPage(view) {
  view.innerHTML = `
    <section class="toolbar">
      <label><input type="checkbox" id="all"> all recognitions</label>
      <span id="feedstate" class="muted">connecting…</span>
      <span id="counts" class="muted"></span>
    </section>
    <ol id="feed" class="feed"></ol>`;
  const feed = view.querySelector('#feed');
  const state = view.querySelector('#feedstate');
  const all = view.querySelector('#all');
  all.checked = sessionStorage.getItem('vigil.alerts.all') === '1';
  all.onchange = () => sessionStorage.setItem('vigil.alerts.all', all.checked ? '1' : '0');
  let alerts = 0;
  let events = 0;
  const es = new EventSource(withToken('/v1/events/live'));
  es.onopen = () => { state.textContent = 'live'; state.className = 'ok'; };
  es.onerror = () => { state.textContent = 'reconnecting…'; state.className = 'warn'; };
  const onEvent = (msg) => {
    const ev = JSON.parse(msg.data);
    events++;
    const alert = isAlert(ev);
    if (alert) alerts++;
    view.querySelector('#counts').textContent = `${alerts} alerts, ${events} events since opened`;
    if (!alert && !all.checked) return;
    const li = document.createElement('li');
    li.className = alert ? 'alert' : 'event';
    li.dataset.event = ev.id;
    li.dataset.camera = ev.camera;
    if (ev.match?.person_id) li.dataset.person = ev.match.person_id;
    const when = new Date(ev.time).toLocaleTimeString();
    li.innerHTML = `
      ${ev.snapshot_url ? `<img alt="best shot" src="${esc(withToken(ev.snapshot_url))}">` : '<div class="noshot"></div>'}
      <div>
        <b class="who">${esc(describe(ev))}</b>
        ${ev.match?.list ? `<span class="tag">${esc(ev.match.list)}</span>` : ''}
        <div class="muted">${esc(ev.camera)} · ${esc(when)}${ev.match?.distance ? ` · distance ${ev.match.distance.toFixed(2)}` : ''}</div>
      </div>`;
    feed.prepend(li);
    while (feed.children.length > 200) feed.lastChild.remove();
  };
  es.addEventListener('face', onEvent);
  es.addEventListener('plate', onEvent);
  es.addEventListener('overflow', () => { state.textContent = 'too slow: reconnecting'; });
  return () => es.close();
}
