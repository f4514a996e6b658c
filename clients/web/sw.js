// Service worker: the app shell (HTML, CSS, JS, icons, manifest) for offline reloads.
// Network first, the cache as the fallback: a new server version reaches the browser on the
// next load (each file is revalidated with the server, cache: 'no-cache'), the cached copy is
// used only when the network fails. /api is never cached (nor anything else outside SHELL's
// folders). SHELL must list every file of the app: a module missing here breaks offline reloads.

const SHELL_CACHE = 'tsunagu-shell-v1';
const SHELL = [
  '/',
  '/index.html',
  '/manifest.webmanifest',
  '/icons/icon.svg',
  '/css/base.css',
  '/css/forms.css',
  '/css/console.css',
  '/app/main.js',
  '/app/core/dom.js',
  '/app/core/i18n.js',
  '/app/core/api.js',
  '/app/core/router.js',
  '/app/core/session.js',
  '/app/core/live.js',
  '/app/core/outbox.js',
  '/app/core/shell.js',
  '/app/core/ui.js',
  '/app/screens/login.js',
  '/app/screens/rooms.js',
  '/app/screens/timeline.js',
  '/app/screens/members.js',
  '/app/screens/forms.js',
  '/app/screens/sheet.js',
  '/app/screens/audit.js',
  '/app/screens/admin.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      // One by one: a missing file must not stop the others.
      await Promise.all(
        SHELL.map(async (path) => {
          try {
            const res = await fetch(path, {cache: 'no-store', credentials: 'same-origin'});
            if (res.ok) await cache.put(path, res);
          } catch {
            // offline at install: cached on the next successful fetch
          }
        }),
      );
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(
        names.filter((n) => n.startsWith('tsunagu-shell') && n !== SHELL_CACHE).map((n) => caches.delete(n)),
      );
      await self.clients.claim();
    })(),
  );
});

function isShell(url) {
  if (url.origin !== self.location.origin) return false;
  if (url.pathname.startsWith('/api/') || url.pathname === '/api') return false;
  const p = url.pathname;
  return (
    p === '/' ||
    p === '/index.html' ||
    p === '/manifest.webmanifest' ||
    p === '/sw.js' ||
    p.startsWith('/app/') ||
    p.startsWith('/css/') ||
    p.startsWith('/icons/')
  );
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (!isShell(url) || url.pathname === '/sw.js') return; // the network as usual
  // One copy per file, whatever the query string; the page itself is '/index.html'.
  const key = url.pathname === '/' ? '/index.html' : url.pathname;
  event.respondWith(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      try {
        // Revalidate with the server even if the HTTP cache holds a copy.
        const res = await fetch(req, {cache: 'no-cache'});
        if (res.ok && res.type === 'basic') {
          await cache.put(key, res.clone());
        }
        return res;
      } catch (err) {
        const cached = (await cache.match(key)) || (key === '/index.html' ? await cache.match('/') : undefined);
        if (cached) return cached;
        throw err;
      }
    })(),
  );
});
