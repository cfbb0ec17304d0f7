// Review: the recorded footage of up to 4 cameras on one timeline, with the events on it (faces,
// plates, alerts, door decisions), played in step at 1–16×. Click or drag on the timeline to seek (a still of the
// recording at that time follows the pointer), click an event to jump to it, mark a range
// and export it as a case file. Footage is the recordings as they are (no re-encode): a clip
// starts on the key frame at or before the time asked. Keys: space play/pause, ←/→ 10 s,
// [ and ] mark in and out, 1–5 speed.
import { api, esc, session, withToken } from './api.js';
import { isAlert } from './alerts.js';
import { toast } from './ui.js';

const spans = { '10 min': 600, '1 h': 3600, '6 h': 21600, '24 h': 86400 };
const speeds = [1, 2, 4, 8, 16];
const clipLength = 120; // seconds of footage loaded at a time; the next is loaded when it ends

export async function reviewPage(view) {
  const params = new URLSearchParams((location.hash.split('?')[1]) || '');
  const all = (await api('/v1/cameras')).cameras.map((c) => c.id);
  let chosen = (params.get('cameras') || sessionStorage.getItem('vigil.review.cameras') || all.slice(0, 1).join(','))
    .split(',').filter((c) => all.includes(c)).slice(0, 4);
  let span = Number(params.get('span') || sessionStorage.getItem('vigil.review.span') || 600);
  const at = params.get('at') ? Date.parse(params.get('at')) : NaN;
  let end = Number.isNaN(at) ? Date.now() : Math.min(Date.now(), at + span * 500);
  let start = end - span * 1000;
  const canExport = ['admin', 'investigator'].includes(session().role);
  view.innerHTML = `
    <section class="toolbar">
      <details class="pick"><summary>Cameras (<span id="ncams"></span>)</summary>
        <div class="list">${all.map((c) => `<label><input type="checkbox" value="${esc(c)}"> ${esc(c)}</label>`).join('')}</div></details>
      <select id="span">${Object.entries(spans).map(([k, v]) => `<option value="${v}">last ${k}</option>`).join('')}</select>
      <button type="button" id="earlier" title="earlier">◀</button><button type="button" id="later" title="later">▶</button>
      <button type="button" id="playpause">Play</button>
      <select id="speed" title="speed">${speeds.map((v) => `<option value="${v}">${v}×</option>`).join('')}</select>
      <span id="clock" class="muted"></span>
      ${canExport ? '<button type="button" id="markin" title="[">Mark in</button><button type="button" id="markout" title="]">Mark out</button><button type="button" id="rexport" disabled>Export range…</button>' : ''}
    </section>
    <section id="players" class="players"></section>
    <section id="timeline" class="timeline"><div id="preview" class="preview" hidden><img alt=""><span></span></div></section>
    <div id="rexported"></div>
    <ol id="revents" class="list events"></ol>`;
  const players = view.querySelector('#players');
  const timeline = view.querySelector('#timeline');
  const preview = view.querySelector('#preview');
  const clock = view.querySelector('#clock');
  view.querySelector('#span').value = String(span);
  let evs = [];
  let clipFrom = 0; // the time the loaded clips start at (ms)
  let playing = false;
  let held = 0; // when the cameras were held for a slow one (ms); 0 none, -1 gave up until the next seek
  let seeks = 0; // the latest seek: the clip starts of an earlier one that come late are dropped
  let speed = 1;
  let mark = { in: null, out: null };
  let left = false;
  const videos = () => [...players.querySelectorAll('video')];

  function pick() {
    view.querySelectorAll('.pick input').forEach((i) => { i.checked = chosen.includes(i.value); i.disabled = !i.checked && chosen.length >= 4; });
    view.querySelector('#ncams').textContent = `${chosen.length} of ${all.length}, up to 4`;
    sessionStorage.setItem('vigil.review.cameras', chosen.join(','));
  }
  view.querySelector('.pick').addEventListener('change', (e) => {
    const v = e.target.value;
    chosen = e.target.checked ? [...chosen, v].slice(0, 4) : chosen.filter((c) => c !== v);
    pick();
    load();
  });

  const pct = (t) => ((t - start) / (end - start)) * 100;
  const x = (t) => `${pct(t)}%`;
  const timeAt = (clientX) => {
    const r = timeline.getBoundingClientRect();
    return start + Math.min(1, Math.max(0, (clientX - r.left) / r.width)) * (end - start);
  };

  // load fetches each camera's recorded spans and the events of the window, and draws them.
  async function load() {
    pick();
    const from = new Date(start).toISOString();
    const to = new Date(end).toISOString();
    const rows = await Promise.all(chosen.map(async (c) => {
      const [rec, ev] = await Promise.all([
        api(`/v1/cameras/${encodeURIComponent(c)}/recordings?from=${from}&to=${to}`).catch((err) => ({ error: err.message, spans: [] })),
        api(`/v1/events?camera=${encodeURIComponent(c)}&from=${from}&to=${to}&limit=1000`).catch(() => ({ events: [] })),
      ]);
      return { camera: c, rec, events: ev.events };
    }));
    if (left) return;
    // Door decisions at doors these cameras watch (the roles that see doors).
    if (['admin', 'operator'].includes(session().role)) {
      const doors = ((await api('/v1/doors').catch(() => ({ doors: [] }))).doors || []).filter((d) => chosen.includes(d.camera));
      await Promise.all(doors.map(async (d) => {
        const rec = (await api(`/v1/doors/${encodeURIComponent(d.id)}/recent?limit=500`).catch(() => ({ events: [] }))).events;
        const row = rows.find((r) => r.camera === d.camera);
        for (const e of rec) {
          const t = Date.parse(e.time);
          if (t < start || t > end) continue;
          row.events.push({ id: `door-${e.seq}`, kind: 'door', camera: d.camera, time: e.time, door: d.name || d.id, grant: e.grant,
            person_name: e.person_name || e.person || e.actor, outcome: e.outcome, action: e.action });
        }
      }));
    }
    evs = rows.flatMap((r) => r.events).sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    timeline.querySelectorAll('.lane, .playhead, .mark, .ticks').forEach((n) => n.remove());
    for (const r of rows) {
      const lane = document.createElement('div');
      lane.className = 'lane';
      lane.dataset.camera = r.camera;
      lane.innerHTML = `<span class="name">${esc(r.camera)}</span>` +
        r.rec.spans.map((s) => `<i class="rec" data-l="${pct(Math.max(start, Date.parse(s.start)))}" data-r="${pct(Math.min(end, Date.parse(s.end)))}" title="recorded ${esc(new Date(s.start).toLocaleTimeString())}–${esc(new Date(s.end).toLocaleTimeString())}"></i>`).join('') +
        r.events.map((e) => `<b class="tick ${e.kind} ${e.kind === 'door' ? (e.grant ? 'grant' : 'deny') : ''} ${isAlert(asLive(e)) ? 'alert' : ''}" data-event="${esc(e.id)}" data-l="${pct(Date.parse(e.time))}" title="${esc(label(e))} ${esc(new Date(e.time).toLocaleTimeString())}"></b>`).join('');
      lane.dataset.recorded = String(r.rec.recorded_seconds || 0);
      lane.dataset.events = String(r.events.length);
      if (r.rec.error) lane.insertAdjacentHTML('beforeend', `<span class="muted"> ${esc(r.rec.error)}</span>`);
      timeline.append(lane);
    }
    timeline.insertAdjacentHTML('beforeend', '<div class="ticks">' + ticks().map((t) => `<span data-l="${pct(t)}">${new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}</span>`).join('') + '</div><div class="playhead"></div><div class="mark" hidden></div>');
    view.querySelector('#revents').innerHTML = evs.map((e) => `<li data-event="${esc(e.id)}" data-time="${esc(e.time)}" class="${isAlert(asLive(e)) ? 'alert' : ''}">
      <a href="#" class="jump">${esc(new Date(e.time).toLocaleTimeString())}</a> <b>${esc(e.camera)}</b> ${esc(label(e))}</li>`).join('') ||
      '<li class="muted">No events in this window.</li>';
    drawMark();
    // Where to stand: where the user was, else the last minute recorded in the window.
    const ends = rows.flatMap((r) => r.rec.spans.map((sp) => Date.parse(sp.end)));
    const lastRecorded = ends.length ? Math.max(...ends) : start;
    seek(clipFrom && clipFrom >= start && clipFrom < end ? now() : Math.max(start, lastRecorded - 60e3), false);
  }
  // Things on the timeline carry their place as data-l and data-r (percent): the console's CSP
  // allows no style attributes in markup, so they are placed here.
  const place = () => timeline.querySelectorAll('[data-l]').forEach((n) => {
    n.style.left = `${n.dataset.l}%`;
    if (n.dataset.r) n.style.width = `${Math.max(0.2, Number(n.dataset.r) - Number(n.dataset.l))}%`;
    delete n.dataset.l;
  });
  const ticks = () => {
    const step = [60e3, 300e3, 600e3, 1800e3, 3600e3, 7200e3].find((s) => (end - start) / s <= 12) || 14400e3;
    const out = [];
    for (let t = Math.ceil(start / step) * step; t < end; t += step) out.push(t);
    return out;
  };

  const release = () => videos().forEach((v) => { v.pause(); v.removeAttribute('src'); v.load(); });
  // Each clip starts at its figure's data-from (ms): where the server says the clip starts (the
  // key frame at or before the time asked, or where the recording starts when that is later),
  // not the time asked. A camera's place in time is that plus its video's currentTime. A camera
  // whose clip starts after the others' time waits (data-waiting), paused at its start, until
  // they reach it. The first camera still playing and not waiting leads.
  const wallOf = (v) => Number(v.closest('figure').dataset.from) + v.currentTime * 1000;
  const waiting = (v) => v.closest('figure').dataset.waiting === '1';
  const leader = () => videos().find((v) => v.src && v.readyState > 0 && !v.ended && !v.error && !waiting(v));
  const now = () => {
    const v = leader() || videos().find((x) => x.src && x.readyState > 0);
    return v ? wallOf(v) : clipFrom;
  };
  const clipRange = (camera, t) => {
    const to = new Date(Math.min(t + clipLength * 1000, Math.max(end, t + 60e3))).toISOString();
    return `/v1/cameras/${encodeURIComponent(camera)}/footage?from=${new Date(t).toISOString()}&to=${to}`;
  };
  // clipStart is where the camera's clip from t starts (ms), or null where nothing was recorded.
  // A busy node (503) or a principal with many stills under way (429) is asked again in a second.
  const clipStart = (camera, t, tries = 3) => api(clipRange(camera, t).replace('/footage?', '/footage/start?')).then((r) => Date.parse(r.start),
    (err) => (tries > 1 && (err.status === 429 || err.status === 503) ? new Promise((ok) => setTimeout(ok, 1000)).then(() => clipStart(camera, t, tries - 1)) : null));
  // seek loads every camera's clip from t (the key frame at or before it) and plays them in step.
  function seek(t, play = playing) {
    clipFrom = Math.max(start, Math.min(t, end - 1000));
    release(); // the clips still downloading end now: a principal may hold only a few
    held = 0;
    players.innerHTML = chosen.map((c) => `<figure class="tile" data-camera="${esc(c)}" data-from="${clipFrom}"><video muted playsinline></video>
      <figcaption><b>${esc(c)}</b> <span class="state muted"></span></figcaption></figure>`).join('');
    players.dataset.count = String(chosen.length);
    const figs = [...players.querySelectorAll('figure')];
    for (const fig of figs) {
      const v = fig.querySelector('video');
      v.addEventListener('loadedmetadata', () => { fig.dataset.loaded = '1'; v.playbackRate = speed; if (playing && !waiting(v)) v.play().catch(() => {}); });
      v.addEventListener('error', () => { fig.querySelector('.state').textContent = 'no recording here'; });
      // When every camera's clip has ended, the next clips load from where they stopped.
      v.addEventListener('ended', () => { if (playing && !leader() && now() < end - 1000) seek(now(), true); });
    }
    // The clips start where each camera's recording has a key frame: the earliest leads, and a
    // camera starting more than 0.3 s after it waits for it.
    const n = ++seeks;
    Promise.all(figs.map(async (fig) => ({ fig, at: await clipStart(fig.dataset.camera, clipFrom) }))).then((starts) => {
      if (n !== seeks || left) return;
      const first = Math.min(...starts.filter((x) => x.at != null).map((x) => x.at));
      for (const { fig, at } of starts) {
        if (at == null) { fig.querySelector('.state').textContent = 'no recording here'; continue; }
        fig.dataset.from = String(at);
        if (at > first + 300) fig.dataset.waiting = '1';
        fig.querySelector('video').src = withToken(clipRange(fig.dataset.camera, clipFrom));
      }
    });
    playing = play;
    view.querySelector('#playpause').textContent = playing ? 'Pause' : 'Play';
  }
  // A camera whose clip ended before the leader's (its recording had a break, or reached the
  // end of what was recorded when it loaded) loads again from the leader's time, at most every 5 s.
  function reload(v, t) {
    const fig = v.closest('figure');
    if (Date.now() - Number(fig.dataset.reloaded || 0) < 5000) return;
    fig.dataset.reloaded = String(Date.now());
    const n = seeks;
    clipStart(fig.dataset.camera, t).then((at) => {
      if (n !== seeks || left || at == null) return; // nothing recorded from t on: it tries again in 5 s
      fig.dataset.from = String(at);
      fig.dataset.waiting = at > t + 300 ? '1' : '';
      fig.querySelector('.state').textContent = '';
      v.src = withToken(clipRange(fig.dataset.camera, t));
    });
  }
  // In step: the leader sets the time and the others follow it. A clip streams as it is cut, so
  // the browser cannot seek in it: a camera behind or ahead by up to 3 s plays a little faster or
  // slower until it is in step (within 0.1 s), and one further off loads again from the leader's
  // time. A waiting camera starts playing when the leader reaches its first frame. A camera whose
  // footage is still downloading holds them all (the slowest sets the pace), for at most 10 s,
  // after which the others go on without it.
  const holdLimit = 10000;
  const tick = 250;
  const timer = setInterval(() => {
    const lead = leader();
    if (lead) {
      const t = wallOf(lead);
      lead.playbackRate = speed;
      const others = videos().filter((v) => v !== lead && v.src && !v.error);
      for (const v of others) {
        if (v.readyState === 0) continue;
        if (v.ended) {
          if (playing && t < end - 1000) reload(v, t);
          continue;
        }
        const fig = v.closest('figure');
        const behind = (t - Number(fig.dataset.from)) / 1000 - v.currentTime; // s of footage
        if (waiting(v)) { // paused at its first frame until the leader gets there
          if (!v.paused) v.pause();
          const due = (-behind * 1000) / speed; // ms until the leader reaches it
          if (behind >= 0) fig.dataset.waiting = '';
          else if (playing && due < tick && !fig.dataset.joining) {
            fig.dataset.joining = '1';
            setTimeout(() => {
              fig.dataset.waiting = '';
              delete fig.dataset.joining;
              if (playing && held <= 0) v.play().catch(() => {});
            }, due);
          }
          continue;
        }
        if (Math.abs(behind) > 3) { if (playing) reload(v, t); continue; }
        v.playbackRate = Math.abs(behind) < 0.1 || !playing ? speed : speed * (1 + Math.max(-0.5, Math.min(0.5, behind / 2)));
      }
      const joined = others.filter((v) => !waiting(v));
      const starving = joined.some((v) => !v.ended && v.readyState < 3) || lead.readyState < 3;
      const all = [lead, ...joined].filter((v) => v.readyState > 0 && !v.ended);
      if (playing && starving && held === 0) {
        held = Date.now();
        all.forEach((v) => v.pause());
      } else if (held > 0 && (!playing || !starving || Date.now() - held > holdLimit)) {
        if (playing) all.forEach((v) => v.play().catch(() => {}));
        held = starving && playing ? -1 : 0; // -1: gave up waiting until the next seek
      }
      players.dataset.held = held > 0 ? '1' : '';
    }
    const t = now();
    clock.textContent = new Date(t).toLocaleString();
    const ph = timeline.querySelector('.playhead');
    if (ph) ph.style.left = x(t);
    players.dataset.time = String(t);
  }, 250);

  function setSpeed(v) {
    speed = v;
    view.querySelector('#speed').value = String(v);
    videos().forEach((x) => { x.playbackRate = v; });
  }
  function toggle() {
    playing = !playing;
    videos().forEach((v) => (playing && !waiting(v) ? v.play().catch(() => {}) : v.pause()));
    view.querySelector('#playpause').textContent = playing ? 'Pause' : 'Play';
  }
  function drawMark() {
    const m = timeline.querySelector('.mark');
    if (!m) return;
    m.hidden = mark.in == null;
    if (mark.in != null) {
      const b = mark.out ?? now();
      m.style.left = x(Math.min(mark.in, b));
      m.style.width = `${(Math.abs(b - mark.in) / (end - start)) * 100}%`;
    }
    const ex = view.querySelector('#rexport');
    if (ex) ex.disabled = !(mark.in != null && mark.out != null && Math.abs(mark.out - mark.in) >= 1000);
  }

  // Scrubbing: a still of the recording (the key frame at or before the pointer's time, of the
  // camera whose lane it is on) previews where the pointer is, or the nearest event's best shot
  // where nothing was recorded; click or drag seeks.
  let dragging = false;
  let stillTimer = 0;
  const img = preview.querySelector('img');
  img.onerror = () => {
    const near = img.dataset.near && evs.find((ev) => ev.id === img.dataset.near);
    if (near && near.snapshot_url && img.dataset.fallback !== near.id) { img.dataset.fallback = near.id; img.src = withToken(near.snapshot_url); } else img.hidden = true;
  };
  img.onload = () => { img.hidden = false; preview.dataset.loaded = img.dataset.camera || ''; };
  timeline.addEventListener('pointermove', (e) => {
    const t = timeAt(e.clientX);
    preview.hidden = false;
    // Centred on the pointer, but kept inside the timeline at either end (left counts from
    // inside the timeline's border).
    const half = preview.getBoundingClientRect().width / 2;
    const at = e.clientX - timeline.getBoundingClientRect().left - timeline.clientLeft;
    preview.style.left = `${Math.min(Math.max(at, half), timeline.clientWidth - half)}px`;
    preview.querySelector('span').textContent = new Date(t).toLocaleTimeString();
    if (dragging) timeline.querySelector('.playhead').style.left = x(t);
    const lane = e.target.closest('.lane') || timeline.querySelector('.lane');
    if (!lane) return;
    clearTimeout(stillTimer);
    stillTimer = setTimeout(() => { // at most a few stills a second, on 2 s steps (the browser caches them)
      const near = evs.filter((ev) => ev.camera === lane.dataset.camera)
        .reduce((best, ev) => (!best || Math.abs(Date.parse(ev.time) - t) < Math.abs(Date.parse(best.time) - t) ? ev : best), null);
      const at = new Date(Math.floor(t / 2000) * 2000).toISOString();
      img.dataset.near = near ? near.id : '';
      img.dataset.fallback = '';
      img.dataset.camera = lane.dataset.camera;
      img.src = withToken(`/v1/cameras/${encodeURIComponent(lane.dataset.camera)}/preview?at=${at}`);
    }, 120);
  });
  timeline.addEventListener('pointerleave', () => { preview.hidden = true; clearTimeout(stillTimer); });
  timeline.addEventListener('pointerdown', (e) => { dragging = true; timeline.setPointerCapture(e.pointerId); });
  timeline.addEventListener('pointerup', (e) => {
    dragging = false;
    const tick = e.target.closest('.tick');
    if (tick) { jump(tick.dataset.event); return; }
    seek(timeAt(e.clientX));
  });
  function jump(id) {
    const ev = evs.find((e) => e.id === id);
    if (!ev) return;
    seek(Date.parse(ev.time) - 5000, true);
    view.querySelectorAll('#revents li').forEach((li) => li.classList.toggle('active', li.dataset.event === id));
  }
  view.querySelector('#revents').addEventListener('click', (e) => {
    const a = e.target.closest('a.jump');
    if (!a) return;
    e.preventDefault();
    jump(a.closest('li').dataset.event);
  });

  view.querySelector('#playpause').onclick = toggle;
  view.querySelector('#speed').onchange = (e) => setSpeed(Number(e.target.value));
  view.querySelector('#span').onchange = (e) => {
    span = Number(e.target.value);
    sessionStorage.setItem('vigil.review.span', String(span));
    end = Date.now();
    start = end - span * 1000;
    load();
  };
  const shift = (dir) => { const d = (end - start) * dir; start += d; end = Math.min(Date.now(), end + d); if (end - start < span * 1000) start = end - span * 1000; load(); };
  view.querySelector('#earlier').onclick = () => shift(-1);
  view.querySelector('#later').onclick = () => shift(1);
  if (canExport) {
    view.querySelector('#markin').onclick = () => { mark = { in: now(), out: null }; drawMark(); };
    view.querySelector('#markout').onclick = () => { if (mark.in == null) mark.in = clipFrom; mark.out = now(); drawMark(); };
    view.querySelector('#rexport').onclick = async () => {
      const reason = prompt('Reason for the export (recorded with it):');
      if (!reason) return;
      const [a, b] = [Math.min(mark.in, mark.out), Math.max(mark.in, mark.out)];
      const from = new Date(a).toISOString();
      const to = new Date(Math.min(b, a + 3600e3)).toISOString();
      try {
        const res = await api('/v1/exports', { method: 'POST', body: { reason, ranges: chosen.map((camera) => ({ camera, from, to })) } });
        const ex = res.export;
        view.querySelector('#rexported').innerHTML = `<div class="card export" data-export="${esc(ex.id)}">
          <b>Case file ${esc(ex.id)}</b> · ${ex.ranges.length} cameras, ${esc(new Date(a).toLocaleTimeString())}–${esc(new Date(b).toLocaleTimeString())}
          <div class="muted">manifest sha256 <code class="sha">${esc(res.manifest_sha256)}</code></div>
          <ul class="files"><li><a class="zip" href="${esc(withToken(`/v1/exports/${encodeURIComponent(ex.id)}/zip`))}" download>case-${esc(ex.id)}.zip</a></li>
          <li><a class="manifest" href="${esc(withToken(res.manifest_url))}" download>manifest.json</a></li>
          ${ex.files.map((f) => `<li><a href="${esc(withToken(f.url))}" download>${esc(f.name)}</a></li>`).join('')}</ul>
          ${ex.ranges.some((r) => r.missing) ? `<p class="warn">${ex.ranges.filter((r) => r.missing).map((r) => `${esc(r.camera)}: ${esc(r.missing.join(', '))}`).join('; ')}</p>` : ''}</div>`;
      } catch (err) { toast(err.message, 'error'); }
    };
  }
  const keys = (e) => {
    if (e.target.closest('input, select, textarea')) return;
    if (e.key === ' ') { e.preventDefault(); toggle(); } else if (e.key === 'ArrowLeft') seek(now() - 10e3);
    else if (e.key === 'ArrowRight') seek(now() + 10e3);
    else if (e.key === '[' && canExport) view.querySelector('#markin').click();
    else if (e.key === ']' && canExport) view.querySelector('#markout').click();
    else if (/^[1-5]$/.test(e.key)) setSpeed(speeds[Number(e.key) - 1]);
  };
  window.addEventListener('keydown', keys);

  const observer = new MutationObserver(place);
  observer.observe(timeline, { childList: true, subtree: true });
  await load();
  place();
  if (!Number.isNaN(at)) seek(at - 5000, false);
  return () => { left = true; clearInterval(timer); window.removeEventListener('keydown', keys); observer.disconnect(); release(); };
}

// asLive gives a stored event the live shape isAlert reads.
function asLive(e) {
  return { kind: e.kind, match: e.list ? { list: e.list } : null };
}

function label(e) {
  if (e.kind === 'door') return `door ${e.door}: ${e.action === 'door.decision' ? (e.grant ? 'opened for' : 'refused') : e.action} ${e.person_name || ''}${e.grant ? '' : ` (${e.outcome || ''})`}`;
  if (e.kind === 'plate') return e.plate ? `plate ${e.plate}` : 'plate';
  if (e.kind === 'alarm') return 'alarm';
  return e.person_name || e.person_id ? `${e.person_name || e.person_id}${e.list ? ` (${e.list})` : ''}` : e.list ? `a ${e.list} face` : 'face';
}
