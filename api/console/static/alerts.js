// The alert feed: live events from vigil (server-sent events), with the best shot, the identity
// or plate, the camera and the time. Alerts are matches on a watch list (faces) or a listed plate;
// "all recognitions" shows every event.
import { api, esc, session, withToken } from './api.js';
import { toast } from './ui.js';
import { play } from './whep.js';

const quiet = new Set(['residents', 'access']); // lists that open doors, not alerts

export function isAlert(ev) {
  if (ev.kind === 'alarm') return true; // a duress code at a door, a sensor
  return !!(ev.match && ev.match.list && !quiet.has(ev.match.list));
}

export function describe(ev) {
  if (ev.kind === 'alarm') {
    const t = ev.alarm?.type;
    if (t === 'duress') return `DURESS at door ${ev.alarm.door} (silent alarm)`;
    if (t === 'camera_offline') return `camera ${ev.camera} offline`;
    if (t === 'recording_stopped') return `recording stopped on ${ev.camera}`;
    if (ev.alarm.sensor) {
      const where = ev.alarm.name || ev.alarm.sensor;
      if (t === 'sensor_offline') return `sensor ${where} offline (heartbeats missed)`;
      const what = { fire: 'FIRE', smoke: 'SMOKE', sprinkler: 'SPRINKLER', door_forced: 'DOOR FORCED', door_held: 'DOOR HELD OPEN', panic: 'PANIC BUTTON' }[t] || t;
      return `${what} at ${where}`;
    }
    if (ev.alarm.stranger) {
      const s = ev.alarm.stranger;
      if (t === 'stranger_at_night') return `stranger ${s} seen at night on several nights this week`;
      if (t === 'stranger_at_door') return `stranger ${s} trying a door again and again`;
    }
    if (t === 'overstay') return `car ${ev.alarm.plate || ''} still in ${ev.alarm.area || 'the car park'} after its visitor's window`;
    return `alarm: ${t || ''}`;
  }
  if (ev.kind === 'plate') return ev.plate?.text ? `${ev.plate.text} (${ev.plate.color || 'plate'})` : 'plate (not shown to your role)';
  if (ev.match) return ev.match.name || ev.match.person_id || (quiet.has(ev.match.list) ? 'a resident (who: search roles only)' : 'a listed person');
  return 'unknown face';
}

// fromStored gives a stored event (GET /v1/alerts, /v1/events) the live events' shape.
export function fromStored(e) {
  const ev = { id: e.id, kind: e.kind, camera: e.camera, time: e.time, snapshot_url: e.snapshot_url };
  if (e.list || e.person_id) ev.match = { person_id: e.person_id, name: e.person_name, list: e.list, distance: e.distance };
  if (e.plate) ev.plate = { text: e.plate, color: e.plate_color };
  if (e.kind === 'alarm') ev.alarm = (e.attrs || {}).alarm;
  return ev;
}

export async function alertsPage(view) {
  view.innerHTML = `
    <section class="toolbar">
      <select id="state" title="which alerts to list">
        <option value="open">unacknowledged</option><option value="acknowledged">acknowledged</option><option value="all">all alerts</option>
      </select>
      <label><input type="checkbox" id="all"> all recognitions (live)</label>
      <span id="feedstate" class="muted">connecting…</span>
      <span id="counts" class="muted"></span>
    </section>
    <ol id="feed" class="feed"></ol>
    <p id="history" class="muted"></p>
    <p><button type="button" id="older" hidden>Older alerts</button></p>`;
  const feed = view.querySelector('#feed');
  const state = view.querySelector('#feedstate');
  const all = view.querySelector('#all');
  const which = view.querySelector('#state');
  which.value = sessionStorage.getItem('vigil.alerts.state') || 'open';
  all.checked = sessionStorage.getItem('vigil.alerts.all') === '1';
  all.onchange = () => sessionStorage.setItem('vigil.alerts.all', all.checked ? '1' : '0');
  let alerts = 0;
  let events = 0;
  const post = ['admin', 'operator'].includes(session().role); // may acknowledge and dispatch
  const review = ['admin', 'investigator', 'operator'].includes(session().role);
  const players = new Set();

  // row renders one alert or event; acked is who acknowledged it (history), chips its dispatches.
  function row(ev, { acked, dispatches = [], prepend = true } = {}) {
    if (feed.querySelector(`li[data-event="${CSS.escape(ev.id)}"]`)) return;
    const alert = isAlert(ev);
    const li = document.createElement('li');
    li.className = alert ? 'alert' : 'event';
    li.dataset.event = ev.id;
    li.dataset.camera = ev.camera;
    li.dataset.time = ev.time;
    if (ev.match?.person_id) li.dataset.person = ev.match.person_id;
    if (ev.plate?.text) li.dataset.plate = ev.plate.text;
    const when = new Date(ev.time);
    const track = ev.match?.person_id ? `person=${encodeURIComponent(ev.match.person_id)}` : ev.plate?.text ? `plate=${encodeURIComponent(ev.plate.text)}` : '';
    li.innerHTML = `
      ${ev.snapshot_url ? `<img alt="best shot" src="${esc(withToken(ev.snapshot_url))}">` : '<div class="noshot"></div>'}
      <div class="grow">
        <b class="who" title="${esc(ev.match?.person_id || '')}">${esc(describe(ev))}</b>
        ${ev.match?.list ? `<span class="tag">${esc(ev.match.list)}</span>` : ''}
        <div class="muted">${esc(ev.camera)} · ${esc(when.toLocaleDateString() === new Date().toLocaleDateString() ? when.toLocaleTimeString() : when.toLocaleString())}${ev.match?.distance ? ` · distance ${ev.match.distance.toFixed(2)}` : ''}</div>
        <div class="dispatches"></div>
        <video class="clip" controls muted playsinline hidden></video>
      </div>
      <div class="actions">
        <button type="button" class="live" title="live view of ${esc(ev.camera)}">Live</button>
        <button type="button" class="footage" title="from 5 s before to 10 s after">Footage</button>
        ${track ? `<a class="button track" href="#/track?${track}">Track</a>` : ''}
        ${review ? `<a class="button review" href="#/review?cameras=${encodeURIComponent(ev.camera)}&at=${encodeURIComponent(new Date(ev.time).toISOString())}">Review</a>` : ''}
        ${alert && post ? `<button type="button" class="ack">Acknowledge</button><button type="button" class="dispatch">Dispatch…</button>` : ''}
        ${review && ev.kind !== 'alarm' ? '<button type="button" class="verdict" title="mark the match correct or wrong">Verdict…</button>' : ''}
      </div>`;
    const video = li.querySelector('video');
    let player = null;
    const stopVideo = () => { if (player) { player.close(); players.delete(player); player = null; } video.pause(); video.removeAttribute('src'); video.srcObject = null; video.hidden = true; };
    li.querySelector('.live').onclick = async () => {
      if (player) { stopVideo(); return; }
      stopVideo();
      video.hidden = false;
      try { player = await play(video, ev.camera); players.add(player); } catch (err) { toast(err.message, 'error'); video.hidden = true; }
    };
    li.querySelector('.footage').onclick = () => {
      const t = new Date(ev.time).getTime();
      stopVideo();
      video.hidden = false;
      video.src = withToken(`/v1/cameras/${encodeURIComponent(ev.camera)}/footage?from=${new Date(t - 5e3).toISOString()}&to=${new Date(t + 10e3).toISOString()}`);
      video.play().catch(() => {});
    };
    if (alert && post) {
      li.querySelector('.ack').onclick = async (e) => {
        try {
          await api(`/v1/alerts/${encodeURIComponent(ev.id)}/ack`, { method: 'POST', body: { camera: ev.camera } });
          e.target.disabled = true;
        } catch (err) { toast(err.message, 'error'); }
      };
      li.querySelector('.dispatch').onclick = () => dispatchDialog(view, ev, describe(ev));
    }
    const vb = li.querySelector('.verdict');
    if (vb) vb.onclick = () => verdictDialog(view, ev, li);
    if (prepend) feed.prepend(li); else feed.append(li);
    if (acked) markAcked(li, acked);
    for (const d of dispatches) chip(li, d);
    if (prepend) while (feed.children.length > 1000) feed.lastChild.remove();
  }
  const markAcked = (li, by) => {
    li.classList.add('acked');
    const b = li.querySelector('.ack');
    if (b) { b.disabled = true; b.textContent = `acknowledged by ${by}`; } else li.querySelector('.dispatches').insertAdjacentHTML('beforeend', `<span class="chip">acknowledged by ${esc(by)}</span>`);
  };
  const chip = (li, d) => {
    let c = li.querySelector(`.chip[data-officer="${d.officer_id}"]`);
    if (!c) {
      c = document.createElement('span');
      c.className = 'chip';
      c.dataset.officer = String(d.officer_id);
      li.querySelector('.dispatches').append(c);
    }
    c.dataset.status = d.status;
    c.textContent = `${d.officer || 'officer ' + d.officer_id}: ${d.status.replace('_', ' ')}`;
  };

  // The history first (what came while the page was closed), then live.
  let shownHistory = 0;
  async function history(cursor = '') {
    sessionStorage.setItem('vigil.alerts.state', which.value);
    if (!cursor) { feed.replaceChildren(); shownHistory = 0; }
    const older = view.querySelector('#older');
    try {
      const res = await api(`/v1/alerts?state=${which.value}&limit=100${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
      for (const a of res.alerts) row(fromStored(a), { acked: a.acked_by ? `${a.acked_by} at ${new Date(a.acked_at).toLocaleTimeString()}` : '', dispatches: a.dispatches || [], prepend: false });
      shownHistory += res.alerts.length;
      const what = { open: 'unacknowledged alerts', acknowledged: 'acknowledged alerts', all: 'alerts' }[which.value];
      view.querySelector('#history').textContent = shownHistory
        ? `${shownHistory} ${what} of the last 7 days${res.next ? ' so far' : ''}; new ones appear at the top as they happen.`
        : `No ${what} in the last 7 days; new ones appear here as they happen.`;
      older.hidden = !res.next;
      older.onclick = () => history(res.next);
      feed.dataset.state = which.value;
    } catch (err) { view.querySelector('#history').textContent = err.message; }
  }
  which.onchange = () => history();
  const es = new EventSource(withToken('/v1/events/live'));
  es.onopen = () => { state.textContent = 'live'; state.className = 'ok'; };
  es.onerror = () => { state.textContent = 'reconnecting…'; state.className = 'warn'; };
  const onEvent = (msg) => {
    const ev = JSON.parse(msg.data);
    events++;
    const alert = isAlert(ev);
    if (alert) alerts++;
    view.querySelector('#counts').textContent = `${alerts} alerts, ${events} events since opened`;
    if ((!alert && !all.checked) || (alert && which.value === 'acknowledged')) return;
    row(ev);
  };
  es.addEventListener('face', onEvent);
  es.addEventListener('plate', onEvent);
  es.addEventListener('alarm', onEvent);
  es.addEventListener('overflow', () => { state.textContent = 'too slow: reconnecting'; });
  await history();
  // Dispatches and the officers' answers, live, on their alert's row.
  const ds = post ? new EventSource(withToken('/v1/dispatches/live')) : null;
  const onDispatch = (msg) => {
    const u = JSON.parse(msg.data);
    const id = u.type === 'ack' ? u.event_id : u.dispatch?.event_id;
    const li = id && feed.querySelector(`li[data-event="${CSS.escape(id)}"]`);
    if (!li) return;
    if (u.type === 'ack') markAcked(li, u.by); else chip(li, u.dispatch);
  };
  if (ds) ['dispatch', 'status', 'ack'].forEach((t) => ds.addEventListener(t, onDispatch));
  return () => { es.close(); if (ds) ds.close(); players.forEach((p) => p.close()); };
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

// verdictDialog marks an event's match correct, wrong, or someone else; the answer says what it
// changes (a wrong face stops matching that person on every node).
function verdictDialog(view, ev, li) {
  const matched = ev.match?.name || ev.match?.person_id || ev.plate?.text || '';
  const dlg = document.createElement('dialog');
  dlg.className = 'card verdictdlg';
  dlg.innerHTML = `
    <form method="dialog">
      <h2>Verdict on ${esc(describe(ev))} at ${esc(ev.camera)}</h2>
      <fieldset>
        ${matched ? `<label><input type="radio" name="verdict" value="correct"> correct: it is ${esc(matched)}</label>
        <label><input type="radio" name="verdict" value="wrong" checked> wrong: it is not ${esc(matched)}</label>` : ''}
        <label><input type="radio" name="verdict" value="this_is" ${matched ? '' : 'checked'}> this is… <input name="person" placeholder="person id" size="14"></label>
      </fieldset>
      <label><input type="checkbox" name="template"> add this shot to the person's templates (watch-list entries only)</label>
      <label>Note <input name="note" size="40" maxlength="1000" placeholder="why"></label>
      <div class="actions"><button value="save" class="save">Save verdict</button><button value="cancel">Cancel</button></div>
    </form>`;
  view.append(dlg);
  dlg.showModal();
  dlg.addEventListener('close', async () => {
    const f = new FormData(dlg.querySelector('form'));
    dlg.remove();
    if (dlg.returnValue !== 'save') return;
    const body = { verdict: f.get('verdict'), note: f.get('note') || '', template: f.get('template') === 'on' };
    if (body.verdict === 'this_is') body.person = (f.get('person') || '').trim();
    try {
      const res = await api(`/v1/events/${encodeURIComponent(ev.id)}/verdict`, { method: 'POST', body });
      li.querySelector('.dispatches').insertAdjacentHTML('beforeend', `<span class="chip verdictchip" title="${esc(res.effect)}">verdict: ${esc(body.verdict.replace('_', ' '))}${body.person ? ' ' + esc(body.person) : ''} by ${esc(res.verdict.by)}</span>`);
      toast(res.effect);
    } catch (err) { toast(err.message, 'error'); }
  });
}
