// Drives the console's privacy-mask editor in headless Chromium for cmd/vigil's
// TestPrivacyMasks: an admin opens Masks, picks the camera, sees its still as recorded with
// the saved region drawn over it, draws a second region by clicking four corners, and saves.
// Prints one JSON line.
//
//   BASE=http://127.0.0.1:8080 TOKEN=vgl_… CAMERA=cam002 OUT=/tmp/shots node masks.mjs
import { run } from './session.mjs';

const { CAMERA } = process.env;

await run(async (page, res, { OUT }) => {
  await page.click('nav a[href="#/masks"]');
  await page.waitForSelector('#maskcam option', { state: 'attached' });
  await page.selectOption('#maskcam', CAMERA);
  await page.waitForFunction((cam) => { const i = document.querySelector('#maskimg'); return i.src.includes(`/cameras/${cam}/`) && i.complete && i.naturalWidth > 0; }, CAMERA, { timeout: 30000 }); // a loaded node may retry the still
  res.stillWidth = await page.$eval('#maskimg', (i) => i.naturalWidth);
  await page.waitForSelector('#maskdraw[data-polygons="1"]', { state: 'attached' });
  res.before = Number(await page.getAttribute('#maskdraw', 'data-polygons'));
  const box = await page.locator('#maskimg').boundingBox();
  res.box = box;
  await page.screenshot({ path: `${OUT}/masks-before.png` });
  for (const [x, y] of [[0.6, 0.1], [0.9, 0.1], [0.9, 0.4], [0.6, 0.4]]) {
    await page.mouse.click(box.x + box.width * x, box.y + box.height * y);
  }
  await page.click('#finish');
  res.drawn = Number(await page.getAttribute('#maskdraw', 'data-polygons'));
  await page.click('#savemasks');
  await page.waitForFunction(() => document.querySelector('#maskstate').textContent.startsWith('saved'), null, { timeout: 5000 });
  res.state = await page.textContent('#maskstate');
  res.saved = await page.evaluate(async (cam) => {
    const s = JSON.parse(sessionStorage.getItem('vigil.session'));
    return (await (await fetch(`/v1/cameras/${cam}/masks`, { headers: { Authorization: 'Bearer ' + s.token } })).json()).polygons;
  }, CAMERA);
  await page.screenshot({ path: `${OUT}/masks.png` });
}, { viewport: { width: 1400, height: 900 } });
