// Face enrolment in the browser: a photo from a file or the device's camera, checked as the person
// is framed (POST /v1/faces/check about once a second: one face, size, pose, quality, liveness,
// no match with someone else), then enrolled with the consent it was given under. Staff enrol a
// person; a resident enrols themselves.
import { api, esc } from './api.js';
import { toast } from './ui.js';

// faceEnrolment renders into el and returns a clean-up that stops the camera. person is the id
// staff enrol for (null: the resident's own face); enrolPath is where the photo goes.
export function faceEnrolment(el, { person = null, enrolPath, consentText, onDone }) {
  el.innerHTML = `
    <div class="facecam">
      <video playsinline muted hidden></video>
      <p class="checks muted">Choose a photo, or use the camera and look straight at it.</p>
      <label class="consent"><input type="checkbox" name="consent"> ${esc(consentText)}</label>
      <div class="actions">
        <label class="button">Photo… <input type="file" accept="image/jpeg,image/png" hidden></label>
        <button type="button" class="camera">Use the camera</button>
        <button type="button" class="enrol" disabled>Enrol this face</button>
      </div>
    </div>`;
  const video = el.querySelector('video');
  const checks = el.querySelector('.checks');
  const enrolBtn = el.querySelector('.enrol');
  let stream = null;
  let timer = null;
  let photo = null; // the last checked photo (a Blob) that passed
  let busy = false;

  async function check(blob) {
    const form = new FormData();
    form.append('image', blob, 'face.jpg');
    if (person) form.append('person', person);
    const r = await api('/v1/faces/check', { method: 'POST', body: form });
    const q = r.quality != null ? ` · quality ${(100 * r.quality).toFixed(0)}% · liveness ${(100 * r.liveness).toFixed(0)}%` : '';
    checks.textContent = (r.ok ? '✓ Good: this face can be enrolled' : `✗ ${r.problem || 'not usable'}`) + q + (r.duplicate_of ? ` (${r.duplicate_of})` : '');
    checks.className = 'checks ' + (r.ok ? 'ok' : 'warn');
    checks.dataset.ok = r.ok ? '1' : '0';
    photo = r.ok ? blob : null;
    enrolBtn.disabled = !photo;
    return r;
  }

  async function frame() {
    if (busy || !stream || video.readyState < 2) return;
    busy = true;
    try {
      const c = document.createElement('canvas');
      c.width = video.videoWidth;
      c.height = video.videoHeight;
      c.getContext('2d').drawImage(video, 0, 0);
      const blob = await new Promise((res) => c.toBlob(res, 'image/jpeg', 0.9));
      if (blob) await check(blob);
    } catch (err) {
      checks.textContent = err.message;
    } finally { busy = false; }
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.hidden = true;
  }

  el.querySelector('input[type=file]').onchange = async (ev) => {
    const f = ev.target.files[0];
    if (!f) return;
    stop();
    try { await check(f); } catch (err) { toast(err.message, 'error'); }
  };
  el.querySelector('.camera').onclick = async () => {
    if (stream) { stop(); return; }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user', width: 1280, height: 720 } });
    } catch (err) {
      toast(`No camera: ${err.message}`, 'error');
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    await video.play().catch(() => {});
    timer = setInterval(frame, 1000);
  };
  enrolBtn.onclick = async () => {
    const consent = el.querySelector('input[name=consent]');
    if (!consent.checked) { toast('Tick the consent first.', 'error'); return; }
    const form = new FormData();
    form.append('image', photo, 'face.jpg');
    form.append('consent', `${consentText} (accepted in the console ${new Date().toISOString()})`);
    try {
      const r = await api(enrolPath, { method: 'POST', body: form });
      toast(`Face enrolled (quality ${(100 * r.quality).toFixed(0)}%)`);
      stop();
      onDone?.();
    } catch (err) { toast(err.message, 'error'); }
  };
  return stop;
}
