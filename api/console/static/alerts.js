// The alert feed: live events from vigil (server-sent events), with the best shot, the identity
// or plate, the camera and the time. Alerts are matches on a watch list (faces) or a listed plate;
// "all recognitions" shows every event.
import { api, esc, session, withToken } from './api.js';
import { toast } from './ui.js';

const quiet = new Set(['residents', 'access']); // lists that open doors, not alerts

export function isAlert(ev) {
  if (ev.kind === 'alarm') return true; // a duress code at a door, a sensor
  return !!(ev.match && ev.match.list && !quiet.has(ev.match.list));
}

export function describe(ev) {
  if (ev.kind === 'alarm') return ev.alarm?.type === 'duress' ? `DURESS at door ${ev.alarm.door} (silent alarm)` : `alarm: ${ev.alarm?.type || ''}`;
  if (ev.kind === 'plate') return ev.plate?.text ? `${ev.plate.text} (${ev.plate.color || 'plate'})` : 'plate (not shown to your role)';
  if (ev.match) return ev.match.name || ev.match.person_id || (quiet.has(ev.match.list) ? 'a resident (who: search roles only)' : 'a listed person');
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
  const post = ['admin', 'operator'].includes(session().role); // may acknowledge and dispatch
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
      <div class="grow">
        <b class="who">${esc(describe(ev))}</b>
        ${ev.match?.list ? `<span class="tag">${esc(ev.match.list)}</span>` : ''}
        <div class="muted">${esc(ev.camera)} · ${esc(when)}${ev.match?.distance ? ` · distance ${ev.match.distance.toFixed(2)}` : ''}</div>
        <div class="dispatches"></div>
      </div>
      ${alert && post ? `<div class="actions"><button type="button" class="ack">Acknowledge</button>
        <button type="button" class="dispatch">Dispatch…</button></div>` : ''}`;
    if (alert && post) {
      li.querySelector('.ack').onclick = async (e) => {
        try {
          await api(`/v1/alerts/${encodeURIComponent(ev.id)}/ack`, { method: 'POST', body: { camera: ev.camera } });
          e.target.disabled = true;
        } catch (err) { toast(err.message, 'error'); }
      };
      li.querySelector('.dispatch').onclick = () => dispatchDialog(view, ev, describe(ev));
    }
    feed.prepend(li);
    while (feed.children.length > 200) feed.lastChild.remove();
  };
  es.addEventListener('face', onEvent);
  es.addEventListener('plate', onEvent);
  es.addEventListener('overflow', () => { state.textContent = 'too slow: reconnecting'; });
  // Dispatches and the officers' answers, live, on their alert's row.
  const ds = post ? new EventSource(withToken('/v1/dispatches/live')) : null;
  const onDispatch = (msg) => {
    const u = JSON.parse(msg.data);
    if (u.type === 'ack') {
      const li = feed.querySelector(`li[data-event="${CSS.escape(u.event_id)}"]`);
      if (li) { li.classList.add('acked'); const b = li.querySelector('.ack'); if (b) { b.disabled = true; b.textContent = `acknowledged by ${u.by}`; } }
      return;
    }
    const d = u.dispatch;
    if (!d) return;
    const li = feed.querySelector(`li[data-event="${CSS.escape(d.event_id)}"]`);
    if (!li) return;
    let chip = li.querySelector(`.chip[data-officer="${d.officer_id}"]`);
    if (!chip) {
      chip = document.createElement('span');
      chip.className = 'chip';
      chip.dataset.officer = String(d.officer_id);
      li.querySelector('.dispatches').append(chip);
    }
    chip.dataset.status = d.status;
    chip.textContent = `${d.officer || 'officer ' + d.officer_id}: ${d.status.replace('_', ' ')}`;
  };
  if (ds) ['dispatch', 'status', 'ack'].forEach((t) => ds.addEventListener(t, onDispatch));
  return () => { es.close(); if (ds) ds.close(); };
}

// dispatchDialog sends an alert to chosen officers, or to the nearest on duty.
async function dispatchDialog(view, ev, summary) {
  let officers = [];
  try { officers = (await api('/v1/officers')).officers; } catch (err) { toast(err.message, 'error'); return; }
  const dlg = document.createElement('dialog');
  dlg.className = 'card';
  dlg.innerHTML = `
    <form method="dialog">
      <h2>Dispatch: ${esc(summary)} at ${esc(ev.camera)}</h2>
      <fieldset class="officers">${officers.length ? officers.map((o) => `
        <label><input type="checkbox" name="officer" value="${o.id}"> ${esc(o.name)}
          <span class="muted">${o.on_duty ? 'on duty' : 'off duty'}${o.at ? ' · seen ' + new Date(o.at).toLocaleTimeString() : ''}</span></label>`).join('')
        : '<p class="muted">No patrol officers yet (vigil token create --role patrol).</p>'}</fieldset>
      <div class="actions">
        <button value="chosen" class="send">Send to chosen</button>
        <button value="nearest" class="nearest">Nearest 2 on duty</button>
        <button value="cancel">Cancel</button>
      </div>
    </form>`;
  view.append(dlg);
  dlg.showModal();
  dlg.addEventListener('close', async () => {
    const how = dlg.returnValue;
    const chosen = [...dlg.querySelectorAll('input[name=officer]:checked')].map((i) => Number(i.value));
    dlg.remove();
    if (how !== 'chosen' && how !== 'nearest') return;
    const body = { camera: ev.camera, summary: `${summary} at ${ev.camera}` };
    if (how === 'chosen') body.officers = chosen; else body.nearest = 2;
    try {
      const res = await api(`/v1/alerts/${encodeURIComponent(ev.id)}/dispatch`, { method: 'POST', body });
      toast(`Sent to ${res.dispatches.map((d) => d.officer).join(', ')}`);
    } catch (err) { toast(err.message, 'error'); }
  });
}
