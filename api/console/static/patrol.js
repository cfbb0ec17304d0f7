// The patrol officer's page (phone layout): dispatches sent to this officer, live, each with a
// one-tap live view of its camera, "acknowledge" and "on scene"; and the officer's position, set
// by tapping where they are on the site plan and reported every minute while the page is open.
import { api, esc, withToken } from './api.js';
import { play } from './whep.js';
import { toast } from './ui.js';

export async function patrolPage(view) {
  view.innerHTML = `
    <section class="patrol">
      <h2>Dispatches <span id="pstate" class="muted">connecting…</span></h2>
      <ol id="mine" class="feed"></ol>
      <h2>Where am I</h2>
      <p class="muted">Tap your position on the site plan.</p>
      <div id="plan" class="plan"><img id="planimg" alt="site plan" hidden><span id="me" class="me" hidden></span></div>
      <label><input type="checkbox" id="duty" checked> on duty</label>
      <span id="posstate" class="muted"></span>
    </section>`;
  const mine = view.querySelector('#mine');
  const players = new Map();
  let pos = JSON.parse(sessionStorage.getItem('vigil.patrol.pos') || 'null');

  function row(d) {
    let li = mine.querySelector(`li[data-dispatch="${d.id}"]`);
    if (!li) {
      li = document.createElement('li');
      li.dataset.dispatch = String(d.id);
      li.className = 'alert';
      li.innerHTML = `
        <div class="grow">
          <b class="who">${esc(d.summary || d.event_id)}</b>
          <div class="muted">${esc(d.camera)} · sent by ${esc(d.sent_by)} at ${esc(new Date(d.sent_at).toLocaleTimeString())}</div>
          <div class="status"></div>
          <video class="live" muted autoplay playsinline hidden></video>
        </div>
        <div class="actions">
          <button type="button" class="watch">Live view</button>
          <button type="button" class="acknowledged">Acknowledge</button>
          <button type="button" class="on_scene">On scene</button>
        </div>`;
      li.querySelector('.watch').onclick = async () => {
        const video = li.querySelector('video');
        if (players.has(d.id)) { players.get(d.id).close(); players.delete(d.id); video.hidden = true; return; }
        video.hidden = false;
        try { players.set(d.id, await play(video, d.camera)); } catch (err) { toast(err.message, 'error'); video.hidden = true; }
      };
      for (const status of ['acknowledged', 'on_scene']) {
        li.querySelector('.' + status).onclick = async () => {
          try { row(await api(`/v1/dispatches/${d.id}/status`, { method: 'POST', body: { status } })); } catch (err) { toast(err.message, 'error'); }
        };
      }
      mine.prepend(li);
    }
    li.dataset.status = d.status;
    li.querySelector('.status').textContent = d.status.replace('_', ' ');
    li.querySelector('.acknowledged').disabled = d.status !== 'sent';
    li.querySelector('.on_scene').disabled = d.status === 'on_scene' || d.status === 'closed';
  }

  for (const d of (await api('/v1/dispatches')).dispatches.reverse()) row(d);
  const es = new EventSource(withToken('/v1/dispatches/live'));
  es.onopen = () => { view.querySelector('#pstate').textContent = 'live'; };
  es.onerror = () => { view.querySelector('#pstate').textContent = 'reconnecting…'; };
  es.addEventListener('dispatch', (m) => {
    const d = JSON.parse(m.data).dispatch;
    row(d);
    toast(`Dispatch: ${d.summary}`);
    if (navigator.vibrate) navigator.vibrate(300);
  });
  es.addEventListener('status', (m) => row(JSON.parse(m.data).dispatch));

  // Position on the plan (fractions of its width and height).
  const plan = view.querySelector('#plan');
  const me = view.querySelector('#me');
  const duty = view.querySelector('#duty');
  const show = () => {
    if (!pos) return;
    me.hidden = false;
    me.style.left = `${pos.x * 100}%`;
    me.style.top = `${pos.y * 100}%`;
  };
  const report = async () => {
    if (!pos) return;
    try {
      await api('/v1/officers/me/position', { method: 'POST', body: { x: pos.x, y: pos.y, on_duty: duty.checked } });
      view.querySelector('#posstate').textContent = `reported ${new Date().toLocaleTimeString()}`;
    } catch (err) { view.querySelector('#posstate').textContent = err.message; }
  };
  plan.onclick = (e) => {
    const r = plan.getBoundingClientRect();
    pos = { x: Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), y: Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)) };
    sessionStorage.setItem('vigil.patrol.pos', JSON.stringify(pos));
    show();
    report();
  };
  duty.onchange = report;
  // The site plan and the cameras and doors on it, so the officer can find themselves.
  try {
    const m = await api('/v1/map');
    if (m.plan) {
      const img = view.querySelector('#planimg');
      img.src = withToken(m.plan_url) + '&v=' + Date.parse(m.plan.updated_at);
      img.hidden = false;
      plan.style.aspectRatio = `${m.plan.width} / ${m.plan.height}`;
    }
    for (const it of m.items) {
      const el = document.createElement('span');
      el.className = `marker ${it.kind}`;
      el.dataset.kind = it.kind;
      el.dataset.id = it.id;
      el.style.left = `${it.x * 100}%`;
      el.style.top = `${it.y * 100}%`;
      el.innerHTML = `<span>${esc(it.name || it.id)}</span>`;
      plan.append(el);
    }
    plan.dataset.items = String(m.items.length);
    view.querySelector('#posstate').textContent = m.plan ? '' : 'No site plan uploaded yet: cameras on a grid.';
  } catch (err) { view.querySelector('#posstate').textContent = `site plan: ${err.message}`; }
  show();
  report();
  const timer = setInterval(report, 60000);
  return () => { clearInterval(timer); es.close(); players.forEach((p) => p.close()); };
}
