// People, for the property office and admins: find a resident by name, unit, card or car plate;
// register one with a lease, a card and a car; a person's file (#/people/ID) with leases (end
// one), credentials (issue, revoke), face (enrol from a photo or the camera, with the checks
// shown as they are framed; erase), groups and the resident app's one-time invitation.
import { api, esc } from './api.js';
import { toast } from './ui.js';
import { faceEnrolment } from './facecam.js';
import qrcode from './vendor/qrcode.js';

const day = (t) => (t ? new Date(t).toLocaleDateString() : '');
const iso = (d) => (d ? new Date(d).toISOString() : undefined);

// leaseState says whether a lease is in force, ended or ahead.
export function leaseState(l) {
  const now = Date.now();
  if (new Date(l.starts) > now) return 'starts ' + day(l.starts);
  if (new Date(l.ends) <= now) return 'ended';
  return 'in force';
}

// qrImage renders text as a QR code image (a data: URL; the console's CSP allows those).
export function qrImage(text, cell = 6) {
  const q = qrcode(0, 'M');
  q.addData(text);
  q.make();
  return q.createDataURL(cell, 2);
}

export async function peoplePage(view) {
  const id = decodeURIComponent(location.hash.split('?')[0].split('/')[2] || '');
  if (id) return personPage(view, id);
  view.innerHTML = `
    <form id="find" class="toolbar">
      <input name="q" placeholder="name or id" size="16">
      <input name="unit" placeholder="unit" size="10">
      <input name="card" placeholder="card number" size="12">
      <input name="plate" placeholder="car plate" size="10">
      <select name="kind"><option value="">everyone</option><option>resident</option><option>visitor</option><option>staff</option></select>
      <button>Find</button>
      <button type="button" id="add">Register a person…</button>
    </form>
    <form id="new" class="card form-grid" hidden>
      <h3>Register a person</h3>
      <label>id <input name="id" required pattern="[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}" placeholder="r-10293"></label>
      <label>name <input name="name" required></label>
      <label>kind <select name="kind"><option>resident</option><option>staff</option><option>visitor</option></select></label>
      <label>unit <input name="unit" placeholder="b01-0203 (a lease)"></label>
      <label>lease from <input name="starts" type="date"></label>
      <label>lease until <input name="ends" type="date"></label>
      <label>card <input name="card" placeholder="card number"></label>
      <label>car plate <input name="plate" placeholder="粤B12345"></label>
      <div class="actions"><button>Register</button> <button type="button" id="cancel">Cancel</button></div>
    </form>
    <table class="events people"><thead><tr><th>name</th><th>kind</th><th>units</th><th>registered</th></tr></thead><tbody></tbody></table>
    <p id="none" class="muted"></p>
    <button type="button" id="more" hidden>More…</button>`;
  const find = view.querySelector('#find');
  const body = view.querySelector('tbody');
  // #/people?unit=… (from the units list) opens on that unit's people.
  const pre = new URLSearchParams(location.hash.split('?')[1] || '');
  for (const k of ['q', 'unit', 'card', 'plate']) if (pre.get(k)) find.elements[k].value = pre.get(k);
  let next = '';
  async function load(more) {
    const q = new URLSearchParams({ limit: '50' });
    for (const [k, v] of new FormData(find)) if (v) q.set(k, v);
    if (more && next) q.set('after', next);
    try {
      const r = await api('/v1/people?' + q);
      next = r.next || '';
      const rows = r.people.map((p) => `<tr data-id="${esc(p.id)}">
        <td><a href="#/people/${encodeURIComponent(p.id)}" title="${esc(p.id)}">${esc(p.name)}</a>${p.blacklisted ? ' <span class="tag warn">blacklisted</span>' : ''}</td>
        <td>${esc(p.kind)}</td><td>${esc(p.units.join(', '))}</td><td>${day(p.created_at)}</td></tr>`).join('');
      if (more) body.insertAdjacentHTML('beforeend', rows); else body.innerHTML = rows;
      view.querySelector('#more').hidden = !next;
      view.querySelector('#none').textContent = body.rows.length ? '' : 'Nobody matches.';
    } catch (err) { toast(err.message, 'error'); }
  }
  find.addEventListener('submit', (e) => { e.preventDefault(); load(false); });
  view.querySelector('#more').onclick = () => load(true);
  const form = view.querySelector('#new');
  view.querySelector('#add').onclick = () => { form.hidden = false; form.elements.id.focus(); };
  view.querySelector('#cancel').onclick = () => { form.hidden = true; };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(form));
    try {
      await api('/v1/people', { method: 'POST', body: { id: f.id, name: f.name, kind: f.kind } });
      if (f.unit) {
        if (!f.starts || !f.ends) throw new Error('A lease needs its dates.');
        await api(`/v1/people/${encodeURIComponent(f.id)}/leases`, { method: 'POST', body: { unit: f.unit, starts: iso(f.starts), ends: iso(f.ends) } });
      }
      if (f.card) await api(`/v1/people/${encodeURIComponent(f.id)}/credentials`, { method: 'POST', body: { kind: 'card', value: f.card } });
      if (f.plate) await api(`/v1/people/${encodeURIComponent(f.id)}/credentials`, { method: 'POST', body: { kind: 'plate', value: f.plate } });
      toast(`${f.name} registered`);
      location.hash = `#/people/${encodeURIComponent(f.id)}`;
    } catch (err) { toast(err.message, 'error'); }
  });
  await load(false);
}

// personPage is one person's file.
async function personPage(view, id) {
  let stopCam = null;
  const path = `/v1/people/${encodeURIComponent(id)}`;
  async function render() {
    let p;
    try { p = await api(path); } catch (err) { view.innerHTML = `<p class="error">${esc(err.message)}</p>`; return; }
    view.innerHTML = `
      <p><a href="#/people">← People</a></p>
      <h2 title="${esc(p.id)}">${esc(p.name)} <span class="muted">${esc(p.kind)} · ${esc(p.id)}</span>${p.blacklisted ? ' <span class="tag warn">blacklisted</span>' : ''}</h2>
      <div class="split wrap">
      <section class="grow"><h3>Leases</h3>
        <table class="events leases"><thead><tr><th>unit</th><th>from</th><th>until</th><th></th><th></th></tr></thead><tbody>
        ${p.leases.map((l) => `<tr data-lease="${l.id}"><td>${esc(l.unit)} <span class="muted">${esc(l.building)}</span></td><td>${day(l.starts)}</td><td>${day(l.ends)}</td>
          <td>${esc(leaseState(l))}</td><td>${new Date(l.ends) > Date.now() ? '<button type="button" class="end">End now…</button>' : ''}</td></tr>`).join('') || '<tr><td colspan="5" class="muted">No lease.</td></tr>'}
        </tbody></table>
        <form id="lease" class="inline"><input name="unit" placeholder="unit" required size="10"> <input name="starts" type="date" required> → <input name="ends" type="date" required> <button>Add lease</button></form>
        <h3>Credentials</h3>
        <table class="events creds"><thead><tr><th>kind</th><th></th><th>valid</th><th>state</th><th></th></tr></thead><tbody>
        ${p.credentials.map((c) => `<tr data-cred="${c.id}"><td>${esc(c.kind)}${c.duress ? ' (duress)' : ''}</td><td>${esc(c.plate || '')}</td>
          <td>${c.valid_from || c.valid_until ? `${day(c.valid_from)} – ${day(c.valid_until)}` : 'always'}</td>
          <td>${c.revoked_at ? 'revoked ' + day(c.revoked_at) : 'live'}</td><td>${c.revoked_at ? '' : '<button type="button" class="revoke">Revoke…</button>'}</td></tr>`).join('') || '<tr><td colspan="5" class="muted">None.</td></tr>'}
        </tbody></table>
        <form id="cred" class="inline"><select name="kind"><option value="card">card</option><option value="pin">PIN</option><option value="qr">QR code</option><option value="plate">car plate</option></select>
          <input name="value" placeholder="number, PIN or plate (a QR code is made)" size="24"> <button>Issue</button></form>
        <div id="issued"></div>
      </section>
      <section class="grow"><h3>Face</h3>
        <p>${p.faces ? `${p.faces} template${p.faces > 1 ? 's' : ''} enrolled. <button type="button" id="erase">Erase face data…</button>` : 'No face enrolled.'}</p>
        <div id="face"></div>
        <h3>Resident app</h3>
        <p>${p.app_access ? `Signed in on ${p.app_access} phone${p.app_access > 1 ? 's' : ''}.` : 'Not signed in yet.'}</p>
        ${p.kind === 'resident' ? '<button type="button" id="invite">Invitation link…</button><div id="link"></div>' : ''}
        <h3>Groups</h3><p>${esc(p.groups.join(', ') || 'none')}</p>
      </section></div>`;
    wire(p);
  }
  function wire(p) {
    view.querySelectorAll('button.end').forEach((b) => {
      b.onclick = async () => {
        const lease = b.closest('tr').dataset.lease;
        const reason = prompt('Why does this lease end now? (recorded in the audit trail; its cards, face, car and visitors stop opening its doors)');
        if (!reason) return;
        try { await api(`/v1/leases/${lease}/end`, { method: 'POST', body: { reason } }); toast('Lease ended'); render(); } catch (err) { toast(err.message, 'error'); }
      };
    });
    view.querySelectorAll('button.revoke').forEach((b) => {
      b.onclick = async () => {
        const cred = b.closest('tr').dataset.cred;
        const reason = prompt('Why revoke it? (lost, returned…)');
        if (!reason) return;
        try { await api(`/v1/credentials/${cred}?reason=${encodeURIComponent(reason)}`, { method: 'DELETE' }); toast('Revoked'); render(); } catch (err) { toast(err.message, 'error'); }
      };
    });
    view.querySelector('#lease').addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = Object.fromEntries(new FormData(e.target));
      try { await api(`${path}/leases`, { method: 'POST', body: { unit: f.unit, starts: iso(f.starts), ends: iso(f.ends) } }); toast('Lease added'); render(); } catch (err) { toast(err.message, 'error'); }
    });
    view.querySelector('#cred').addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = Object.fromEntries(new FormData(e.target));
      try {
        const r = await api(`${path}/credentials`, { method: 'POST', body: { kind: f.kind, value: f.value } });
        await render();
        if (r.qr) {
          view.querySelector('#issued').innerHTML = `<p>The QR code, shown this once:</p><img class="qr" alt="QR code" src="${qrImage(r.qr)}"><p class="muted mono">${esc(r.qr)}</p>`;
        }
        toast(`${f.kind} issued`);
      } catch (err) { toast(err.message, 'error'); }
    });
    const erase = view.querySelector('#erase');
    if (erase) {
      erase.onclick = async () => {
        const reason = prompt('Why erase this face? (the person\'s request, moving out…)');
        if (!reason) return;
        try { await api(`${path}/biometrics?reason=${encodeURIComponent(reason)}`, { method: 'DELETE' }); toast('Face data erased'); render(); } catch (err) { toast(err.message, 'error'); }
      };
    }
    if (stopCam) stopCam();
    stopCam = faceEnrolment(view.querySelector('#face'), {
      person: p.id, enrolPath: `${path}/faces`, onDone: render,
      consentText: `${p.name} agreed, in person, to their face opening the doors they may use (signed form)`,
    });
    const invite = view.querySelector('#invite');
    if (invite) {
      invite.onclick = async () => {
        try {
          const r = await api(`${path}/app-invitation`, { method: 'POST' });
          const url = location.origin + r.link;
          view.querySelector('#link').innerHTML = `<p>Give ${esc(p.name)} this link or let them scan it (one use, until ${esc(new Date(r.expires).toLocaleString())}):</p>
            <img class="qr" alt="invitation QR code" src="${qrImage(url, 4)}"><p class="mono"><a href="${esc(url)}">${esc(url)}</a></p>`;
        } catch (err) { toast(err.message, 'error'); }
      };
    }
  }
  await render();
  return () => { if (stopCam) stopCam(); };
}
