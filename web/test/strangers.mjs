// Drives the console's Strangers page in headless Chromium for cmd/vigil's
// TestStrangersStableAcrossRestart: an investigator lists the strangers (a reason), opens the
// one camsim's man became, sees his appearances with their shots, and promotes him to the watch
// list. Prints one JSON line.
//
//   BASE=http://127.0.0.1:8080 TOKEN=vgl_… STRANGER=S000001 OUT=/tmp/shots node strangers.mjs
import { run } from './session.mjs';

const { STRANGER } = process.env;

await run(async (page, res, { OUT }) => {
  await page.click('nav a[href="#/strangers"]');
  await page.fill('#sq input[name=reason]', 'case 2026-140');
  await page.click('#sq button');
  const row = page.locator(`#slist li.stranger[data-stranger="${STRANGER}"]`);
  await row.waitFor({ timeout: 10000 });
  res.row = (await row.textContent()).replace(/\s+/g, ' ').trim();
  res.listShot = await row.locator('img').evaluate((i) => new Promise((ok) => (i.complete ? ok(i.naturalWidth) : (i.onload = () => ok(i.naturalWidth), i.onerror = () => ok(0)))));
  await row.click();
  await page.waitForSelector(`#sdetail[data-stranger="${STRANGER}"] .appearances li`);
  res.appearances = await page.$$eval('#sdetail .appearances li', (ls) => ls.length);
  await page.waitForFunction(() => [...document.querySelectorAll('#sdetail .appearances img')].slice(0, 5).every((i) => i.complete), null, { timeout: 10000 }).catch(() => {});
  res.shots = await page.$$eval('#sdetail .appearances img', (is) => is.filter((i) => i.naturalWidth > 0).length);
  await page.screenshot({ path: `${OUT}/strangers.png` });
  await page.fill('#promote input[name=person]', 'visitor-1');
  await page.fill('#promote input[name=name]', 'Night visitor');
  await page.click('#promote button');
  await page.waitForSelector(`#slist li.stranger[data-stranger="${STRANGER}"] .tag`, { timeout: 5000 });
  res.promoted = (await page.textContent(`#slist li.stranger[data-stranger="${STRANGER}"] .tag`)).trim();
  await page.screenshot({ path: `${OUT}/strangers-promoted.png` });
}, { viewport: { width: 1300, height: 900 } });
