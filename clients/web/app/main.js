// Boot: session, router, navigation, idle lock, language switch, service worker.

import { h, mount } from './core/dom.js';
import { t, addStrings, lang, setLang, onLangChange } from './core/i18n.js';
import { api, csrfToken, onAuthLost, onPendingStep, onNetwork } from './core/api.js';
import { route, navigate, configure, start, reload, freshView, unmountView, parseHash, current } from './core/router.js';
import * as session from './core/session.js';
import { renderFrame, setHeaderState, setNetworkState, addNav, showError, clearErrors, field, addFieldError, loading } from './core/shell.js';
import { live } from './core/live.js';
import { startOutbox, stopOutbox, flush } from './core/outbox.js';
import * as login from './screens/login.js';
import * as rooms from './screens/rooms.js';
import * as timeline from './screens/timeline.js';
import * as forms from './screens/forms.js';
import * as sheet from './screens/sheet.js';
import * as members from './screens/members.js';
import * as audit from './screens/audit.js';
import * as admin from './screens/admin.js';

addStrings({
  ja: {
    'boot.offline_title': 'サーバーに接続できません',
    'boot.offline_text': '通信が回復すると自動的に再接続します。',
    'session.expired_notice': 'セッションが終了しました。もう一度ログインしてください。',
    'lock.title': '画面をロックしました',
    'lock.text': '{name} さん、一定時間操作がなかったため画面をロックしました。続けるにはパスワードを入力してください。',
    'lock.password': 'パスワード',
    'lock.totp': '確認コード（6桁）',
    'lock.submit': 'ロックを解除',
    'lock.logout': 'ログアウトして別の人がログインする',
    'lock.required': 'パスワードを入力してください。',
    'lock.wait': 'あと {seconds} 秒お待ちください。',
    'home.emergency_title': '緊急時情報シート',
    'home.emergency_text': '救急隊のアカウントでは、同意のある患者の緊急時情報シートだけを閲覧できます。ケアチームから伝えられた患者ルームのIDを入力してください。',
    'home.emergency_room': '患者ルームID',
    'home.emergency_open': 'シートを開く',
    'home.emergency_invalid': 'IDの形式が正しくありません（例: 0193a1b0-…）。',
    'home.none_title': 'この役割で使える画面はありません',
    'home.none_text': '管理者にお問い合わせください。',
    'title.login': 'ログイン',
    'title.setup': '初回の設定',
    'title.join': '招待コードで参加',
    'title.form': '書式',
  },
  en: {
    'boot.offline_title': 'Cannot reach the server',
    'boot.offline_text': 'The app reconnects by itself when the network is back.',
    'session.expired_notice': 'Your session has ended. Please log in again.',
    'lock.title': 'Screen locked',
    'lock.text': '{name}, the screen was locked after a period without use. Enter your password to continue.',
    'lock.password': 'Password',
    'lock.totp': 'Verification code (6 digits)',
    'lock.submit': 'Unlock',
    'lock.logout': 'Log out (someone else will log in)',
    'lock.required': 'Enter your password.',
    'lock.wait': 'Please wait {seconds} more seconds.',
    'home.emergency_title': 'Emergency information sheet',
    'home.emergency_text': 'An emergency-service account reads only the emergency sheets of patients who consented. Enter the room ID the care team gave you.',
    'home.emergency_room': 'Patient room ID',
    'home.emergency_open': 'Open the sheet',
    'home.emergency_invalid': 'This is not a room ID (e.g. 0193a1b0-…).',
    'home.none_title': 'No screens for this role',
    'home.none_text': 'Please contact your administrator.',
    'title.login': 'Log in',
    'title.setup': 'First-time setup',
    'title.join': 'Join with an invitation code',
    'title.form': 'Form',
  },
});

// 'booting' | 'anon' | 'pending' | 'ready' | 'locked' | 'offline'
let state = 'booting';
let mainEl = null;
let apiReachable = true;

// ---------------------------------------------------------------------------------------------
// Idle lock

const IDLE_SECONDS = (() => {
  const q = new URLSearchParams(location.search).get('idle');
  const n = Number(q);
  return q && Number.isFinite(n) && n > 0 ? n : 10 * 60;
})();
let lastActivity = Date.now();
let idleTimer = null;

function markActivity() {
  lastActivity = Date.now();
}

for (const type of ['pointerdown', 'pointermove', 'keydown', 'touchstart', 'wheel', 'input']) {
  window.addEventListener(type, markActivity, {capture: true, passive: true});
}

function startIdle() {
  markActivity();
  clearInterval(idleTimer);
  idleTimer = setInterval(() => {
    if (state === 'ready' && Date.now() - lastActivity >= IDLE_SECONDS * 1000) lock();
  }, 1000);
}

function stopIdle() {
  clearInterval(idleTimer);
  idleTimer = null;
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state === 'ready' && Date.now() - lastActivity >= IDLE_SECONDS * 1000) {
    lock();
  }
});

function lock() {
  if (state !== 'ready') return;
  state = 'locked';
  // Nothing clinical stays on screen or in memory of the view.
  unmountView();
  live.stop();
  setHeaderState('locked');
  renderLock(freshView());
}

function renderLock(view) {
  const me = session.me();
  const user = me?.user || {};
  const showTotp = Boolean(me?.totp_required || user.totp_enabled);
  const password = h('input', {class: 'input', type: 'password', autocomplete: 'current-password', 'data-test': 'lock-password'});
  const pwField = field({label: t('lock.password'), input: password, path: 'password', required: true});
  const totp = h('input', {class: 'input', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '8', 'data-test': 'lock-totp'});
  const totpField = field({label: t('lock.totp'), input: totp, path: 'totp_code', required: true});
  totpField.hidden = !showTotp;
  const wait = h('p', {class: 'muted', role: 'status', 'aria-live': 'polite'});
  const submit = h('button', {class: 'btn btn-primary btn-block', type: 'submit', 'data-test': 'lock-submit'}, t('lock.submit'));
  let waitTimer = null;
  const box = h(
    'section',
    {class: 'card auth-card stack lock-screen', 'data-test': 'lock-screen'},
    h('h1', null, t('lock.title')),
    h('p', null, t('lock.text', {name: user.display_name || user.username || ''})),
    h(
      'form',
      {
        class: 'stack',
        novalidate: true,
        on: {
          submit: async (ev) => {
            ev.preventDefault();
            clearErrors(box);
            if (!password.value) {
              addFieldError(pwField, 'password', t('lock.required'));
              password.focus();
              return;
            }
            const body = {username: user.username, password: password.value};
            if (!totpField.hidden && totp.value.trim()) body.totp_code = totp.value.replace(/\s+/g, '');
            submit.disabled = true;
            try {
              await api('POST', '/api/web/login', body, {quiet: true, noRefresh: true});
              clearInterval(waitTimer);
              await session.loadMe();
              state = 'unlocking';
              afterAuth();
            } catch (err) {
              submit.disabled = false;
              if (err.code === 'totp_required') {
                totpField.hidden = false;
                totp.focus();
                if (!body.totp_code) return;
              }
              showError(box, err);
              password.value = '';
              totp.value = '';
              password.focus();
              if (err.code === 'account_locked' && err.retry_after_seconds) {
                let left = Math.ceil(err.retry_after_seconds);
                submit.disabled = true;
                wait.textContent = t('lock.wait', {seconds: left});
                clearInterval(waitTimer);
                waitTimer = setInterval(() => {
                  left -= 1;
                  if (left <= 0 || !box.isConnected) {
                    clearInterval(waitTimer);
                    submit.disabled = false;
                    wait.textContent = '';
                  } else {
                    wait.textContent = t('lock.wait', {seconds: left});
                  }
                }, 1000);
              }
            }
          },
        },
      },
      pwField,
      totpField,
      wait,
      submit,
    ),
    h('button', {class: 'btn btn-block', type: 'button', 'data-test': 'lock-logout', on: {click: () => doLogout()}}, t('lock.logout')),
  );
  mount(view, h('div', {class: 'auth-wrap'}, box));
  password.focus();
}

// ---------------------------------------------------------------------------------------------
// Session states

function applyLook() {
  // On <html> too: the family look sets the root size, which every rem follows.
  document.documentElement.classList.toggle('look-family', session.isFamily());
  document.body.classList.toggle('look-family', session.isFamily());
}

function toAnon(notice) {
  state = 'anon';
  session.setMe(null);
  live.stop();
  stopOutbox();
  stopIdle();
  applyLook();
  setHeaderState('anon');
  const {path} = parseHash();
  if (path === '/join') {
    reload();
    return;
  }
  login.renderLogin(freshView(), {onSuccess: onLoggedIn, notice});
}

async function onLoggedIn() {
  await session.loadMe();
  afterAuth();
}

function afterAuth() {
  applyLook();
  if (session.pending().length) {
    state = 'pending';
    setHeaderState('pending');
    login.runPending(freshView(), async () => enterReady());
    return;
  }
  enterReady();
}

function enterReady() {
  state = 'ready';
  applyLook();
  setHeaderState('ready');
  live.start();
  startOutbox(session.userId());
  startIdle();
  const {path} = parseHash();
  if (path === '/login' || path === '/join') navigate('/', {replace: true});
  else reload();
}

async function checkSession() {
  // The three session cookies come and go together and only the CSRF one is readable: without
  // it there is no session to ask about (and no 401 in the console at every fresh start).
  if (!csrfToken()) {
    toAnon();
    return;
  }
  mount(freshView(), loading());
  try {
    await session.loadMe();
  } catch (err) {
    if (err.status === 401) {
      toAnon();
      return;
    }
    state = 'offline';
    const view = freshView();
    if (err.code === 'network') {
      mount(
        view,
        h(
          'div',
          {class: 'auth-wrap'},
          h(
            'section',
            {class: 'card auth-card stack'},
            h('h1', null, t('boot.offline_title')),
            h('p', null, t('boot.offline_text')),
            h('button', {class: 'btn btn-primary', type: 'button', on: {click: () => checkSession()}}, t('common.retry')),
          ),
        ),
      );
    } else {
      showError(view, err);
      view.appendChild(h('button', {class: 'btn btn-primary', type: 'button', on: {click: () => checkSession()}}, t('common.retry')));
    }
    return;
  }
  afterAuth();
}

async function doLogout() {
  const was = state;
  state = 'anon';
  stopIdle();
  live.stop();
  stopOutbox();
  unmountView();
  timeline.clearDrafts();
  mount(freshView(), loading());
  if (was !== 'anon') await session.logout();
  else await session.clearLocalData();
  history.replaceState(null, '', location.pathname + location.search);
  toAnon();
}

// ---------------------------------------------------------------------------------------------
// Routes owned by main.js

function renderEmergencyHome(view) {
  const input = h('input', {class: 'input', type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-test': 'emergency-room'});
  const f = field({label: t('home.emergency_room'), input, path: 'room_id', required: true});
  const box = h(
    'section',
    {class: 'card stack narrow'},
    h('h1', null, t('home.emergency_title')),
    h('p', null, t('home.emergency_text')),
    h(
      'form',
      {
        class: 'stack',
        novalidate: true,
        on: {
          submit: (ev) => {
            ev.preventDefault();
            clearErrors(box);
            const id = input.value.trim().toLowerCase();
            if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) {
              addFieldError(f, 'room_id', t('home.emergency_invalid'));
              input.focus();
              return;
            }
            navigate(`/rooms/${id}/sheet`);
          },
        },
      },
      f,
      h('button', {class: 'btn btn-primary', type: 'submit'}, t('home.emergency_open')),
    ),
  );
  mount(view, box);
}

function registerOwnRoutes() {
  route('/', async (view) => {
    if (session.isOfficer()) navigate('/audit', {replace: true});
    else if (session.isOrgAdmin() || session.isSystemAdmin()) navigate('/admin', {replace: true});
    else if (session.isProfessional() || session.isFamily()) navigate('/rooms', {replace: true});
    else if (session.isEmergencyService()) renderEmergencyHome(view);
    else mount(view, h('section', {class: 'card stack narrow'}, h('h1', null, t('home.none_title')), h('p', null, t('home.none_text'))));
  });
  route('/login', async () => navigate('/', {replace: true}));
}

// ---------------------------------------------------------------------------------------------
// The document title: the screen's name (never a patient's: titles end up in the browser's
// history), so that screen readers announce where one is and tabs can be told apart.

const ROUTE_TITLES = [
  ['/rooms', () => (session.isFamily() ? 'nav.rooms_family' : 'nav.rooms')],
  ['/rooms/:roomId', () => (session.isFamily() ? 'room.tab_family.timeline' : 'room.tab.timeline')],
  ['/rooms/:roomId/members', () => (session.isFamily() ? 'room.tab_family.members' : 'room.tab.members')],
  ['/rooms/:roomId/forms', () => 'room.tab.forms'],
  ['/rooms/:roomId/forms/new', () => 'room.tab.forms'],
  ['/rooms/:roomId/sheet', () => 'room.tab.sheet'],
  ['/inbox', () => (session.isFamily() ? 'nav.inbox_family' : 'nav.inbox')],
  ['/forms/:formId', () => 'title.form'],
  ['/forms/:formId/answer', () => 'title.form'],
  ['/forms/:formId/correct', () => 'title.form'],
  ['/audit', () => 'nav.audit'],
  ['/admin', () => 'nav.admin'],
  ['/admin/organisations/:orgId', () => 'nav.admin'],
  ['/admin/users/:userId', () => 'nav.admin'],
  ['/join', () => 'title.join'],
];

function updateTitle() {
  let key = null;
  if (state === 'locked') key = 'lock.title';
  else if (state === 'pending') key = 'title.setup';
  else if (state === 'anon') key = parseHash().path === '/join' ? 'title.join' : 'title.login';
  else if (state === 'ready') {
    const found = ROUTE_TITLES.find(([pattern]) => pattern === current().pattern);
    key = found ? found[1]() : null;
  }
  document.title = key ? `${t(key)} – ${t('app.name')}` : `${t('app.name')} ${t('app.name_sub')}`;
}

// ---------------------------------------------------------------------------------------------
// Boot

function updateNetwork() {
  setNetworkState(navigator.onLine && apiReachable);
}

function boot() {
  document.documentElement.lang = lang();
  const root = document.getElementById('app');
  const frame = renderFrame(root, {
    onLogout: () => doLogout(),
    onLang: () => setLang(lang() === 'ja' ? 'en' : 'ja'),
  });
  mainEl = frame.main;
  // Every screen change replaces the children of <main>: the title follows.
  new MutationObserver(() => updateTitle()).observe(mainEl, {childList: true});
  configure({
    main: mainEl,
    guard: (path, r) => state === 'ready' || (state === 'anon' && Boolean(r && r.public)),
    blocked: () => {
      if (state === 'anon') login.renderLogin(freshView(), {onSuccess: onLoggedIn});
      else if (state === 'pending') login.runPending(freshView(), async () => enterReady());
      // booting, locked, offline: the screen stays as it is.
    },
    error: (view, err) => showError(view, err),
  });

  addNav({key: 'nav.rooms', familyKey: 'nav.rooms_family', path: '/rooms', test: 'nav-rooms', when: () => session.isProfessional() || session.isFamily()});
  addNav({key: 'nav.inbox', familyKey: 'nav.inbox_family', path: '/inbox', test: 'nav-inbox', when: () => session.isProfessional() || session.isFamily()});
  addNav({key: 'nav.audit', path: '/audit', test: 'nav-audit', when: () => session.isOfficer()});
  addNav({key: 'nav.admin', path: '/admin', test: 'nav-admin', when: () => session.isOrgAdmin() || session.isSystemAdmin()});

  registerOwnRoutes();
  for (const mod of [login, rooms, timeline, forms, sheet, members, audit, admin]) {
    try {
      mod.register();
    } catch (err) {
      console.error('register', err);
    }
  }
  login.onJoined(async () => {
    await session.loadMe();
    afterAuth();
  });

  onAuthLost(() => {
    if (state === 'ready' || state === 'pending') {
      unmountView();
      toAnon(t('session.expired_notice'));
    }
  });
  onPendingStep(async () => {
    if (state !== 'ready') return;
    try {
      await session.loadMe();
    } catch {
      return;
    }
    unmountView();
    afterAuth();
  });
  live.onSessionEnded(async () => {
    if (state !== 'ready') return;
    try {
      await session.loadMe();
    } catch (err) {
      if (err.status === 401) {
        unmountView();
        toAnon(t('session.expired_notice'));
      }
      return;
    }
    // The session still stands (e.g. it was refreshed meanwhile): reconnect.
    if (state === 'ready') live.start();
  });
  live.onState((s) => {
    if (s === 'connected') flush();
  });
  onNetwork((ok) => {
    apiReachable = ok;
    updateNetwork();
  });
  window.addEventListener('online', () => {
    apiReachable = true;
    updateNetwork();
    if (state === 'offline') checkSession();
  });
  window.addEventListener('offline', updateNetwork);
  updateNetwork();

  onLangChange(() => {
    if (state === 'ready') reload();
    else if (state === 'anon') {
      if (parseHash().path === '/join') reload();
      else login.renderLogin(freshView(), {onSuccess: onLoggedIn});
    } else if (state === 'pending') {
      // Re-enrolling would replace a TOTP secret the user may have scanned already.
      if (session.pending()[0] !== 'enrol_totp') login.runPending(freshView(), async () => enterReady());
    } else if (state === 'locked') renderLock(freshView());
  });

  start();
  checkSession();

  if ('serviceWorker' in navigator && window.isSecureContext) {
    navigator.serviceWorker.register('/sw.js').catch((err) => console.warn('service worker', err));
  }
}

boot();
