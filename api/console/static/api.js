// The API from the browser: the bearer token kept in this tab's storage, JSON in and out, and
// errors carrying the API's message.
const KEY = 'vigil.session';

export function session() {
  try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
}

export function token() { return session()?.token || ''; }

export async function signIn(tok) {
  const r = await fetch('/v1/me', { headers: { Authorization: 'Bearer ' + tok } });
  if (r.status === 401) throw new Error('That token is not valid (revoked, expired or mistyped).');
  if (!r.ok) throw new Error(`Sign-in failed: ${r.status}`);
  const me = await r.json();
  sessionStorage.setItem(KEY, JSON.stringify({ token: tok, name: me.name, role: me.role }));
  return me;
}

export function signOut() { sessionStorage.removeItem(KEY); }

export class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// api calls path with the session's token; body objects are sent as JSON, FormData as is.
export async function api(path, { method = 'GET', body, headers = {}, raw = false } = {}) {
  const h = { Authorization: 'Bearer ' + token(), ...headers };
  let b = body;
  if (body && !(body instanceof FormData) && !(body instanceof Blob) && typeof body !== 'string') {
    h['Content-Type'] = 'application/json';
    b = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers: h, body: b });
  if (r.status === 401) {
    window.dispatchEvent(new Event('vigil:unauthorized'));
    throw new APIError(401, 'signed out');
  }
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { msg = (await r.json()).error || msg; } catch { /* not JSON */ }
    throw new APIError(r.status, msg);
  }
  if (raw) return r;
  const ct = r.headers.get('Content-Type') || '';
  return ct.includes('json') ? r.json() : r.text();
}

// withToken adds the token to a URL for the things that cannot send headers (EventSource, <img>,
// <video>); the API accepts it on GETs only.
export function withToken(url) {
  return url + (url.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(token());
}

export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
