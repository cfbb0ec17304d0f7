// Repeat strangers: faces that matched no one, clustered into anonymous identities (S000123)
// that stay the same across cameras, days and restarts. The list shows each stranger's best
// shot, how often and where they were seen; following one (a reason, audited) shows their
// appearances; investigators promote one to the watch list, merge two, or split one.
import { api, esc, session, withToken } from './api.js';
import { toast } from './ui.js';

export async function strangersPage(view) {
  const edit = ['admin', 'investigator'].includes(session().role);
  const params = new URLSearchParams((location.hash.split('?')[1]) || '');
  view.innerHTML = `
    <form id="sq" class="toolbar">
      <strong>Strangers</strong>
      <label>last <input name="days" type="number" value="7" min="1" max="90" size="3"> days</label>
      <label>seen at least <input name="min" type="number" value="2" min="1" size="3"> times</label>
      <input name="reason" placeholder="reason (case number…)" required size="20" value="${esc(sessionStorage.getItem('vigil.track.reason') || '')}">
      <button>Show</button>
      <span id="sstate" class="muted"></span>
    </form>
    <section class="split">
      <ol id="slist" class="hits grow"></ol>
      <div id="sdetail" class="grow"></div>
    </section>`;
  const form = view.querySelector('#sq');
  const list = view.querySelector('#slist');
  const detail = view.querySelector('#sdetail');
  const reason = () => new FormData(form).get('reason');

  async function load() {
    const f = new FormData(form);
    sessionStorage.setItem('vigil.track.reason', f.get('reason'));
    try {
      const r = await api(`/v1/strangers?days=${f.get('days')}&min_faces=${f.get('min')}&reason=${encodeURIComponent(f.get('reason'))}`);
      list.innerHTML = r.strangers.map((s) => `
        <li class="hit stranger" data-stranger="${esc(s.id)}">
          ${s.snapshot_url ? `<img alt="" loading="lazy" src="${esc(withToken(s.snapshot_url))}">` : '<div class="noshot"></div>'}
          <div class="grow"><b>${esc(s.id)}</b>${s.promoted_to ? ` <span class="tag">watch list: ${esc(s.promoted_to)}</span>` : ''}
            <div>${s.faces} faces on ${s.days} day(s) · ${esc(s.cameras.join(', '))}</div>
            <div class="muted">${esc(new Date(s.first_seen).toLocaleString())} – ${esc(new Date(s.last_seen).toLocaleString())}</div></div>
        </li>`).join('') || '<p class="muted">No stranger seen that often in that time.</p>';
      view.querySelector('#sstate').textContent = `${r.strangers.length} strangers`;
      list.dataset.count = String(r.strangers.length);
    } catch (err) { toast(err.message, 'error'); }
  }

  async function show(id) {
    try {
      const r = await api(`/v1/strangers/${encodeURIComponent(id)}?reason=${encodeURIComponent(reason())}`);
      const s = r.stranger;
      detail.innerHTML = `
        <h3>Stranger ${esc(s.id)}</h3>
        <p>${s.faces} faces on ${s.days} day(s) at ${esc(s.cameras.join(', '))}${s.promoted_to ? ` · promoted to ${esc(s.promoted_to)}` : ''}</p>
        ${edit && !s.promoted_to ? `<form id="promote" class="inline"><input name="person" placeholder="person id" required size="12">
          <input name="name" placeholder="name" required size="14"><input name="list" value="watchlist" size="10">
          <button>Promote to watch list</button></form>
          <form id="merge" class="inline"><input name="into" placeholder="merge into S…" required size="10"><button>Merge</button></form>
          <p><button type="button" id="split" disabled>Split the chosen appearances off</button></p>` : ''}
        <ol class="hits appearances">${r.appearances.map((a) => `
          <li class="hit" data-event="${esc(a.event_id)}">
            ${edit ? `<input type="checkbox" value="${esc(a.event_id)}" title="choose for a split">` : ''}
            <img alt="" loading="lazy" src="${esc(withToken(a.snapshot_url))}">
            <div class="grow"><b>${esc(a.camera)}</b> · ${esc(new Date(a.time).toLocaleString())}
              <div class="muted">distance ${a.distance.toFixed(2)}</div></div>
          </li>`).join('')}</ol>`;
      detail.dataset.stranger = s.id;
      const change = async (what, body) => {
        try {
          const res = await api(`/v1/strangers/${encodeURIComponent(s.id)}/${what}`, { method: 'POST', body: { ...body, reason: reason() } });
          toast(res.note || `${what}: done${res.new_stranger ? ' (new stranger ' + res.new_stranger + ')' : ''}`);
          await load();
          show(what === 'merge' ? body.into : s.id);
        } catch (err) { toast(err.message, 'error'); }
      };
      const p = detail.querySelector('#promote');
      if (p) p.onsubmit = (e) => { e.preventDefault(); const f = new FormData(p); change('promote', { person: f.get('person'), name: f.get('name'), list: f.get('list') }); };
      const m = detail.querySelector('#merge');
      if (m) m.onsubmit = (e) => { e.preventDefault(); change('merge', { into: new FormData(m).get('into').trim() }); };
      const sp = detail.querySelector('#split');
      if (sp) {
        const chosen = () => [...detail.querySelectorAll('.appearances input:checked')].map((i) => i.value);
        detail.querySelector('.appearances').onchange = () => { sp.disabled = chosen().length === 0; };
        sp.onclick = () => change('split', { event_ids: chosen() });
      }
    } catch (err) { toast(err.message, 'error'); }
  }

  form.onsubmit = (e) => { e.preventDefault(); load(); };
  list.onclick = (e) => { const li = e.target.closest('li.stranger'); if (li) show(li.dataset.stranger); };
  if (reason()) {
    await load();
    if (params.get('id')) show(params.get('id'));
  }
}
