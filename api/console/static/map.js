// The site map: the uploaded plan with every camera, door and sensor on it. Admins upload the
// plan and place them by dragging (from the list of unplaced ones, or where they are). Alerts
// blink at their camera; a sensor's alarm blinks at the sensor and opens its linked cameras live
// beside the plan; sensors show their state (alarm, offline). Patrol officers show where they
// last reported; a person's path is drawn from the timeline of their appearances.
import { api, esc, session, withToken } from './api.js';
import { isAlert, describe } from './alerts.js';
import { toast } from './ui.js';
import { play } from './whep.js';

export async function mapPage(view) {
  const role = session().role;
  const admin = role === 'admin';
  const post = role === 'admin' || role === 'operator';
  view.innerHTML = `
    <section class="toolbar">
      ${admin ? '<label class="button">Upload plan… <input type="file" id="planfile" accept="image/jpeg,image/png" hidden></label>' : ''}
      ${['admin', 'investigator', 'operator'].includes(role) ? `<form id="path" class="inline">
        <input name="person" placeholder="person id" required size="12">
        <label>last <input name="hours" type="number" value="24" min="1" max="720" size="4"> h</label>
        <input name="reason" placeholder="reason" required size="16">
        <button>Draw path</button></form>` : ''}
      <span id="mapstate" class="muted"></span>
    </section>
    <section class="split">
      <div id="stage" class="stage"><img id="plan" alt="site plan" hidden><svg id="trail"></svg></div>
      <div class="mapside">
        <section id="alarmlive" class="alarmlive" hidden><h3 id="alarmtitle"></h3><div class="alarmviews"></div>
          <button type="button" id="alarmclose">Close live views</button></section>
        <h3>Sensors</h3><ul id="sensors" class="list sensors"><li class="muted">none registered</li></ul>
        ${admin ? '<h3>Not placed</h3><ul id="unplaced" class="list"></ul><p class="muted">Drag onto the plan.</p>' : ''}
      </div>
    </section>`;
  const stage = view.querySelector('#stage');
  const markers = new Map(); // "camera:cam001" → element

  function marker(kind, id) {
    const key = `${kind}:${id}`;
    let m = markers.get(key);
    if (!m) {
      m = document.createElement('div');
      m.className = `marker ${kind}`;
      m.dataset.kind = kind;
      m.dataset.id = id;
      m.title = `${kind} ${id}`;
      m.innerHTML = `<span>${esc(id)}</span>`;
      stage.append(m);
      markers.set(key, m);
      if (admin && kind !== 'officer') draggable(m, kind, id);
    }
    return m;
  }
  const place = (m, x, y) => { m.style.left = `${x * 100}%`; m.style.top = `${y * 100}%`; m.dataset.x = x; m.dataset.y = y; };

  // drag moves an element with the pointer and, dropped on the plan, saves its place.
  function drag(el, kind, id, e) {
    e.preventDefault();
    const rect = stage.getBoundingClientRect();
    const m = marker(kind, id);
    const move = (ev) => {
      place(m, Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width)), Math.min(1, Math.max(0, (ev.clientY - rect.top) / rect.height)));
    };
    move(e);
    const up = async (ev) => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      const inside = ev.clientX >= rect.left && ev.clientX <= rect.right && ev.clientY >= rect.top && ev.clientY <= rect.bottom;
      if (!inside) { load(); return; }
      try {
        await api(`/v1/map/items/${kind}/${encodeURIComponent(id)}`, { method: 'PUT', body: { x: Number(m.dataset.x), y: Number(m.dataset.y) } });
        if (el !== m) el.remove();
      } catch (err) { toast(err.message, 'error'); load(); }
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  }
  function draggable(el, kind, id) { el.addEventListener('pointerdown', (e) => drag(el, kind, id, e)); }

  // showSensors marks each sensor's state on its marker and in the list beside the plan.
  const sensorInfo = new Map();
  function showSensor(sn) {
    sensorInfo.set(sn.id, sn);
    const m = markers.get(`sensor:${sn.id}`);
    if (m) {
      m.classList.toggle('alarm', sn.state === 'alarm');
      m.classList.toggle('offline', sn.state === 'offline');
      m.dataset.state = sn.state;
      m.title = `${sn.kind} ${sn.id}${sn.name ? ': ' + sn.name : ''} (${sn.state})`;
    }
    const list = view.querySelector('#sensors');
    list.innerHTML = [...sensorInfo.values()].map((x) => `<li class="sensorrow ${esc(x.state)}" data-sensor="${esc(x.id)}">
      <b>${esc(x.name || x.id)}</b> <span class="tag">${esc(x.kind.replace('_', ' '))}</span>
      <span class="state">${esc(x.state)}</span>${x.cameras.length ? ` <span class="muted">${esc(x.cameras.join(', '))}</span>` : ''}</li>`).join('') || '<li class="muted">none registered</li>';
  }
  async function loadSensors() {
    const r = await api('/v1/sensors').catch(() => ({ sensors: [] }));
    sensorInfo.clear();
    for (const sn of r.sensors) {
      if (sn.map && !markers.has(`sensor:${sn.id}`)) place(marker('sensor', sn.id), sn.map[0], sn.map[1]);
      showSensor(sn);
    }
    return r.sensors;
  }

  async function load() {
    const m = await api('/v1/map');
    const img = view.querySelector('#plan');
    if (m.plan) {
      img.src = withToken(m.plan_url) + '&v=' + Date.parse(m.plan.updated_at);
      img.hidden = false;
      stage.style.aspectRatio = `${m.plan.width} / ${m.plan.height}`;
    }
    view.querySelector('#mapstate').textContent = m.plan ? '' : 'No plan uploaded yet: cameras are shown on a grid.';
    for (const it of m.items) place(marker(it.kind, it.id), it.x, it.y);
    const sensors = await loadSensors();
    if (!admin) return;
    const placed = new Set(m.items.map((it) => `${it.kind}:${it.id}`));
    const cams = (await api('/v1/cameras')).cameras.map((c) => ['camera', c.id]);
    const doors = (await api('/v1/doors').catch(() => ({ doors: [] }))).doors.map((d) => ['door', d.id]);
    const list = view.querySelector('#unplaced');
    list.innerHTML = '';
    for (const [kind, id] of [...cams, ...doors, ...sensors.map((sn) => ['sensor', sn.id])]) {
      if (placed.has(`${kind}:${id}`)) continue;
      const li = document.createElement('li');
      li.className = `chipdrag ${kind}`;
      li.dataset.kind = kind;
      li.dataset.id = id;
      li.textContent = `${kind} ${id}`;
      li.addEventListener('pointerdown', (e) => drag(li, kind, id, e));
      list.append(li);
    }
  }

  if (admin) {
    view.querySelector('#planfile').onchange = async (e) => {
      const f = e.target.files[0];
      if (!f) return;
      try {
        await api('/v1/map/plan', { method: 'PUT', body: f, headers: { 'Content-Type': f.type || 'application/octet-stream' } });
        toast('Plan uploaded');
        load();
      } catch (err) { toast(err.message, 'error'); }
    };
  }

  // A person's path: their appearances in time order, camera to camera.
  const pathForm = view.querySelector('#path');
  if (pathForm) {
    pathForm.onsubmit = async (e) => {
      e.preventDefault();
      const f = new FormData(pathForm);
      const now = Date.now();
      const q = new URLSearchParams({ person: f.get('person'), reason: f.get('reason'),
        from: new Date(now - Number(f.get('hours')) * 3600e3).toISOString(), to: new Date(now + 60e3).toISOString() });
      try {
        const t = await api('/v1/search/timeline?' + q);
        const pts = drawTrail(view.querySelector('#trail'), t.appearances);
        view.querySelector('#mapstate').textContent = `${t.appearances.length} appearances, ${pts.length} on the map: ${t.cameras_in_order.join(' → ')}`;
      } catch (err) { toast(err.message, 'error'); }
    };
  }

  // A sensor's alarm opens its linked cameras live beside the plan (at most 4), until closed.
  const panel = view.querySelector('#alarmlive');
  const players = [];
  const closeLive = () => {
    for (const p of players.splice(0)) p.close();
    panel.querySelector('.alarmviews').innerHTML = '';
    panel.hidden = true;
  };
  view.querySelector('#alarmclose').onclick = closeLive;
  async function openLive(ev) {
    closeLive();
    const cams = (ev.alarm.cameras?.length ? ev.alarm.cameras : [ev.camera]).filter((c) => !c.startsWith('sensor:')).slice(0, 4);
    if (!cams.length) return;
    panel.hidden = false;
    panel.dataset.event = ev.id;
    view.querySelector('#alarmtitle').textContent = describe(ev);
    for (const cam of cams) {
      const fig = document.createElement('figure');
      fig.innerHTML = `<video muted playsinline autoplay data-camera="${esc(cam)}"></video><figcaption>${esc(cam)} · live</figcaption>`;
      panel.querySelector('.alarmviews').append(fig);
      play(fig.querySelector('video'), cam).then((p) => players.push(p)).catch((err) => {
        fig.querySelector('figcaption').textContent = `${cam}: ${err.message}`;
      });
    }
  }

  await load();
  // Alerts blink at their camera, a sensor's at the sensor.
  const es = new EventSource(withToken('/v1/events/live'));
  const blink = (m, ev) => {
    m.classList.add('blink');
    m.dataset.alert = describe(ev);
    clearTimeout(m.blinkTimer);
    m.blinkTimer = setTimeout(() => m.classList.remove('blink'), ev.alarm?.sensor ? 60000 : 10000);
  };
  const onEvent = (msg) => {
    const ev = JSON.parse(msg.data);
    if (!isAlert(ev)) return;
    const m = markers.get(`camera:${ev.camera}`);
    if (m) blink(m, ev);
    const sensor = ev.alarm?.sensor;
    if (!sensor) return;
    const sm = markers.get(`sensor:${sensor}`);
    if (sm) blink(sm, ev);
    const known = sensorInfo.get(sensor);
    if (known) showSensor({ ...known, state: ev.alarm.type === 'sensor_offline' ? 'offline' : 'alarm' });
    if (ev.alarm.type !== 'sensor_offline') openLive(ev);
  };
  es.addEventListener('face', onEvent);
  es.addEventListener('plate', onEvent);
  es.addEventListener('alarm', onEvent);
  const poll = setInterval(() => loadSensors(), 15000); // states changed on another node
  // Patrol officers where they last reported (the post's roles).
  let ds = null;
  if (post) {
    const showOfficer = (o) => {
      if (o.x == null) return;
      const m = marker('officer', o.name);
      m.classList.toggle('offduty', !o.on_duty);
      place(m, o.x, o.y);
    };
    (await api('/v1/officers')).officers.forEach(showOfficer);
    ds = new EventSource(withToken('/v1/dispatches/live'));
    ds.addEventListener('position', (msg) => showOfficer(JSON.parse(msg.data).officer));
    ds.addEventListener('map', () => load());
    ds.addEventListener('sensor', (msg) => { const u = JSON.parse(msg.data); if (u.sensor) showSensor(u.sensor); });
  }
  return () => { es.close(); if (ds) ds.close(); clearInterval(poll); closeLive(); };
}

// drawTrail draws the path through the appearances placed on the plan (position: [x, y] in
// fractions of it), the last one larger; it returns those placed.
export function drawTrail(svg, appearances) {
  const pts = appearances.filter((a) => a.position);
  svg.setAttribute('viewBox', '0 0 1000 1000');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.innerHTML = pts.length ? `<polyline points="${pts.map((a) => `${a.position[0] * 1000},${a.position[1] * 1000}`).join(' ')}"></polyline>` +
    pts.map((a, i) => `<circle cx="${a.position[0] * 1000}" cy="${a.position[1] * 1000}" r="${i === pts.length - 1 ? 14 : 8}"></circle>`).join('') : '';
  svg.dataset.points = String(pts.length);
  return pts;
}
