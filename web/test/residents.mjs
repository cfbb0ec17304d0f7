// Drives issue 19's console flows in Chromium as the roles that use them, for cmd/vigil's
// TestResidentsInChromium: property staff register a resident with a lease, a card and a car,
// enrol the face from a photo (the checks shown before it is taken), find them by plate, see the
// lease in the calendar, import residents from CSV (a dry run naming the bad line, then the
// import with its progress), give a door a rule, and hand out the app's invitation link; the
// resident opens it on a phone-sized page, invites a visitor (a QR code), revokes the
// invitation, opens the door for someone at the intercom and reports the card lost.
// Prints one JSON line of results; screenshots go to $OUT.
//
//   BASE=… PROPERTY_TOKEN=… PHOTO=face.jpg DOOR=gate-1 OUT=/tmp/shots node residents.mjs
import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';

const { BASE, PROPERTY_TOKEN, PHOTO, DOOR, OUT = '.', CHROMIUM = '/usr/bin/chromium' } = process.env;
mkdirSync(OUT, { recursive: true });
const results = { steps: [] };
const step = (name, data) => results.steps.push({ name, ...data });
const errors = [];
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const watch = (p, who) => {
  p.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
  p.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(`${who}: ${m.text()}`); });
  p.on('dialog', (d) => d.accept(d.type() === 'prompt' ? 'test: moved out' : undefined));
};
const day = (offset) => new Date(Date.now() + offset * 86400e3).toISOString().slice(0, 10);

try {
  // Property staff, at a desk.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  watch(page, 'property');
  await page.goto(BASE + '/');
  await page.fill('#signin input[name=token]', PROPERTY_TOKEN);
  await page.click('#signin button');
  await page.waitForSelector('nav a[href="#/people"]');
  const nav = await page.$$eval('nav a', (as) => as.map((a) => a.textContent));
  await page.click('nav a[href="#/people"]');
  await page.click('#add');
  const f = '#new';
  await page.fill(`${f} input[name=id]`, 'r-wang-fang');
  await page.fill(`${f} input[name=name]`, 'Wang Fang');
  await page.fill(`${f} input[name=unit]`, 'b01-0101');
  await page.fill(`${f} input[name=starts]`, day(-30));
  await page.fill(`${f} input[name=ends]`, day(20));
  await page.fill(`${f} input[name=card]`, 'CARD-WANG-1');
  await page.fill(`${f} input[name=plate]`, '粤A·12345');
  // The unit must exist first: a property office registers units with the import; here one row.
  await page.evaluate(async () => {
    const s = JSON.parse(sessionStorage.getItem('vigil.session'));
    await fetch('/v1/units', { method: 'POST', headers: { Authorization: 'Bearer ' + s.token, 'Content-Type': 'application/json' }, body: '{"id":"b01-0101","name":"1栋 0101室","building":"b01"}' });
  });
  await page.click(`${f} button`);
  await page.waitForSelector('table.leases tbody tr[data-lease]');
  const lease = await page.textContent('table.leases tbody tr');
  const creds = await page.$$eval('table.creds tbody tr', (rs) => rs.map((r) => r.cells[0].textContent + ' ' + r.cells[1].textContent));
  // The face, from a photo: the checks are shown, then it is enrolled with consent.
  await page.setInputFiles('#face input[type=file]', PHOTO);
  await page.waitForSelector('#face .checks[data-ok]', { timeout: 20000 });
  const checks = await page.textContent('#face .checks');
  await page.check('#face input[name=consent]');
  await page.click('#face button.enrol');
  await page.waitForFunction(() => /template/.test(document.querySelector('#erase')?.parentElement?.textContent || ''), null, { timeout: 20000 });
  await page.click('#invite');
  await page.waitForSelector('#link a');
  const invitation = await page.getAttribute('#link a', 'href');
  await page.screenshot({ path: `${OUT}/person.png`, fullPage: true });
  step('register', { nav, lease, creds, checks, invitation });

  // Found by the car's plate; the lease in the calendar.
  await page.goto(BASE + '/#/people');
  await page.fill('#find input[name=plate]', '粤A12345');
  await page.click('#find button');
  await page.waitForFunction(() => document.querySelectorAll('table.people tbody tr').length === 1 && /Wang/.test(document.querySelector('table.people tbody').textContent));
  const byPlate = await page.textContent('table.people tbody');
  await page.click('nav a[href="#/leases"]');
  await page.waitForSelector('.calendar .day');
  const calendar = await page.textContent('.calendar');
  await page.screenshot({ path: `${OUT}/leases.png` });
  step('find', { byPlate: byPlate.trim(), calendarHasWang: calendar.includes('Wang Fang') });

  // Import: a file with a lease that ends before it starts on line 3, then the corrected one.
  const head = 'person_id,name,kind,unit,building,unit_name,lease_starts,lease_ends,card,plate\n';
  const rowsOK = [`r-li-na,Li Na,resident,b02-0303,b02,2栋 0303室,${day(-100)},${day(265)},CARD-LI-1,`, `r-zhao-lei,Zhao Lei,resident,b02-0303,b02,2栋 0303室,${day(-100)},${day(265)},CARD-ZHAO-1,京AF0236`];
  writeFileSync(`${OUT}/bad.csv`, head + rowsOK[0] + '\n' + `r-zhao-lei,Zhao Lei,resident,b02-0303,b02,,${day(10)},${day(-10)},CARD-ZHAO-1,` + '\n');
  writeFileSync(`${OUT}/good.csv`, head + rowsOK.join('\n') + '\n');
  await page.click('nav a[href="#/import"]');
  await page.setInputFiles('#imp input[type=file]', `${OUT}/bad.csv`);
  await page.click('#check');
  await page.waitForSelector('table.problems tbody tr');
  const problems = await page.$$eval('table.problems tbody tr', (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
  const importDisabled = await page.isDisabled('#go');
  await page.setInputFiles('#imp input[type=file]', `${OUT}/good.csv`);
  await page.click('#check');
  await page.waitForFunction(() => /0 problems/.test(document.querySelector('#summary')?.textContent || ''));
  await page.click('#go');
  await page.waitForFunction(() => document.querySelector('#stage')?.textContent === 'imported', null, { timeout: 20000 });
  const imported = await page.textContent('#summary');
  await page.screenshot({ path: `${OUT}/import.png` });
  step('import', { problems, importDisabled, imported });

  // A rule: unit b01-0101 may open the door.
  await page.click('nav a[href="#/rules"]');
  const card = `.door-rules[data-door="${DOOR}"]`;
  await page.waitForSelector(card);
  await page.selectOption(`${card} select[name=who_kind]`, 'unit');
  await page.fill(`${card} input[name=who]`, 'b01-0101');
  await page.click(`${card} form.add button`);
  await page.waitForFunction((c) => /b01-0101/.test(document.querySelector(c).textContent), card);
  const rules = await page.$$eval(`${card} li[data-rule]`, (ls) => ls.map((l) => l.textContent.replace(/\s+/g, ' ').trim()));
  const carParks = await page.$$eval('.chip.carpark', (cs) => cs.map((c) => c.textContent.replace(/\s+/g, ' ').trim()));
  await page.screenshot({ path: `${OUT}/rules.png` });
  step('rules', { rules, carParks });

  // The resident, on a phone: the invitation link signs the phone in.
  const phoneCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const phone = await phoneCtx.newPage();
  watch(phone, 'resident');
  await phone.goto(BASE + '/' + invitation.replace(/^.*#/, '#'));
  await phone.click('#join');
  await phone.waitForSelector('.phone h2');
  const home = { name: await phone.textContent('.phone h2'), doors: await phone.$$eval('.phone .doors button', (bs) => bs.map((b) => b.dataset.door)), nav: await phone.$$eval('nav a', (as) => as.map((a) => a.textContent)) };
  await phone.screenshot({ path: `${OUT}/home.png`, fullPage: true });
  // A visitor with a car, for the next four hours.
  await phone.fill('#invite input[name=name]', 'Li Lei');
  await phone.fill('#invite input[name=plate]', '粤C54321');
  await phone.click('#invite button');
  await phone.waitForSelector('#pass img.qr');
  const qrLoaded = await phone.$eval('#pass img.qr', (i) => i.complete && i.naturalWidth > 0);
  await phone.waitForSelector('#visitors li.active');
  const visit = await phone.textContent('#visitors li.active');
  await phone.screenshot({ path: `${OUT}/invite.png`, fullPage: true });
  await phone.click('#visitors li.active button.revoke');
  await phone.waitForSelector('#visitors li.revoked');
  // Open the door for someone at the intercom; report the card lost.
  await phone.click(`.phone .doors button[data-door="${DOOR}"]`);
  await phone.waitForFunction(() => /opened/.test(document.getElementById('toast').textContent));
  const opened = await phone.textContent('#toast');
  const before = await phone.$$eval('.creds li[data-cred]', (ls) => ls.length);
  await phone.click('.creds li[data-cred] button.lost');
  await phone.waitForFunction((n) => document.querySelectorAll('.creds li[data-cred]').length === n - 1, before);
  await phone.screenshot({ path: `${OUT}/home-after.png`, fullPage: true });
  step('resident', { home, qrLoaded, visit: visit.replace(/\s+/g, ' ').trim(), opened, credsBefore: before });
  // The visitor's link shows the pass without signing in.
  const visitorCtx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const visitor = await visitorCtx.newPage();
  watch(visitor, 'visitor');
  await visitor.goto(BASE + '/#/visit?qr=VGLQR-test');
  const pass = await visitor.$eval('img.qr', (i) => i.complete && i.naturalWidth > 0);
  step('visitor', { pass });
} catch (err) {
  errors.push(String(err.stack || err));
} finally {
  results.errors = errors;
  console.log(JSON.stringify(results));
  await browser.close();
}
