// The property office's other pages: the calendar of leases ending in the next 30 days, the bulk
// import of residents from CSV (a dry run listing every problem by line, then the import with
// its progress) and export, and the doors' access rules, schedules and groups.
import { api, esc, session, token } from './api.js';
import { toast } from './ui.js';
import { carParks } from './doors.js';

const day = (t) => new Date(t).toLocaleDateString();

// leasesPage lists the leases that end in the next 30 days, day by day, and the units by building.
export async function leasesPage(view) {
  view.innerHTML = `
    <section class="toolbar"><label>ending within <select id="days"><option>7</option><option selected>30</option><option>90</option></select> days</label>
      <span id="count" class="muted"></span></section>
    <div id="cal" class="calendar"></div>
    <button type="button" id="more" hidden>More…</button>`;
  let next = '';
  let rows = [];
  async function load(more) {
    const days = view.querySelector('#days').value;
    const q = new URLSearchParams({ ending_within_days: days, limit: '500' });
    if (more && next) q.set('after', next);
    try {
      const r = await api('/v1/leases?' + q);
      next = r.next || '';
      rows = more ? rows.concat(r.leases) : r.leases;
      const byDay = new Map();
      for (const l of rows) {
        const k = day(l.ends);
        if (!byDay.has(k)) byDay.set(k, []);
        byDay.get(k).push(l);
      }
      view.querySelector('#cal').innerHTML = [...byDay].map(([d, ls]) => `
        <div class="day"><h4>${esc(d)} <span class="muted">${ls.length}</span></h4><ul>
        ${ls.map((l) => `<li><a href="#/people/${encodeURIComponent(l.person)}" title="${esc(l.person)}">${esc(l.person_name)}</a> <span class="muted">${esc(l.unit)}</span></li>`).join('')}
        </ul></div>`).join('') || '<p class="muted">No lease ends in that time.</p>';
      view.querySelector('#count').textContent = `${rows.length}${next ? '+' : ''} lease${rows.length === 1 && !next ? '' : 's'}`;
      view.querySelector('#more').hidden = !next;
    } catch (err) { toast(err.message, 'error'); }
  }
  view.querySelector('#days').onchange = () => load(false);
  view.querySelector('#more').onclick = () => load(true);
  view.insertAdjacentHTML('beforeend', `<h3>Units</h3>
    <form id="units" class="toolbar"><input name="building" placeholder="building" size="8"> <input name="q" placeholder="unit" size="10"> <button>List</button></form>
    <table class="events units"><thead><tr><th>unit</th><th>building</th><th>name</th><th>residents now</th></tr></thead><tbody></tbody></table>
    <button type="button" id="moreunits" hidden>More units…</button>`);
  let unitsNext = '';
  async function loadUnits(more) {
    const q = new URLSearchParams({ limit: '100' });
    for (const [k, v] of new FormData(view.querySelector('#units'))) if (v) q.set(k, v);
    if (more && unitsNext) q.set('after', unitsNext);
    try {
      const r = await api('/v1/units?' + q);
      unitsNext = r.next || '';
      const rows = r.units.map((u) => `<tr><td><a href="#/people?unit=${encodeURIComponent(u.id)}">${esc(u.id)}</a></td><td>${esc(u.building)}</td>
        <td>${esc(u.name)}</td><td>${u.residents}</td></tr>`).join('');
      const body = view.querySelector('table.units tbody');
      if (more) body.insertAdjacentHTML('beforeend', rows); else body.innerHTML = rows || '<tr><td colspan="4" class="muted">No units.</td></tr>';
      view.querySelector('#moreunits').hidden = !unitsNext;
    } catch (err) { toast(err.message, 'error'); }
  }
  view.querySelector('#units').addEventListener('submit', (e) => { e.preventDefault(); loadUnits(false); });
  view.querySelector('#moreunits').onclick = () => loadUnits(true);
  await Promise.all([load(false), loadUnits(false)]);
}

// importPage checks a CSV of residents (dry run) and imports it with its progress.
export async function importPage(view) {
  view.innerHTML = `
    <section class="card">
      <h3>Import residents, units and leases</h3>
      <p class="muted">A CSV with a header row: <code>person_id,name,kind,unit,building,unit_name,lease_starts,lease_ends,card,pin,plate</code>
        (one row per person and lease; dates as 2026-01-31). Check it first: every problem is listed with its line. The import is all or nothing,
        and the same file again adds nothing.</p>
      <form id="imp" class="toolbar">
        <input type="file" name="file" accept=".csv,text/csv" required>
        <label>dates in <input name="tz" value="Asia/Shanghai" size="14"></label>
        <button id="check">Check</button>
        <button type="button" id="go" disabled>Import</button>
      </form>
      <progress id="bar" max="1" value="0" hidden></progress> <span id="stage" class="muted"></span>
      <div id="report"></div>
    </section>
    <p><button type="button" id="export">Export everyone (CSV)</button> <span class="muted">no card numbers or PINs</span></p>`;
  const form = view.querySelector('#imp');
  const report = view.querySelector('#report');
  const go = view.querySelector('#go');
  const file = () => form.elements.file.files[0];
  form.elements.file.onchange = () => { go.disabled = true; report.innerHTML = ''; };
  function show(rep, dry) {
    const what = `${rep.people} people, ${rep.units} units, ${rep.leases} leases, ${rep.credentials} cards, PINs and plates`;
    report.innerHTML = `<p class="${rep.problems_total ? 'warn' : 'ok'}" id="summary">${rep.rows} rows · ${rep.problems_total} problem${rep.problems_total === 1 ? '' : 's'} ·
      ${dry ? 'would add' : 'added'} ${what} (${rep.took_ms} ms)</p>
      ${(rep.problems || []).length ? `<table class="events problems"><thead><tr><th>line</th><th>column</th><th>problem</th></tr></thead><tbody>
      ${rep.problems.map((p) => `<tr><td>${p.line}</td><td>${esc(p.column || '')}</td><td>${esc(p.message)}</td></tr>`).join('')}</tbody></table>` : ''}`;
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const rep = await api(`/v1/import/people?dry_run=true&tz=${encodeURIComponent(form.elements.tz.value)}`, { method: 'POST', body: file(), headers: { 'Content-Type': 'text/csv' } });
      show(rep, true);
      go.disabled = rep.problems_total > 0;
    } catch (err) { toast(err.message, 'error'); }
  });
  go.onclick = async () => {
    go.disabled = true;
    const bar = view.querySelector('#bar');
    const stage = view.querySelector('#stage');
    bar.hidden = false;
    try {
      const r = await api(`/v1/import/people?tz=${encodeURIComponent(form.elements.tz.value)}`, { method: 'POST', body: file(), raw: true,
        headers: { 'Content-Type': 'text/csv', Accept: 'application/x-ndjson' } });
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (line.stage) {
            stage.textContent = `${line.stage} ${line.done}${line.total ? ' / ' + line.total : ''}`;
            bar.value = line.total ? line.done / line.total : 0;
          } else if (line.error) {
            throw new Error(line.error);
          } else if (line.report) {
            show(line.report, false);
            stage.textContent = line.report.problems_total ? 'nothing imported' : 'imported';
            bar.value = 1;
          }
        }
      }
    } catch (err) { toast(err.message, 'error'); stage.textContent = err.message; }
  };
  view.querySelector('#export').onclick = async () => {
    const r = await fetch('/v1/export/people', { headers: { Authorization: 'Bearer ' + token() } });
    if (!r.ok) { toast(`export: ${r.status}`, 'error'); return; }
    const a = document.createElement('a');
    a.href = URL.createObjectURL(await r.blob());
    a.download = 'people.csv';
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  };
}

// rulesPage shows every door's rules (add, remove), the schedules and the groups.
export async function rulesPage(view) {
  view.innerHTML = `
    <section id="carparks" class="carparks"></section>
    <div class="split wrap">
      <section class="grow"><h3>Who may open each door</h3><div id="doors"></div></section>
      <section><h3>Schedules</h3><ul id="schedules" class="list"></ul>
        <form id="sched" class="form-grid"><input name="id" placeholder="id (weekdays)" required>
          <textarea name="weekly" rows="3" required>{"mon":[["07:00","19:00"]],"tue":[["07:00","19:00"]]}</textarea><button>Add schedule</button></form>
        <h3>Groups</h3><ul id="groups" class="list"></ul>
        <form id="group" class="inline"><input name="id" placeholder="id (cleaners)" required size="10"> <input name="name" placeholder="name" size="12"> <button>Add group</button></form>
        <form id="member" class="inline"><input name="group" placeholder="group" required size="10"> <input name="person" placeholder="person id" required size="10"> <button>Add member</button></form>
      </section>
    </div>`;
  const admin = session().role === 'admin';
  async function load() {
    try {
      const [{ doors }, { rules }, { schedules }, { groups }] = await Promise.all([api('/v1/doors'), api('/v1/rules?limit=500'), api('/v1/schedules?limit=500'), api('/v1/groups?limit=500')]);
      const opts = ['<option value="">always</option>', ...schedules.map((s) => `<option>${esc(s.id)}</option>`)].join('');
      view.querySelector('#doors').innerHTML = doors.map((d) => `
        <div class="card door-rules" data-door="${esc(d.id)}"><h4>${esc(d.name || d.id)} <span class="muted">${esc(d.id)}${d.camera ? ' · ' + esc(d.camera) : ''}</span></h4>
          <ul>${rules.filter((r) => r.door === d.id).map((r) => `<li data-rule="${r.id}">${esc(r.who_kind)} <b>${esc(r.who)}</b>${r.schedule ? ' · ' + esc(r.schedule) : ''}${r.factors ? ' · ' + esc(r.factors) : ''}
            <button type="button" class="rm">Remove</button></li>`).join('') || '<li class="muted">No one.</li>'}</ul>
          ${admin ? doorSettings(d) : ''}
          <form class="inline add"><select name="who_kind"><option value="unit">unit</option><option value="person">person</option><option value="kind">kind</option><option value="group">group</option></select>
            <input name="who" required size="10" placeholder="b01-0203"> <select name="schedule">${opts}</select>
            <select name="factors"><option value="">one credential</option><option value="card+pin">card + PIN</option></select> <button>Add rule</button></form></div>`).join('') || '<p class="muted">No doors yet.</p>';
      await carParks(view.querySelector('#carparks'));
      view.querySelector('#schedules').innerHTML = schedules.map((s) => `<li data-schedule="${esc(s.id)}" title="${esc(JSON.stringify(s.weekly))}"><b>${esc(s.id)}</b>
        <span class="muted">${esc(s.tz)}</span> <button type="button" class="rm-schedule">Remove</button></li>`).join('') || '<li class="muted">None.</li>';
      view.querySelector('#groups').innerHTML = groups.map((g) => `<li data-group="${esc(g.id)}"><b>${esc(g.name || g.id)}</b> <span class="muted">${esc(g.id)}</span>
        ${g.members.map((m) => `<span class="chip">${esc(m)} <button type="button" class="rm-member" data-person="${esc(m)}" title="take ${esc(m)} out">×</button></span>`).join('')}</li>`).join('') || '<li class="muted">None.</li>';
      const del = async (path, what) => {
        try { await api(path, { method: 'DELETE' }); toast(what); load(); } catch (err) { toast(err.message, 'error'); }
      };
      view.querySelectorAll('button.rm-schedule').forEach((b) => { b.onclick = () => del(`/v1/schedules/${encodeURIComponent(b.closest('li').dataset.schedule)}`, 'Schedule removed'); });
      view.querySelectorAll('button.rm-member').forEach((b) => {
        b.onclick = () => del(`/v1/groups/${encodeURIComponent(b.closest('li').dataset.group)}/members/${encodeURIComponent(b.dataset.person)}`, 'Taken out of the group');
      });
      view.querySelectorAll('form.door-settings').forEach((f) => f.addEventListener('submit', async (e) => {
        e.preventDefault();
        const v = Object.fromEntries(new FormData(f));
        const body = { name: v.name, camera: v.camera, area: v.area, direction: v.direction, camera_opens: v.camera_opens, plate_policy: v.plate_policy,
          fail_mode: v.fail_mode, anti_passback: v.anti_passback === 'on' };
        try { await api(`/v1/doors/${encodeURIComponent(f.closest('.door-rules').dataset.door)}`, { method: 'PUT', body }); toast('Door saved'); load(); } catch (err) { toast(err.message, 'error'); }
      }));
      view.querySelectorAll('.door-rules').forEach((card) => {
        card.querySelectorAll('button.rm').forEach((b) => {
          b.onclick = async () => {
            try { await api(`/v1/rules/${b.closest('li').dataset.rule}`, { method: 'DELETE' }); toast('Rule removed'); load(); } catch (err) { toast(err.message, 'error'); }
          };
        });
        card.querySelector('form.add').addEventListener('submit', async (e) => {
          e.preventDefault();
          try { await api(`/v1/doors/${encodeURIComponent(card.dataset.door)}/rules`, { method: 'POST', body: Object.fromEntries(new FormData(e.target)) }); toast('Rule added'); load(); } catch (err) { toast(err.message, 'error'); }
        });
      });
    } catch (err) { toast(err.message, 'error'); }
  }
  const post = (sel, path, body) => view.querySelector(sel).addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(e.target));
    try { await api(path(f), { method: 'POST', body: body(f) }); toast('Saved'); e.target.reset(); load(); } catch (err) { toast(err.message, 'error'); }
  });
  post('#sched', () => '/v1/schedules', (f) => ({ id: f.id, weekly: JSON.parse(f.weekly) }));
  post('#group', () => '/v1/groups', (f) => ({ id: f.id, name: f.name }));
  post('#member', (f) => `/v1/groups/${encodeURIComponent(f.group)}/members`, (f) => ({ person: f.person }));
  await load();
}

// doorSettings is an admin's form for a door's settings (PUT /v1/doors/{id}).
function doorSettings(d) {
  const opt = (name, values, cur) => `<select name="${name}">${values.map((v) => `<option ${v === cur ? 'selected' : ''}>${v}</option>`).join('')}</select>`;
  return `<details><summary class="muted">settings</summary><form class="door-settings form-grid">
    <label>name <input name="name" value="${esc(d.name)}"></label>
    <label>camera <input name="camera" value="${esc(d.camera)}"></label>
    <label>its camera opens it for ${opt('camera_opens', ['faces', 'plates', 'both'], d.camera_opens || 'faces')}</label>
    <label>plates matched ${opt('plate_policy', ['exact', 'confusable'], d.plate_policy || 'exact')}</label>
    <label>area (anti-passback, car park) <input name="area" value="${esc(d.area)}"></label>
    <label>direction ${opt('direction', ['in', 'out'], d.direction || 'in')}</label>
    <label>when vigil is away ${opt('fail_mode', ['secure', 'safe'], d.fail_mode || 'secure')}</label>
    <label><input type="checkbox" name="anti_passback" ${d.anti_passback ? 'checked' : ''}> anti-passback</label>
    <button>Save</button></form></details>`;
}
