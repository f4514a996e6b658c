// Hash routing: '#/rooms/abc?tab=1'.
//
//   route('/rooms/:roomId/forms/:formId', async (view, params, query) => { ... });
//   navigate('/rooms/' + id);       // changes the hash and renders
//   h('a', {href: href('/inbox')}, t('nav.inbox'))
//   onLeave(() => live.unwatch(id)) // cleanup when the user navigates away from this render
//
// `view` is a fresh, empty element inside <main> for each render: a late answer of a screen the
// user has already left lands in a detached element and never on screen. A handler that throws
// gets an error banner (unless the error has `shown` set, e.g. by roomShell).

import { h, mount } from './dom.js';
import { t } from './i18n.js';

const routes = [];
let mainEl = null;
let guard = null; // (path, route|null) => boolean: false blocks rendering (main.js: not logged in, locked …); route.public tells public routes
let blocked = null; // (path, query) => void: called instead when the guard blocks
let errorRenderer = null; // (view, err) => void
let leaveFns = [];
let renderCounter = 0;
let currentRoute = {path: '/', params: {}, query: {}, pattern: null};
let started = false;

function compile(pattern) {
  const names = [];
  const source = pattern
    .split('/')
    .map((part) => {
      if (part.startsWith(':')) {
        names.push(part.slice(1));
        return '([^/]+)';
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return {regex: new RegExp(`^${source}/?$`), names};
}

/** Registers a route. options: {public: true} renders even when the guard blocks (e.g. /join). */
export function route(pattern, handler, options = {}) {
  const {regex, names} = compile(pattern);
  routes.push({pattern, regex, names, handler, public: Boolean(options.public)});
}

export function href(path) {
  return `#${path}`;
}

export function parseHash(hash = location.hash) {
  const raw = hash.startsWith('#') ? hash.slice(1) : hash;
  const [pathPart, queryPart = ''] = raw.split('?');
  const path = pathPart || '/';
  const query = {};
  for (const [k, v] of new URLSearchParams(queryPart)) query[k] = v;
  return {path, query};
}

export function match(path) {
  for (const r of routes) {
    const m = r.regex.exec(path);
    if (m) {
      const params = {};
      r.names.forEach((name, i) => {
        params[name] = decodeURIComponent(m[i + 1]);
      });
      return {route: r, params};
    }
  }
  return null;
}

export function navigate(path, {replace = false} = {}) {
  const target = href(path);
  if (location.hash === target) {
    render();
    return;
  }
  if (replace) {
    history.replaceState(null, '', target);
    render();
  } else {
    location.hash = target; // hashchange renders
  }
}

/** The route on screen: {path, params, query, pattern}. */
export function current() {
  return currentRoute;
}

/** Registers a cleanup for the render on screen, run when the user navigates away. */
export function onLeave(fn) {
  leaveFns.push(fn);
}

function runLeave() {
  const fns = leaveFns;
  leaveFns = [];
  for (const fn of fns) {
    try {
      fn();
    } catch (err) {
      console.error(err);
    }
  }
}

/** Removes the view from the screen (idle lock, logout): runs the cleanups. */
export function unmountView() {
  runLeave();
  renderCounter += 1;
  if (mainEl) mount(mainEl);
}

export function configure(options) {
  if ('main' in options) mainEl = options.main;
  if ('guard' in options) guard = options.guard;
  if ('blocked' in options) blocked = options.blocked;
  if ('error' in options) errorRenderer = options.error;
}

export function start() {
  if (!started) {
    started = true;
    window.addEventListener('hashchange', () => render());
  }
  render();
}

/** Renders the current hash again (after login, unlock or a language change). */
export function reload() {
  render();
}

/** A new element for a screen that main.js or login.js draws outside the routes. */
export function freshView() {
  runLeave();
  renderCounter += 1;
  const view = h('div', {class: 'view'});
  if (mainEl) mount(mainEl, view);
  return view;
}

async function render() {
  if (!mainEl) return;
  const {path, query} = parseHash();
  const found = match(path);
  if (guard && !guard(path, found ? found.route : null)) {
    runLeave();
    renderCounter += 1;
    if (blocked) blocked(path, query);
    return;
  }
  runLeave();
  renderCounter += 1;
  const token = renderCounter;
  const view = h('div', {class: 'view'});
  // The link that was followed went with the old view: focus <main> (tabindex=-1) so that the
  // keyboard and screen readers carry on from the new screen rather than from the top.
  const focusLost = !document.activeElement || document.activeElement === document.body || mainEl.contains(document.activeElement);
  mount(mainEl, view);
  window.scrollTo(0, 0);
  if (focusLost && document.activeElement !== mainEl) mainEl.focus({preventScroll: true});
  if (!found) {
    currentRoute = {path, params: {}, query, pattern: null};
    mount(
      view,
      h(
        'div',
        {class: 'card stack'},
        h('h1', null, t('error.not_found_page')),
        h('p', null, h('a', {class: 'btn', href: href('/')}, t('error.to_home'))),
      ),
    );
    return;
  }
  currentRoute = {path, params: found.params, query, pattern: found.route.pattern};
  try {
    await found.route.handler(view, found.params, query);
  } catch (err) {
    if (token !== renderCounter) return;
    console.error(err);
    if (err && err.shown) return;
    if (errorRenderer) errorRenderer(view, err);
  }
}
