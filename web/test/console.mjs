// Drives vigil's console in headless Chromium (Debian's /usr/bin/chromium) for cmd/vigil's
// TestConsoleInChromium: sign in, the camera wall's live views play, the alert feed shows the
// watchlisted person. Prints one JSON line of results; screenshots go to $OUT.
//
//   BASE=http://127.0.0.1:8080 TOKEN=vgl_… WATCH=obama OUT=/tmp/shots node console.mjs
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const { BASE, TOKEN, PATROL_TOKEN, INVESTIGATOR_TOKEN, ADMIN_TOKEN, PLAN, DOOR, PHOTO, PLATE, WATCH, OUT = '.', CHROMIUM = '/usr/bin/chromium' } = process.env;
mkdirSync(OUT, { recursive: true });
const results = { steps: [] };
const step = (name, data) => results.steps.push({ name, ...data });

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const consoleErrors = [];
  const failed = []; // responses ≥ 400 (the browser logs them as console errors without the URL)
  page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url().replace(BASE, '')}`); });
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  // Sign-in: a wrong token is refused with a message, the right one opens the wall.
  await page.goto(BASE + '/');
  await page.fill('input[name=token]', 'vgl_not_a_token');
  await page.click('button[type=submit]');
  await page.waitForSelector('#signin-error:not(:empty)');
  step('bad token', { message: await page.textContent('#signin-error') });
  await page.fill('input[name=token]', TOKEN);
  const signedIn = Date.now();
  await page.click('button[type=submit]');
  await page.waitForSelector('.tile video');

  // The wall: every tile's video presents frames (requestVideoFrameCallback).
  const t0 = Date.now();
  await page.waitForFunction(() => {
    const v = [...document.querySelectorAll('.tile video')];
    return v.length > 0 && v.every((x) => Number(x.dataset.frames || 0) > 0);
  }, null, { timeout: 10000 });
  const tiles = await page.$$eval('.tile video', (vs) => vs.map((v) => ({
    camera: v.closest('.tile').dataset.camera,
    firstFrameMs: Number(v.dataset.firstFrameMs),
    width: v.videoWidth, height: v.videoHeight,
  })));
  await page.waitForTimeout(1000);
  const frames = await page.$$eval('.tile video', (vs) => vs.map((v) => Number(v.dataset.frames)));
  step('wall', { tiles, framesAfter1s: frames, allPlayingMs: Date.now() - t0, sinceSignInMs: Date.now() - signedIn,
    who: await page.textContent('#who') });
  await page.screenshot({ path: `${OUT}/wall.png` });

  // Alerts: the watchlisted person appears in the feed.
  await page.click('nav a[href="#/alerts"]');
  await page.waitForSelector(`.feed li.alert[data-person="${WATCH}"]`, { timeout: 45000 });
  await page.waitForFunction((w) => {
    const img = document.querySelector(`.feed li.alert[data-person="${w}"] img`);
    return img && img.complete && img.naturalWidth > 0;
  }, WATCH, { timeout: 5000 }).catch(() => {});
  const alert = await page.$eval(`.feed li.alert[data-person="${WATCH}"]`, (li) => ({
    who: li.querySelector('.who').textContent, camera: li.dataset.camera,
    snapshotLoaded: !!li.querySelector('img') && li.querySelector('img').complete && li.querySelector('img').naturalWidth > 0,
  }));
  step('alert', alert);
  await page.screenshot({ path: `${OUT}/alerts.png` });

  // Dispatch: a patrol officer signed in on a second page (a phone) reports a position; the
  // operator dispatches the alert to the nearest officer on duty; the officer's page gets it,
  // opens its live view with one tap, acknowledges and goes on scene; the operator sees each
  // answer on the alert.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  phone.on('pageerror', (e) => consoleErrors.push('patrol page: ' + String(e)));
  await phone.goto(BASE + '/');
  await phone.fill('input[name=token]', PATROL_TOKEN);
  await phone.click('button[type=submit]');
  await phone.waitForSelector('#plan');
  await phone.waitForSelector('#pstate:text("live")');
  const box = await phone.locator('#plan').boundingBox();
  await phone.mouse.click(box.x + box.width * 0.2, box.y + box.height * 0.3);
  await phone.waitForSelector('#posstate:text("reported")');
  const alertRow = page.locator(`.feed li.alert[data-person="${WATCH}"]`).first();
  const sent = Date.now();
  await alertRow.locator('button.dispatch').click();
  await page.waitForSelector('dialog[open]');
  await page.screenshot({ path: `${OUT}/dispatch-dialog.png` });
  await page.click('dialog button.nearest');
  const disp = phone.locator('#mine li').first();
  await disp.waitFor({ timeout: 5000 });
  const received = Date.now() - sent;
  await disp.locator('button.watch').click();
  await phone.waitForFunction(() => Number(document.querySelector('#mine li video')?.dataset.frames || 0) > 0, null, { timeout: 5000 });
  await disp.locator('button.acknowledged').click();
  await page.waitForSelector(`.feed li.alert[data-person="${WATCH}"] .chip[data-status="acknowledged"]`, { timeout: 5000 });
  await disp.locator('button.on_scene').click();
  await page.waitForSelector(`.feed li.alert[data-person="${WATCH}"] .chip[data-status="on_scene"]`, { timeout: 5000 });
  step('dispatch', {
    receivedMs: received,
    officerChip: await page.textContent(`.feed li.alert[data-person="${WATCH}"] .chip`),
    patrolSummary: await disp.locator('.who').textContent(),
    patrolStatus: await disp.getAttribute('data-status'),
    liveFrames: Number(await phone.$eval('#mine li video', (v) => v.dataset.frames)),
  });
  await phone.screenshot({ path: `${OUT}/patrol.png` });
  await page.screenshot({ path: `${OUT}/alerts-dispatched.png` });
  // Charts: events per hour, recognitions, camera uptime.
  await page.click('nav a[href="#/charts"]');
  await page.waitForSelector('svg.chart');
  await page.waitForSelector('table.uptime tr');
  const charts = await page.evaluate(() => ({
    hourBars: Number(document.querySelector('svg.chart').dataset.bars),
    lists: [...document.querySelectorAll('#lists tr')].map((tr) => tr.textContent.replace(/\s+/g, ' ').trim()),
    uptime: [...document.querySelectorAll('table.uptime tr')].map((tr) => ({ camera: tr.dataset.camera, width: tr.querySelector('.bar').style.width })),
  }));
  await page.screenshot({ path: `${OUT}/charts.png` });
  step('charts', charts);
  await page.click('nav a[href="#/alerts"]');
  await page.waitForSelector(`.feed li.alert[data-person="${WATCH}"]`, { timeout: 45000 });
  await page.locator(`.feed li.alert[data-person="${WATCH}"]`).first().locator('button.ack').click();
  await page.waitForSelector(`.feed li.alert.acked[data-person="${WATCH}"]`, { timeout: 5000 });

  // Search, as an investigator: a face by uploading a photo of the watchlisted person (another
  // photo than the one enrolled), then a plate by a fragment.
  const inv = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  inv.on('pageerror', (e) => consoleErrors.push('investigator page: ' + String(e)));
  await inv.goto(BASE + '/');
  await inv.fill('input[name=token]', INVESTIGATOR_TOKEN);
  await inv.click('button[type=submit]');
  await inv.click('nav a[href="#/search"]');
  await inv.click('.tabs button[data-tab="faces"]');
  await inv.setInputFiles('#q input[type=file]', PHOTO);
  await inv.fill('#q input[name=reason]', 'case 2026-118');
  await inv.click('#q button');
  await inv.waitForFunction(() => !document.querySelector('#results').textContent.includes('searching'), null, { timeout: 10000 });
  const faceResult = await inv.textContent('#results');
  const faceHits = await inv.$$eval('#results .hit', (hs) => hs.map((h) => ({ event: h.dataset.event, text: h.textContent.replace(/\s+/g, ' ').trim() })));
  await inv.screenshot({ path: `${OUT}/search-faces.png` });
  await inv.click('.tabs button[data-tab="plates"]');
  await inv.fill('#q input[name=q]', PLATE);
  await inv.fill('#q input[name=reason]', 'case 2026-118');
  await inv.click('#q button');
  await inv.waitForFunction(() => !document.querySelector('#results').textContent.includes('searching'), null, { timeout: 10000 });
  const plates = await inv.$$eval('#results h3', (hs) => hs.map((h) => h.textContent));
  await inv.screenshot({ path: `${OUT}/search-plates.png` });
  step('search', { faceHits, plates, faceResult });

  // The site map, as an admin: upload the plan, drag the door from the unplaced list onto it;
  // the watchlisted person's alerts blink at their camera; their path is drawn from the timeline.
  const adm = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  adm.on('pageerror', (e) => consoleErrors.push('admin page: ' + String(e)));
  await adm.goto(BASE + '/');
  await adm.fill('input[name=token]', ADMIN_TOKEN);
  await adm.click('button[type=submit]');
  await adm.click('nav a[href="#/map"]');
  await adm.waitForSelector('.marker.camera');
  await adm.setInputFiles('#planfile', PLAN);
  await adm.waitForFunction(() => { const i = document.querySelector('#plan'); return i && !i.hidden && i.complete && i.naturalWidth > 0; }, null, { timeout: 5000 });
  const chip = adm.locator(`#unplaced li[data-id="${DOOR}"]`);
  await chip.waitFor();
  // The upload re-renders the list twice (the page's own reload, then the map's live update):
  // measure the chip once it has settled.
  await adm.waitForTimeout(300);
  const stage = await adm.locator('#stage').boundingBox();
  let cb = null;
  for (let i = 0; i < 50 && !cb; i++) {
    cb = await chip.boundingBox();
    if (!cb) await adm.waitForTimeout(100);
  }
  await adm.mouse.move(cb.x + 5, cb.y + 5);
  await adm.mouse.down();
  await adm.mouse.move(stage.x + stage.width * 0.5, stage.y + stage.height * 0.4, { steps: 5 });
  await adm.mouse.up();
  await adm.waitForFunction((d) => !document.querySelector(`#unplaced li[data-id="${d}"]`), DOOR, { timeout: 5000 });
  const placedDoor = await adm.evaluate(async (d) => {
    const s = JSON.parse(sessionStorage.getItem('vigil.session'));
    const m = await (await fetch('/v1/map', { headers: { Authorization: 'Bearer ' + s.token } })).json();
    return m.items.find((it) => it.kind === 'door' && it.id === d) || null;
  }, DOOR);
  await adm.waitForSelector('.marker.camera.blink', { timeout: 45000 });
  const blinking = await adm.$eval('.marker.camera.blink', (m) => ({ camera: m.dataset.id, alert: m.dataset.alert }));
  await adm.fill('#path input[name=person]', WATCH);
  await adm.fill('#path input[name=reason]', 'case 2026-118');
  await adm.click('#path button');
  await adm.waitForFunction(() => Number(document.querySelector('#trail')?.dataset.points || 0) > 0, null, { timeout: 10000 });
  const pathPoints = Number(await adm.getAttribute('#trail', 'data-points'));
  await adm.screenshot({ path: `${OUT}/map.png` });
  step('map', { placedDoor, blinking, pathPoints, mapState: await adm.textContent('#mapstate') });

  // The audit review, as an admin: who looked for the watchlisted person, when and why.
  await adm.click('nav a[href="#/audit"]');
  await adm.fill('#q input[name=subject]', WATCH);
  await adm.click('#q button');
  await adm.waitForFunction(() => document.querySelectorAll('table.audit tbody tr').length > 0, null, { timeout: 10000 });
  const auditRows = await adm.$$eval('table.audit tbody tr', (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.replace(/\s+/g, ' ').trim())));
  const auditNamed = await adm.$$eval('table.audit td.detail span[title]', (ss) => ss.map((s) => [s.textContent, s.title]));
  await adm.screenshot({ path: `${OUT}/audit.png` });
  step('audit', { auditRows, auditNamed });

  const failedBeforeRoles = failed.length;
  // Roles, as the pages' code sees them: a patrol officer cannot search faces or export, an
  // operator cannot edit rules.
  const status = (p, path, init) => p.evaluate(async ([path, init]) => {
    const s = JSON.parse(sessionStorage.getItem('vigil.session'));
    const r = await fetch(path, { ...init, headers: { ...(init.headers || {}), Authorization: 'Bearer ' + s.token } });
    return r.status;
  }, [path, init]);
  step('roles', {
    patrolFaceSearch: await status(phone, '/v1/search/faces', { method: 'POST', body: 'x', headers: { 'Content-Type': 'text/plain' } }),
    patrolExport: await status(phone, '/v1/exports', { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } }),
    operatorRule: await status(page, '/v1/doors/gate-1/rules', { method: 'POST', body: '{"who_kind":"unit","who":"x"}', headers: { 'Content-Type': 'application/json' } }),
    patrolNav: await phone.$$eval('nav a', (as) => as.map((a) => a.textContent)),
  });
  // The only failed response expected is the wrong token's 401.
  step('console errors', { errors: [...consoleErrors, ...failed.slice(0, failedBeforeRoles).filter((f) => f !== '401 /v1/me')] });
  // Leave the pages as a user would, so that each closes its live views (a browser that simply
  // dies leaves its sessions to time out).
  for (const p of [page, phone, inv, adm]) await p.evaluate(() => { location.hash = '#/search'; });
  await page.waitForTimeout(500);
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
