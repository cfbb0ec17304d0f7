// Doors: every door with its controller's state, a door's recent decisions and unlocks (from
// the audit chain, refreshed every 5 s), and, for admins, a remote unlock with a reason.
import { api, esc, session } from './api.js';
import { toast } from './ui.js';

export async function doorsPage(view) {
  const admin = session().role === 'admin';
  view.innerHTML = `
    <section class="carparks" id="carparks"></section>
    <section class="split">
      <div><h2>Doors</h2><ul id="doors" class="list"></ul></div>
      <div id="door" class="grow"><p class="muted">Pick a door.</p></div>
    </section>`;
  const current = decodeURIComponent(location.hash.split('/')[2] || '');
  let timer = null;

  async function loadDoors() {
    const { doors } = await api('/v1/doors');
    view.querySelector('#doors').innerHTML = doors.map((d) => `
      <li data-door="${esc(d.id)}" class="${d.id === current ? 'active' : ''}">
        <a href="#/doors/${encodeURIComponent(d.id)}">${esc(d.name || d.id)}</a>
        <span class="state ${d.online ? 'ok' : 'warn'}">${d.online ? 'online' : 'offline'}</span>
        <span class="muted">${esc(d.camera || '')}</span>
      </li>`).join('') || '<li class="muted">No doors yet (vigil doors add).</li>';
    return doors;
  }

  async function showDoor(doors) {
    const d = doors.find((x) => x.id === current);
    const pane = view.querySelector('#door');
    if (!d) return;
    if (!pane.dataset.door || pane.dataset.door !== d.id) {
      pane.dataset.door = d.id;
      pane.innerHTML = `
        <h2>${esc(d.name || d.id)} <span class="state"></span></h2>
        <p class="muted">camera ${esc(d.camera || 'none')} · fail-${esc(d.fail_mode || 'secure')} · pulse ${d.pulse_ms || 0} ms${d.anti_passback ? ' · anti-passback ' + esc(d.area) : ''}</p>
        ${d.face ? `<p class="muted face-policy">face: ${esc(facePolicyText(d.face.face_policy_effective))}${d.face.face_policy ? '' : ' (auto)'} · ${d.face.face_gallery} people may use it · a stranger matches one of them ${(100 * d.face.face_fpir).toFixed(3)}% of the time</p>` : ''}
        ${admin ? '<button type="button" id="unlock">Remote unlock…</button>' : ''}
        <table class="events"><thead><tr><th>time</th><th>who</th><th>what</th><th>outcome</th></tr></thead><tbody></tbody></table>`;
      if (admin) {
        pane.querySelector('#unlock').onclick = async () => {
          const reason = prompt(`Why open ${d.id}? (recorded in the audit trail)`);
          if (!reason) return;
          try {
            await api(`/v1/doors/${encodeURIComponent(d.id)}/unlock`, { method: 'POST', body: { reason } });
            toast(`Unlock sent to ${d.id}`);
            refresh();
          } catch (err) { toast(err.message, 'error'); }
        };
      }
    }
    const st = pane.querySelector('h2 .state');
    st.textContent = d.online ? 'online' : 'offline';
    st.className = 'state ' + (d.online ? 'ok' : 'warn');
    const { events } = await api(`/v1/doors/${encodeURIComponent(d.id)}/recent?limit=50`);
    pane.querySelector('tbody').innerHTML = events.map((e) => `
      <tr class="${e.grant ? 'grant' : 'deny'}">
        <td>${esc(new Date(e.time).toLocaleTimeString())}</td>
        <td title="${esc(e.person || '')}">${esc(e.person_name || e.person || e.actor)}</td>
        <td>${esc(e.action.replace('door.', ''))}${e.reason && e.action === 'door.unlock.remote' ? ': ' + esc(e.reason) : ''}</td>
        <td>${esc(e.outcome || (e.grant ? 'granted' : ''))}</td>
      </tr>`).join('') || '<tr><td colspan="4" class="muted">Nothing in the last 7 days.</td></tr>';
  }

  async function refresh() {
    try {
      await carParks(view.querySelector('#carparks'));
      const doors = await loadDoors();
      if (current) await showDoor(doors);
    } catch (err) { toast(err.message, 'error'); }
  }
  await refresh(); // (the router re-renders the page when the hash names another door)
  timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}

// facePolicyText says what a door's face policy lets a face do.
function facePolicyText(p) {
  return {
    face: 'a face alone opens',
    'face+credential': 'a face needs the same person\'s card, PIN or QR code',
    'credential+face': 'a card, PIN or QR code, confirmed by the face',
  }[p] || p;
}

// carParks shows each car park's cars, visitors' cars and those past their window (from the
// gates' plate decisions); nothing when the site has no gate with a plate camera.
export async function carParks(el) {
  const { car_parks: parks } = await api('/v1/parking');
  el.innerHTML = parks.map((p) => `<span class="chip carpark" data-area="${esc(p.area)}"><b>${esc(p.area)}</b>: ${p.cars} car${p.cars === 1 ? '' : 's'}
    (${p.visitors} visitor${p.visitors === 1 ? '' : 's'}${p.overstaying ? `, <span class="warn">${p.overstaying} past their window</span>` : ''})</span>`).join(' ');
}
