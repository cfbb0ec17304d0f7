// Drives the console's site map in headless Chromium for cmd/vigil's TestSensorAlarmOnMap: an
// operator watches the map; the test publishes a fire alarm over MQTT when this script prints
// READY; the sensor must blink on the map and its linked camera must play live beside the plan
// within 2 s; then, heartbeats stopped, the sensor must be shown offline. Prints one JSON line.
//
//   BASE=http://127.0.0.1:8080 TOKEN=vgl_… SENSOR=fire-b7 CAMERA=cam001 OUT=/tmp/shots node sensors.mjs
import { run } from './session.mjs';

const { SENSOR, CAMERA } = process.env;

await run(async (page, res, { OUT }) => {
  await page.click('nav a[href="#/map"]');
  await page.waitForSelector(`.marker.sensor[data-id="${SENSOR}"]`);
  await page.waitForSelector(`#sensors li[data-sensor="${SENSOR}"]`);
  res.before = await page.getAttribute(`.marker.sensor[data-id="${SENSOR}"]`, 'data-state');
  await page.waitForTimeout(500); // the live event stream is open
  const t0 = Date.now();
  console.log('READY');
  await page.waitForSelector(`.marker.sensor.blink[data-id="${SENSOR}"]`, { timeout: 5000 });
  res.blinkMs = Date.now() - t0;
  await page.waitForFunction((cam) => {
    const v = document.querySelector(`#alarmlive:not([hidden]) video[data-camera="${cam}"]`);
    return v && v.videoWidth > 0 && v.currentTime > 0;
  }, CAMERA, { timeout: 5000, polling: 50 });
  res.liveMs = Date.now() - t0;
  res.title = await page.textContent('#alarmtitle');
  res.state = await page.getAttribute(`.marker.sensor[data-id="${SENSOR}"]`, 'data-state');
  res.row = (await page.textContent(`#sensors li[data-sensor="${SENSOR}"]`)).replace(/\s+/g, ' ').trim();
  await page.screenshot({ path: `${OUT}/sensor-alarm.png` });
  // The operator acknowledges it on the alert feed like any alert.
  await page.click('nav a[href="#/alerts"]');
  await page.waitForSelector('#feed li.alert');
  res.alert = (await page.textContent('#feed li.alert .who')).trim();
  await page.click('#feed li.alert .ack');
  await page.waitForSelector('#feed li.alert .ack:disabled', { timeout: 5000 });
  res.acked = true;
  // Heartbeats stop (the test stops sending them): the map shows the sensor offline.
  await page.click('nav a[href="#/map"]');
  await page.waitForSelector(`.marker.sensor.offline[data-id="${SENSOR}"]`, { timeout: 20000 });
  res.offlineRow = (await page.textContent(`#sensors li[data-sensor="${SENSOR}"]`)).replace(/\s+/g, ' ').trim();
  await page.screenshot({ path: `${OUT}/sensor-offline.png` });
}, { viewport: { width: 1400, height: 900 }, args: ['--disable-background-networking', '--autoplay-policy=no-user-gesture-required'] });
