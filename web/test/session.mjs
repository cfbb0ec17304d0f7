// The browser scripts' common start: headless Chromium, one page signed in with a token, the
// page's uncaught errors collected, and one JSON line of results printed at the end.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

// run signs in at BASE with TOKEN, calls steps(page, res), and prints res (with the page's errors)
// as one JSON line; the browser is closed whatever happens.
export async function run(steps, { viewport = { width: 1300, height: 900 }, args = [] } = {}) {
  const { BASE, TOKEN, OUT = '.', CHROMIUM = '/usr/bin/chromium' } = process.env;
  mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', ...args] });
  const res = {};
  try {
    const page = await browser.newPage({ viewport });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(BASE + '/');
    await page.fill('input[name=token]', TOKEN);
    await page.click('button[type=submit]');
    await steps(page, res, { BASE, OUT });
    res.errors = errors;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(res));
}
