// A WHEP player: one RTCPeerConnection receiving a camera's video from vigil's relay. The offer
// goes out without waiting for ICE gathering (vigil answers with its own candidates and learns
// the browser's from its checks), so the first frame is one round trip plus the handshake away.
import { token } from './api.js';

// signal (an AbortSignal) ends a view still connecting: a page left before its views answered
// leaves none streaming unseen.
export async function play(video, camera, { onFrame, onState, signal } = {}) {
  if (signal?.aborted) throw new Error('closed');
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.ontrack = (e) => {
    video.srcObject = e.streams[0] || new MediaStream([e.track]);
    video.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => onState && onState(pc.connectionState);
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const started = performance.now();
  const r = await fetch(`/v1/live/${encodeURIComponent(camera)}/whep`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + token() },
    body: pc.localDescription.sdp,
  });
  if (r.status !== 201) {
    pc.close();
    let msg = `${r.status}`;
    try { msg = (await r.json()).error || msg; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  const location = r.headers.get('Location');
  const hangUp = () => {
    const bye = location ? fetch(location, { method: 'DELETE', headers: { Authorization: 'Bearer ' + token() } }).catch(() => {}) : Promise.resolve();
    bye.finally(() => pc.close());
  };
  const answer = await r.text();
  if (signal?.aborted) { hangUp(); throw new Error('closed'); }
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  // Count presented frames: the wall shows them, the tests read them.
  let frames = 0;
  let closed = false;
  const tick = (now, meta) => {
    if (closed) return;
    frames++;
    video.dataset.frames = String(frames);
    if (frames === 1) video.dataset.firstFrameMs = String(Math.round(now - started));
    if (onFrame) onFrame(frames, meta);
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
  return {
    close() {
      closed = true;
      video.srcObject = null;
      // Hang up first: closing the connection first would end the session on vigil's side before
      // the DELETE arrives.
      hangUp();
    },
  };
}
