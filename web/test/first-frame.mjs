// Measures, in headless Chromium, the time from a WHEP offer to the first decoded frame
// presented (requestVideoFrameCallback), TRIALS times across CAMERAS cameras, with the console's
// own player (/static/whep.js). Prints one JSON line: milliseconds, -1 for no frame in 5 s, -2 for
// an offer refused because the node is at capacity. Used by bench/live --browser.
//
//   BASE=http://127.0.0.1:18995 TOKEN=any CAMERAS=cam001,cam002 TRIALS=30 node first-frame.mjs
import { chromium } from 'playwright-core';

const { BASE, TOKEN = 'open', CAMERAS = 'cam001', TRIALS = '30', CHROMIUM = '/usr/bin/chromium' } = process.env;
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage();
  await page.goto(BASE + '/');
  const ms = await page.evaluate(async ([token, cameras, trials]) => {
    sessionStorage.setItem('vigil.session', JSON.stringify({ token, name: 'bench', role: 'operator' }));
    const { play } = await import('/static/whep.js');
    const out = [];
    for (let i = 0; i < trials; i++) {
      const video = document.createElement('video');
      video.muted = true;
      video.autoplay = true;
      document.body.append(video);
      let p;
      try {
        p = await play(video, cameras[i % cameras.length]);
      } catch (e) {
        if (!String(e.message).includes('capacity')) throw e;
        out.push(-2); // refused (503): the node is at capacity
        video.remove();
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      const t0 = Date.now();
      while (!video.dataset.firstFrameMs && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
      out.push(video.dataset.firstFrameMs ? Number(video.dataset.firstFrameMs) : -1);
      p.close();
      video.remove();
      await new Promise((r) => setTimeout(r, 200));
    }
    return out;
  }, [TOKEN, CAMERAS.split(','), Number(TRIALS)]);
  console.log(JSON.stringify({ firstFrameMs: ms }));
} finally {
  await browser.close();
}
