// Drives the console in headless Chromium for cmd/vigil's TestVerdictStopsWrongMatch: an
// operator finds the watch-list alert on the feed, opens Verdict…, marks the match wrong with a
// note, and sees the verdict on the row; the person's Track page lists the verdict and what it
// changed. Prints one JSON line.
//
//   BASE=http://127.0.0.1:8080 TOKEN=vgl_… PERSON=suspect-x OUT=/tmp/shots node verdict.mjs
import { run } from './session.mjs';

const { PERSON } = process.env;

await run(async (page, res, { BASE, OUT }) => {
  await page.click('nav a[href="#/alerts"]');
  const row = page.locator(`#feed li.alert[data-person="${PERSON}"]`).first();
  await row.waitFor({ timeout: 30000 });
  res.event = await row.getAttribute('data-event');
  await row.locator('button.verdict').click();
  await page.waitForSelector('dialog.verdictdlg[open]');
  await page.check('dialog.verdictdlg input[value=wrong]');
  await page.fill('dialog.verdictdlg input[name=note]', 'not him: Mr Lin from block 4');
  await page.screenshot({ path: `${OUT}/verdict-dialog.png` });
  await page.click('dialog.verdictdlg button.save');
  await page.waitForSelector(`#feed li[data-event="${res.event}"] .verdictchip`, { timeout: 5000 });
  res.chip = (await page.textContent(`#feed li[data-event="${res.event}"] .verdictchip`)).trim();
  res.effect = await page.getAttribute(`#feed li[data-event="${res.event}"] .verdictchip`, 'title');
  await page.screenshot({ path: `${OUT}/verdict-alerts.png` });
  await page.goto(`${BASE}/#/track?person=${PERSON}`);
  await page.waitForSelector('#tverdicts:not([hidden]) li.verdict', { timeout: 5000 });
  res.track = (await page.textContent('#tverdicts li.verdict')).replace(/\s+/g, ' ').trim();
  await page.screenshot({ path: `${OUT}/verdict-track.png` });
}, { viewport: { width: 1300, height: 900 } });
