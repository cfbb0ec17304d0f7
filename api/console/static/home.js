// The resident's phone page: their home, doors to open for a visitor at the intercom, visitors
// to invite (a QR code and link to share, usable only in its window, every use shown,
// revocable), credentials to report lost, their face (enrol with consent, delete), and their
// recent entries. Also the two pages that need no sign-in: the one-time invitation link that
// signs a resident's phone in (#/join?code=…), and the visitor's QR code (#/visit?qr=…).
import { api, esc, signIn } from './api.js';
import { toast } from './ui.js';
import { faceEnrolment } from './facecam.js';
import { leaseState, qrImage } from './people.js';

const when = (t) => new Date(t).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
const localInput = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);

export async function homePage(view) {
  let stopCam = null;
  async function render() {
    let home;
    try { home = await api('/v1/me/home'); } catch (err) { view.innerHTML = `<p class="error">${esc(err.message)}</p>`; return; }
    const p = home.person;
    const now = new Date();
    view.innerHTML = `
      <div class="phone">
        <h2>${esc(p.name)}</h2>
        <p class="muted">${p.leases.map((l) => `${esc(l.unit)} (${esc(leaseState(l))}, until ${esc(new Date(l.ends).toLocaleDateString())})`).join(' · ') || 'no lease'}</p>
        <section><h3>Open a door</h3><div class="doors">${home.doors.map((d) => `<button type="button" class="open" data-door="${esc(d.id)}">${esc(d.name || d.id)}</button>`).join('') || '<span class="muted">No door.</span>'}</div></section>
        <section><h3>Invite a visitor</h3>
          <form id="invite" class="form-grid">
            <label>name <input name="name" required maxlength="100" placeholder="visitor's name"></label>
            <label>from <input name="from" type="datetime-local" required value="${localInput(now)}"></label>
            <label>until <input name="until" type="datetime-local" required value="${localInput(new Date(now.getTime() + 4 * 3600e3))}"></label>
            <label>car plate <input name="plate" placeholder="optional: 粤B12345"></label>
            <fieldset class="doorpick"><legend>doors</legend>${home.doors.map((d) => `<label><input type="checkbox" name="doors" value="${esc(d.id)}" checked> ${esc(d.name || d.id)}</label>`).join('')}</fieldset>
            <button>Invite</button>
          </form>
          <div id="pass"></div>
          <ul id="visitors" class="visits"></ul></section>
        <section><h3>My cards and codes</h3><ul class="creds">${p.credentials.filter((c) => !c.revoked_at).map((c) => `<li data-cred="${c.id}">${esc(c.kind)} ${esc(c.plate || '')}
          <button type="button" class="lost">${c.kind === 'plate' ? 'Remove' : 'Report lost'}</button></li>`).join('') || '<li class="muted">None.</li>'}</ul></section>
        <section><h3>My face</h3>
          <p>${p.faces ? 'Your face opens your doors. <button type="button" id="forget">Delete my face data</button>' : 'No face enrolled: enrol it to open your doors hands-free.'}</p>
          <div id="face"></div></section>
        <section><h3>Recent entries</h3><ul class="entries">${home.entries.map((e) => `<li class="${e.grant ? 'ok' : 'warn'}">${esc(when(e.time))} · ${esc((e.detail && e.detail.door) || '')} · ${esc(e.outcome)}</li>`).join('') || '<li class="muted">None in 30 days.</li>'}</ul></section>
      </div>`;
    wire();
    await loadVisitors();
  }
  async function loadVisitors() {
    const { visitors } = await api('/v1/me/visitors?limit=20');
    const now = Date.now();
    view.querySelector('#visitors').innerHTML = visitors.map((v) => {
      const state = v.revoked_at ? 'revoked' : new Date(v.until) <= now ? 'ended' : new Date(v.from) > now ? 'upcoming' : 'active';
      return `<li data-visit="${esc(v.id)}" class="${state}"><b>${esc(v.name)}</b> ${esc(when(v.from))} – ${esc(when(v.until))}${v.plate ? ' · ' + esc(v.plate) : ''}
        <span class="tag">${state}</span> <span class="muted">${v.uses.length} use${v.uses.length === 1 ? '' : 's'}</span>
        ${state === 'active' || state === 'upcoming' ? '<button type="button" class="revoke">Revoke</button>' : ''}
        ${v.uses.length ? `<ul class="uses">${v.uses.map((u) => `<li>${esc(when(u.time))} · ${esc((u.detail && u.detail.door) || '')} · ${esc(u.outcome)}</li>`).join('')}</ul>` : ''}</li>`;
    }).join('') || '<li class="muted">No invitations yet.</li>';
    view.querySelectorAll('#visitors button.revoke').forEach((b) => {
      b.onclick = async () => {
        try { await api(`/v1/me/visitors/${encodeURIComponent(b.closest('li').dataset.visit)}`, { method: 'DELETE' }); toast('Invitation revoked'); loadVisitors(); } catch (err) { toast(err.message, 'error'); }
      };
    });
  }
  function wire() {
    view.querySelectorAll('button.open').forEach((b) => {
      b.onclick = async () => {
        if (!confirm(`Open ${b.textContent} now?`)) return;
        try { await api(`/v1/me/doors/${encodeURIComponent(b.dataset.door)}/open`, { method: 'POST', body: { reason: 'visitor at the intercom' } }); toast(`${b.textContent} opened`); } catch (err) { toast(err.message, 'error'); }
      };
    });
    view.querySelector('#invite').addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      const body = { name: f.get('name'), from: new Date(f.get('from')).toISOString(), until: new Date(f.get('until')).toISOString(), doors: f.getAll('doors') };
      if (f.get('plate')) body.plate = f.get('plate');
      try {
        const r = await api('/v1/me/visitors', { method: 'POST', body });
        const link = location.origin + r.link;
        view.querySelector('#pass').innerHTML = `<div class="card pass"><p>${esc(r.name)} · ${esc(when(r.from))} – ${esc(when(r.until))}</p>
          <img class="qr" alt="visitor's QR code" src="${qrImage(r.qr)}">
          <p><button type="button" id="share">Share the link</button> <span class="mono small">${esc(link)}</span></p></div>`;
        view.querySelector('#share').onclick = async () => {
          if (navigator.share) { try { await navigator.share({ title: 'Your pass', url: link }); return; } catch { /* cancelled */ } }
          try { await navigator.clipboard.writeText(link); toast('Link copied'); } catch { toast('Copy the link below'); }
        };
        e.target.reset();
        loadVisitors();
      } catch (err) { toast(err.message, 'error'); }
    });
    view.querySelectorAll('button.lost').forEach((b) => {
      b.onclick = async () => {
        if (!confirm('Stop it opening doors and gates now? (a lost card, a sold car)')) return;
        try { await api(`/v1/me/credentials/${b.closest('li').dataset.cred}/lost`, { method: 'POST' }); toast('Revoked: ask the property office for a new one'); render(); } catch (err) { toast(err.message, 'error'); }
      };
    });
    const forget = view.querySelector('#forget');
    if (forget) {
      forget.onclick = async () => {
        if (!confirm('Delete your face data? Your face will no longer open doors.')) return;
        try { await api('/v1/me/face', { method: 'DELETE' }); toast('Your face data is deleted'); render(); } catch (err) { toast(err.message, 'error'); }
      };
    }
    if (stopCam) stopCam();
    stopCam = faceEnrolment(view.querySelector('#face'), {
      enrolPath: '/v1/me/face', onDone: render,
      consentText: 'I agree that my face is used to open the doors I may use; I can delete it here at any time',
    });
  }
  await render();
  return () => { if (stopCam) stopCam(); };
}

// joinPage spends a one-time invitation link: this phone is then signed in as the resident.
export function joinPage(view, onJoined) {
  const code = new URLSearchParams(location.hash.split('?')[1] || '').get('code') || '';
  view.innerHTML = `<div class="card signin"><h1>vigil</h1>
    <p>Your property office invited you to the residents' app: open your doors, invite visitors, manage your face and cards.</p>
    <button type="button" id="join">Sign this phone in</button><p class="error" id="join-error"></p></div>`;
  view.querySelector('#join').onclick = async () => {
    try {
      const r = await fetch('/v1/join', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }) });
      const out = await r.json();
      if (!r.ok) throw new Error(out.error || `${r.status}`);
      await signIn(out.token);
      location.hash = '#/home';
      onJoined();
    } catch (err) { view.querySelector('#join-error').textContent = err.message; }
  };
}

// visitPage shows a visitor's QR code to hold up at the door's reader.
export function visitPage(view) {
  const qr = new URLSearchParams(location.hash.split('?')[1] || '').get('qr') || '';
  view.innerHTML = `<div class="card signin pass"><h1>Your pass</h1>
    ${qr ? `<img class="qr big" alt="QR code" src="${qrImage(qr, 8)}"><p class="muted">Hold it up to the door's reader. It works only in the time you were invited for.</p>` : '<p class="error">This link has no pass in it.</p>'}</div>`;
}
