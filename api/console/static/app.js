// vigil console: sign-in, then the pages a role may use. Hash routes (#/wall, #/alerts…) so a
// page can be bookmarked and reloaded.
import { api, session, signIn, signOut } from './api.js';
import { wallPage } from './wall.js';
import { alertsPage } from './alerts.js';
import { patrolPage } from './patrol.js';
import { doorsPage } from './doors.js';
import { searchPage } from './search.js';
import { mapPage } from './map.js';
import { chartsPage } from './charts.js';
import { auditPage } from './audit.js';
import { trackPage } from './track.js';
import { reviewPage } from './review.js';
import { healthPage } from './health.js';
import { masksPage } from './masks.js';
import { strangersPage } from './strangers.js';
import { peoplePage } from './people.js';
import { leasesPage, importPage, rulesPage } from './staff.js';
import { homePage, joinPage, visitPage } from './home.js';

// Pages and the roles that see them (the API enforces the same roles on every call).
const pages = [
  { id: 'patrol', title: 'Dispatches', roles: ['patrol'], render: patrolPage },
  { id: 'wall', title: 'Cameras', roles: ['admin', 'investigator', 'operator', 'patrol'], render: wallPage },
  { id: 'alerts', title: 'Alerts', roles: ['admin', 'investigator', 'operator', 'patrol'], render: alertsPage },
  { id: 'map', title: 'Map', roles: ['admin', 'investigator', 'operator', 'patrol'], render: mapPage },
  { id: 'search', title: 'Search', roles: ['admin', 'investigator', 'operator', 'patrol'], render: searchPage },
  { id: 'health', title: 'Health', roles: ['admin', 'investigator', 'operator'], render: healthPage },
  { id: 'review', title: 'Review', roles: ['admin', 'investigator', 'operator'], render: reviewPage },
  { id: 'strangers', title: 'Strangers', roles: ['admin', 'investigator', 'operator'], render: strangersPage },
  { id: 'track', title: 'Track', roles: ['admin', 'investigator', 'operator'], render: trackPage },
  { id: 'doors', title: 'Doors', roles: ['admin', 'operator'], render: doorsPage },
  { id: 'charts', title: 'Charts', roles: ['admin', 'investigator', 'operator'], render: chartsPage },
  { id: 'masks', title: 'Masks', roles: ['admin'], render: masksPage },
  { id: 'audit', title: 'Audit', roles: ['admin', 'auditor'], render: auditPage },
  { id: 'people', title: 'People', roles: ['admin', 'property'], render: peoplePage },
  { id: 'leases', title: 'Leases', roles: ['admin', 'property'], render: leasesPage },
  { id: 'rules', title: 'Access rules', roles: ['admin', 'property'], render: rulesPage },
  { id: 'import', title: 'Import', roles: ['admin', 'property'], render: importPage },
  { id: 'home', title: 'Home', roles: ['resident'], render: homePage },
];

let leave = null; // the current page's clean-up (closes live views, event streams)
let visit = 0; // bumped by every route: a page still loading when it is left is cleaned up then

function signInPage(view, error) {
  document.getElementById('bar').hidden = true;
  view.innerHTML = `
    <form id="signin" class="card signin">
      <h1>vigil</h1>
      <p>Sign in with your access token (<code>vigil token create --role operator --name …</code>).</p>
      <label>Access token <input name="token" type="password" autocomplete="current-password" required></label>
      <button type="submit">Sign in</button>
      <p class="error" id="signin-error"></p>
    </form>`;
  if (error) view.querySelector('#signin-error').textContent = error;
  view.querySelector('#signin').addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = new FormData(e.target).get('token').trim();
    try {
      await signIn(token);
      location.hash = '';
      route();
    } catch (err) {
      view.querySelector('#signin-error').textContent = err.message;
    }
  });
}

async function route() {
  const mine = ++visit;
  if (leave) { leave(); leave = null; }
  const main = document.getElementById('view');
  main.replaceChildren();
  // Each visit renders into a container of its own: a page left while it was still loading goes
  // on with its own (detached) elements, never the next page's.
  const view = document.createElement('div');
  main.append(view);
  // Pages without sign-in: a resident's one-time invitation link, a visitor's pass.
  if (location.hash.startsWith('#/join')) { document.getElementById('bar').hidden = true; joinPage(view, route); return; }
  if (location.hash.startsWith('#/visit')) { document.getElementById('bar').hidden = true; visitPage(view); return; }
  const me = session();
  if (!me) { signInPage(view); return; }
  const allowed = pages.filter((p) => p.roles.includes(me.role));
  const id = (location.hash.match(/^#\/(\w+)/) || [])[1] || allowed[0]?.id;
  const page = allowed.find((p) => p.id === id) || allowed[0];
  const bar = document.getElementById('bar');
  bar.hidden = false;
  document.getElementById('who').textContent = `${me.name} (${me.role})`;
  document.getElementById('nav').innerHTML = allowed
    .map((p) => `<a href="#/${p.id}" class="${p === page ? 'active' : ''}">${p.title}</a>`).join('');
  if (!page) { view.textContent = 'This role has no console pages.'; return; }
  document.title = `vigil · ${page.title}`;
  const cleanup = await page.render(view, me) || null;
  if (mine !== visit) { if (cleanup) cleanup(); return; } // left while loading
  leave = cleanup;
}

document.getElementById('signout').addEventListener('click', () => { signOut(); route(); });
window.addEventListener('hashchange', route);
// No form of the console is ever submitted to an address by the browser: a page handles its
// forms in script, and one clicked before its page attached the handler (while it loads) would
// otherwise reload the console with the form's fields, a token or a reason, in the address and
// the history. A dialog's own form (method="dialog") only closes it, and still does.
document.addEventListener('submit', (e) => { if (e.target.method !== 'dialog') e.preventDefault(); });
window.addEventListener('vigil:unauthorized', () => { signOut(); signInPage(document.getElementById('view'), 'Your session ended: sign in again.'); });
// Resume a stored session if its token still works.
(async () => {
  if (session()) {
    try { await api('/v1/me'); } catch { signOut(); }
  }
  route();
})();
