// Drives vigil's console in headless Chromium (Debian's /usr/bin/chromium) for cmd/vigil's
// TestConsoleInChromium: sign in, the camera wall's live views play, the alert feed shows the
// watchlisted person. Prints one JSON line of results; screenshots go to $OUT.
//
//   BASE=http://127.0.0.1:8080 TOKEN=vgl_… WATCH=obama OUT=/tmp/shots node console.mjs
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const { BASE, TOKEN, WATCH, OUT = '.', CHROMIUM = '/usr/bin/chromium' } = process.env;
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
  // The only failed response expected is the wrong token's 401.
  step('console errors', { errors: [...consoleErrors, ...failed.filter((f) => f !== '401 /v1/me')] });
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
