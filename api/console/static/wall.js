// The camera wall: a page of live views at a time, paging through every camera, each tile with
// the camera's health (state, frame rate, bitrate, last error) refreshed every 5 s. Keys: ←/→
// page, 1/2/3 layout, / filter, f (or a double click) full screen.
import { api, esc } from './api.js';
import { play } from './whep.js';

const sizes = { '2×2': 4, '3×3': 9, '4×4': 16 };

export async function wallPage(view) {
  let cameras = [];
  let page = Number(sessionStorage.getItem('vigil.wall.page') || 0);
  let perPage = Number(sessionStorage.getItem('vigil.wall.size') || 9);
  let players = [];
  let left = false; // the page was left: nothing more may start
  view.innerHTML = `
    <section class="toolbar">
      <button id="prev" type="button">◀</button>
      <span id="pageinfo"></span>
      <button id="next" type="button">▶</button>
      <select id="size">${Object.entries(sizes).map(([k, v]) => `<option value="${v}">${k}</option>`).join('')}</select>
      <input id="filter" placeholder="camera id…" size="12">
      <span id="summary"></span>
    </section>
    <section id="wall" class="wall"></section>`;
  const wall = view.querySelector('#wall');
  view.querySelector('#size').value = String(perPage);

  let connecting = new AbortController(); // the views of the current render still connecting
  const stop = () => {
    connecting.abort();
    connecting = new AbortController();
    players.forEach((p) => p && p.close());
    players = [];
  };
  const shown = () => {
    const f = view.querySelector('#filter').value.trim().toLowerCase();
    return f ? cameras.filter((c) => c.id.toLowerCase().includes(f)) : cameras;
  };

  async function render() {
    stop();
    const list = shown();
    const pages = Math.max(1, Math.ceil(list.length / perPage));
    page = Math.min(Math.max(page, 0), pages - 1);
    sessionStorage.setItem('vigil.wall.page', String(page));
    view.querySelector('#pageinfo').textContent = `page ${page + 1} of ${pages} (${list.length} cameras)`;
    wall.style.setProperty('--cols', String(Math.round(Math.sqrt(perPage))));
    const slice = list.slice(page * perPage, (page + 1) * perPage);
    wall.innerHTML = slice.map((c) => `
      <figure class="tile" data-camera="${esc(c.id)}">
        <video muted autoplay playsinline></video>
        <figcaption><b>${esc(c.id)}</b> <span class="health"></span></figcaption>
        <div class="overlay"></div>
      </figure>`).join('');
    paintHealth();
    const signal = connecting.signal;
    const started = await Promise.all(slice.map((c, i) => start(i, c)));
    if (signal.aborted) { started.forEach((p) => p && p.close()); return; } // rendered again, or left
    players = started;
  }

  // start plays camera c in tile i. A tile whose video stops (the camera's node died or handed
  // the camera to another node, a network blip) is played again by heal.
  async function start(i, c) {
    const tile = wall.querySelector(`[data-camera="${CSS.escape(c.id)}"]`);
    if (!tile) return null;
    const video = tile.querySelector('video');
    tile.dataset.node = c.node || '';
    tile.dataset.started = String(performance.now());
    tile.dataset.lastFrame = '0';
    const signal = connecting.signal;
    try {
      return await play(video, c.id, {
        signal,
        onState: (s) => { tile.dataset.rtc = s; },
        onFrame: () => { tile.dataset.lastFrame = String(performance.now()); },
      });
    } catch (err) {
      if (signal.aborted || left) return null; // the page was left or shows other cameras now
      tile.querySelector('.overlay').textContent = err.message;
      tile.classList.add('down');
      return null;
    }
  }

  // heal plays again every tile whose camera is live but whose video is not: no frame for 6 s,
  // a connection that failed, or the camera now runs on another node.
  async function heal() {
    const now = performance.now();
    const list = shown().slice(page * perPage, (page + 1) * perPage);
    await Promise.all(list.map(async (c, i) => {
      const tile = wall.querySelector(`[data-camera="${CSS.escape(c.id)}"]`);
      if (!tile || c.state !== 'live') return;
      const last = Math.max(Number(tile.dataset.lastFrame || 0), Number(tile.dataset.started || 0));
      const stale = now - last > 6000 || ['failed', 'closed'].includes(tile.dataset.rtc) || (tile.dataset.node || '') !== (c.node || '');
      if (!stale || tile.dataset.healing) return;
      tile.dataset.healing = '1';
      if (players[i]) players[i].close();
      const signal = connecting.signal;
      const p = await start(i, c);
      if (left || signal.aborted) { if (p) p.close(); } else players[i] = p;
      delete tile.dataset.healing;
    }));
  }

  function paintHealth() {
    let live = 0;
    for (const c of cameras) {
      if (c.state === 'live') live++;
      const tile = wall.querySelector(`[data-camera="${CSS.escape(c.id)}"]`);
      if (!tile) continue;
      const kbps = Math.round((c.bitrate_bps || 0) / 1000);
      tile.querySelector('.health').textContent = c.state === 'live' ? `${(c.fps || 0).toFixed(0)} fps · ${kbps} kb/s` : c.state;
      tile.classList.toggle('down', c.state !== 'live');
      tile.querySelector('.overlay').textContent = c.state === 'live' ? '' : (c.last_error || c.state);
    }
    view.querySelector('#summary').textContent = `${live} of ${cameras.length} cameras live`;
  }

  async function refresh() {
    try {
      cameras = (await api('/v1/cameras')).cameras;
      paintHealth();
      await heal();
    } catch { /* shown on the next success */ }
  }

  view.querySelector('#prev').onclick = () => { page--; render(); };
  view.querySelector('#next').onclick = () => { page++; render(); };
  view.querySelector('#size').onchange = (e) => { perPage = Number(e.target.value); sessionStorage.setItem('vigil.wall.size', String(perPage)); page = 0; render(); };
  view.querySelector('#filter').oninput = () => { page = 0; render(); };
  // Keys: ←/→ page, 1/2/3 the 2×2, 3×3 or 4×4 layout, / the filter, f a tile full screen.
  const keys = (e) => {
    if (e.target.closest('input, select, textarea')) return;
    const size = { 1: 4, 2: 9, 3: 16 }[e.key];
    if (e.key === 'ArrowLeft') view.querySelector('#prev').click();
    else if (e.key === 'ArrowRight') view.querySelector('#next').click();
    else if (size) { const sel = view.querySelector('#size'); sel.value = String(size); sel.onchange({ target: sel }); }
    else if (e.key === '/') { e.preventDefault(); view.querySelector('#filter').focus(); }
    else if (e.key === 'f') { const v = wall.querySelector('.tile:hover video') || wall.querySelector('.tile video'); if (v && v.requestFullscreen) v.requestFullscreen().catch(() => {}); }
  };
  window.addEventListener('keydown', keys);
  wall.addEventListener('dblclick', (e) => { const v = e.target.closest('.tile')?.querySelector('video'); if (v && v.requestFullscreen) v.requestFullscreen().catch(() => {}); });
  cameras = (await api('/v1/cameras')).cameras;
  render(); // not awaited: leaving while the views connect ends them at once
  const timer = setInterval(refresh, 5000);
  return () => { left = true; clearInterval(timer); window.removeEventListener('keydown', keys); stop(); };
}
