// Privacy masks (admin): a camera's still as recorded, with its masked regions drawn over it.
// Click to place a polygon's corners, finish it, and save: the regions are never analysed, and
// are blacked out in snapshots, stills and exported footage (the recording is kept intact).
import { api, esc, withToken } from './api.js';
import { toast } from './ui.js';

export async function masksPage(view) {
  view.innerHTML = `
    <section class="toolbar">
      <label>Camera <select id="maskcam"></select></label>
      <button type="button" id="finish" disabled>Finish polygon</button>
      <button type="button" id="undo" disabled>Undo point</button>
      <button type="button" id="clearall">Remove all</button>
      <label title="re-encode every segment with the masks before it is stored"><input type="checkbox" id="maskrecord"> mask the recording too</label>
      <button type="button" id="savemasks" class="primary">Save masks</button>
      <span id="maskstate" class="muted"></span>
    </section>
    <section class="split">
      <div id="maskstage" class="maskstage"><img id="maskimg" alt="the camera's picture as recorded"><svg id="maskdraw" viewBox="0 0 1000 1000" preserveAspectRatio="none"></svg></div>
      <div><h3>Masked regions</h3><ol id="polys" class="list"></ol>
        <p class="muted">Click on the picture to place a region's corners, then Finish polygon. Regions are
        in fractions of the picture, so they fit the main stream and the sub-stream alike. Saving restarts
        the camera's analysis with them and is audited.</p></div>
    </section>`;
  const sel = view.querySelector('#maskcam');
  const img = view.querySelector('#maskimg');
  const svg = view.querySelector('#maskdraw');
  const state = view.querySelector('#maskstate');
  let polygons = [];
  let current = [];
  const cams = (await api('/v1/cameras')).cameras.map((c) => c.id);
  sel.innerHTML = cams.map((c) => `<option>${esc(c)}</option>`).join('');

  function draw() {
    const pts = (p) => p.map(([x, y]) => `${x * 1000},${y * 1000}`).join(' ');
    svg.innerHTML = polygons.map((p, i) => `<polygon class="masked" data-index="${i}" points="${pts(p)}"></polygon>`).join('') +
      (current.length ? `<polyline class="drawing" points="${pts(current)}"></polyline>` +
        current.map(([x, y]) => `<circle cx="${x * 1000}" cy="${y * 1000}" r="6"></circle>`).join('') : '');
    svg.dataset.polygons = String(polygons.length);
    view.querySelector('#polys').innerHTML = polygons.map((p, i) => `<li>region ${i + 1}: ${p.length} corners
      <button type="button" data-remove="${i}">remove</button></li>`).join('') || '<li class="muted">none: the whole picture is analysed</li>';
    view.querySelector('#finish').disabled = current.length < 3;
    view.querySelector('#undo').disabled = current.length === 0;
  }
  view.querySelector('#polys').onclick = (e) => {
    const i = e.target.dataset.remove;
    if (i !== undefined) { polygons.splice(Number(i), 1); draw(); }
  };
  img.onclick = (e) => {
    const r = img.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    const y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
    current.push([Number(x.toFixed(4)), Number(y.toFixed(4))]);
    draw();
  };
  view.querySelector('#finish').onclick = () => { if (current.length >= 3) { polygons.push(current); current = []; draw(); } };
  view.querySelector('#undo').onclick = () => { current.pop(); draw(); };
  view.querySelector('#clearall').onclick = () => { polygons = []; current = []; draw(); };
  view.querySelector('#savemasks').onclick = async () => {
    if (current.length >= 3) { polygons.push(current); current = []; }
    try {
      const record = view.querySelector('#maskrecord').checked;
      const r = await api(`/v1/cameras/${encodeURIComponent(sel.value)}/masks`, { method: 'PUT', body: { polygons, record } });
      state.textContent = `saved: ${r.polygons.length} region(s) on ${sel.value}`;
      toast('Privacy masks saved');
      draw();
    } catch (err) { toast(err.message, 'error'); }
  };

  async function load() {
    const cam = sel.value;
    current = [];
    const m = await api(`/v1/cameras/${encodeURIComponent(cam)}/masks`);
    polygons = m.polygons;
    view.querySelector('#maskrecord').checked = !!m.record;
    draw();
    state.textContent = 'loading the picture…';
    // A busy node answers a still with 503: ask twice more, two seconds apart, before saying
    // there is no recording.
    let tries = 0;
    const still = () => withToken(`/v1/cameras/${encodeURIComponent(cam)}/preview?at=${encodeURIComponent(new Date().toISOString())}&width=960&masks=off`);
    img.onerror = () => {
      if (sel.value !== cam) return;
      if (++tries < 3) {
        setTimeout(() => { if (sel.value === cam) img.src = still(); }, 2000);
        return;
      }
      state.textContent = `no recording of ${cam} yet: the regions can still be drawn on the blank frame`;
    };
    img.onload = () => { state.textContent = `${polygons.length} region(s)`; };
    img.src = still();
  }
  sel.onchange = load;
  if (cams.length) await load();
}
