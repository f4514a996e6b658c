// The page frame (header, navigation), the room header with its tabs, and shared UI pieces:
// error banners, per-field errors, loading and empty states.
//
//   const {content, room} = await roomShell(view, roomId, 'timeline');
//   showError(container, err)     // banner data-test="error" + per-field errors (see below)
//   addNav({key: 'nav.inbox', path: '/inbox', test: 'nav-inbox', when: () => true})
//
// Per-field errors: wrap each input with field({label, input, path}) (a div.field with
// data-field = the server's path, e.g. 'patient.name' or 'data.meeting.place'); showError()
// then puts the server's message for that path under the input as
// <p class="field-error" data-test="field-error" data-field="…"> and ties it with
// aria-describedby. Field errors with no matching .field are listed in the banner.

import { h, mount, clear, uid } from './dom.js';
import { t, addStrings, message, formatDate, onLangChange } from './i18n.js';
import { api, ApiError } from './api.js';
import { href, parseHash } from './router.js';
import * as session from './session.js';

addStrings({
  ja: {
    'app.name': 'つなぐ',
    'app.name_sub': 'Tsunagu',
    'nav.rooms': '患者一覧',
    'nav.inbox': '書式の受信箱',
    'nav.audit': '監査',
    'nav.admin': '管理',
    'nav.rooms_family': 'ホーム',
    'a11y.skip': '本文へ移動',
    'nav.inbox_family': 'あなた宛ての書類',
    'nav.label': 'メインメニュー',
    'header.lang_switch': 'English',
    'header.lang_switch_label': 'Switch to English',
    'header.logout': 'ログアウト',
    'header.online': 'オンライン',
    'header.offline': 'オフライン',
    'header.user_label': 'ログイン中: {name}（{role}）',
    'room.back': '患者一覧へ',
    'room.tabs': '患者ルームのメニュー',
    'room.tab.timeline': 'タイムライン',
    'room.tab.members': 'メンバー・同意',
    'room.tab.forms': '書式',
    'room.tab.sheet': '緊急時情報',
    'room.back_family': '一覧に戻る',
    'room.tab_family.timeline': 'やりとり',
    'room.tab_family.members': 'ケアチームと同意',
    'room.dob': '生年月日 {date}（{age}歳）',
    'room.sheet_stale': '緊急時情報シート 要再確認',
    'room.sheet_missing': '緊急時情報シート 未作成',
    'room.consent_warning_missing': '同意が記録されていないため、投稿や書式の送信はできません。',
    'room.consent_warning_withdrawn': '同意が撤回されているため、投稿や書式の送信はできません。',
    'error.fields_heading': '入力内容を確認してください:',
  },
  en: {
    'app.name': 'Tsunagu',
    'app.name_sub': 'つなぐ',
    'nav.rooms': 'Patients',
    'nav.inbox': 'Forms inbox',
    'nav.audit': 'Audit',
    'nav.admin': 'Administration',
    'nav.rooms_family': 'Home',
    'a11y.skip': 'Skip to the main content',
    'nav.inbox_family': 'Documents for you',
    'nav.label': 'Main menu',
    'header.lang_switch': '日本語',
    'header.lang_switch_label': '日本語に切り替える',
    'header.logout': 'Log out',
    'header.online': 'Online',
    'header.offline': 'Offline',
    'header.user_label': 'Logged in: {name} ({role})',
    'room.back': 'All patients',
    'room.tabs': 'Patient room menu',
    'room.tab.timeline': 'Timeline',
    'room.tab.members': 'Members & consent',
    'room.tab.forms': 'Forms',
    'room.tab.sheet': 'Emergency info',
    'room.back_family': 'Back to the list',
    'room.tab_family.timeline': 'Messages',
    'room.tab_family.members': 'Care team and consent',
    'room.dob': 'Born {date} (age {age})',
    'room.sheet_stale': 'Emergency sheet: needs re-confirmation',
    'room.sheet_missing': 'Emergency sheet: not written yet',
    'room.consent_warning_missing': 'No consent is recorded: posts and forms cannot be sent.',
    'room.consent_warning_withdrawn': 'Consent has been withdrawn: posts and forms cannot be sent.',
    'error.fields_heading': 'Please check:',
  },
});

// ---------------------------------------------------------------------------------------------
// Header and navigation

const navItems = [];
const header = {
  el: null,
  state: 'anon', // 'anon' | 'pending' | 'ready' | 'locked'
  online: navigator.onLine,
  onLogout: null,
  onLang: null,
};

/**
 * Adds a link to the header navigation. key: i18n key of the label; when(): shown or not, by
 * role. A second addNav with the same `test` replaces the first.
 */
export function addNav({key, familyKey, path, test, when}) {
  const item = {key, familyKey, path, test, when: when || (() => true)};
  const at = navItems.findIndex((n) => n.test === test);
  if (at >= 0) navItems[at] = item;
  else navItems.push(item);
  renderHeader();
}

/** Builds the frame in `root`; answers {header, main}. */
export function renderFrame(root, {onLogout, onLang}) {
  header.onLogout = onLogout;
  header.onLang = onLang;
  header.el = h('header', {class: 'app-header'});
  const main = h('main', {id: 'main', class: 'app-main', tabindex: '-1'});
  // The first stop of the keyboard: past the header to the screen (hash routing: no #main link).
  const skip = h(
    'a',
    {
      class: 'skip-link',
      href: '#main',
      on: {
        click: (ev) => {
          ev.preventDefault();
          main.focus();
        },
      },
    },
    t('a11y.skip'),
  );
  onLangChange(() => {
    skip.textContent = t('a11y.skip');
  });
  mount(root, skip, header.el, main);
  renderHeader();
  window.addEventListener('hashchange', () => markActiveNav());
  onLangChange(() => renderHeader());
  return {header: header.el, main};
}

export function setHeaderState(state) {
  header.state = state;
  renderHeader();
}

export function setNetworkState(online) {
  if (header.online === online) return;
  header.online = online;
  const el = header.el?.querySelector('[data-test="network-state"]');
  if (el) updateNetworkEl(el);
}

function updateNetworkEl(el) {
  el.setAttribute('data-state', header.online ? 'online' : 'offline');
  el.classList.toggle('is-offline', !header.online);
  mount(
    el,
    h('span', {class: 'net-dot', 'aria-hidden': 'true'}),
    h('span', {class: 'net-label'}, t(header.online ? 'header.online' : 'header.offline')),
  );
}

function renderHeader() {
  if (!header.el) return;
  const ready = header.state === 'ready';
  const user = session.me()?.user;
  const brand = h(
    'a',
    {class: 'brand', href: href('/'), 'aria-label': `${t('app.name')} ${t('app.name_sub')}`},
    h('img', {class: 'brand-icon', src: '/icons/icon.svg', alt: '', width: '36', height: '36'}),
    h('span', {class: 'brand-name'}, t('app.name')),
    h('span', {class: 'brand-sub'}, t('app.name_sub')),
  );
  const nav = ready
    ? h(
        'nav',
        {class: 'app-nav', 'aria-label': t('nav.label')},
        navItems
          .filter((item) => {
            try {
              return item.when();
            } catch {
              return false;
            }
          })
          .map((item) =>
            h('a', {class: 'nav-link', href: href(item.path), 'data-test': item.test, 'data-path': item.path}, t(item.familyKey && session.isFamily() ? item.familyKey : item.key)),
          ),
      )
    : null;
  const network = h('span', {class: 'network-state', 'data-test': 'network-state', role: 'status'});
  updateNetworkEl(network);
  const tools = h(
    'div',
    {class: 'header-tools'},
    network,
    user && header.state !== 'anon'
      ? h(
          'span',
          {class: 'user-name', title: t('header.user_label', {name: user.display_name, role: t(`role.${user.role}`)})},
          h('span', {'data-test': 'user-name'}, user.display_name),
          h('span', {class: 'user-role'}, t(`role.${user.role}`)),
        )
      : null,
    h(
      'button',
      {
        class: 'btn btn-quiet',
        type: 'button',
        'data-test': 'lang-switch',
        lang: t('header.lang_switch') === 'English' ? 'en' : 'ja',
        'aria-label': t('header.lang_switch_label'),
        on: {click: () => header.onLang && header.onLang()},
      },
      t('header.lang_switch'),
    ),
    user && header.state !== 'anon'
      ? h(
          'button',
          {class: 'btn btn-quiet', type: 'button', 'data-test': 'logout', on: {click: () => header.onLogout && header.onLogout()}},
          t('header.logout'),
        )
      : null,
  );
  mount(header.el, h('div', {class: 'header-inner'}, brand, nav, tools));
  markActiveNav();
}

function markActiveNav() {
  if (!header.el) return;
  const path = parseHash().path;
  for (const a of header.el.querySelectorAll('.nav-link')) {
    const p = a.getAttribute('data-path');
    const active = path === p || path.startsWith(`${p}/`);
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * Puts an error banner (data-test="error", the server's message in the current language) at the
 * top of `container`, replacing an earlier one, and places per-field errors (see the top of
 * this file). Answers the banner.
 */
export function showError(container, err) {
  clearErrors(container);
  const text = errorText(err);
  const unplaced = placeFieldErrors(container, err);
  const banner = h(
    'div',
    {class: 'banner banner-error', 'data-test': 'error', role: 'alert'},
    h('p', {class: 'banner-text'}, text),
    unplaced.length
      ? h(
          'ul',
          {class: 'banner-list'},
          unplaced.map((f) => h('li', null, message(f))),
        )
      : null,
  );
  container.insertBefore(banner, container.firstChild);
  if (typeof banner.scrollIntoView === 'function' && !isInViewport(banner)) {
    banner.scrollIntoView({block: 'nearest'});
  }
  return banner;
}

function isInViewport(el) {
  const r = el.getBoundingClientRect();
  return r.top >= 0 && r.bottom <= window.innerHeight;
}

/** The text of an error in the current language. */
export function errorText(err) {
  if (!err) return t('common.error');
  if (err instanceof ApiError || err.message_ja || err.message_en) {
    return message(err) || t('common.error');
  }
  return err.message || t('common.error');
}

/** Removes the error banners and field errors that showError put in `container`. */
export function clearErrors(container) {
  for (const el of container.querySelectorAll('[data-test="error"].banner-error')) {
    if (el.parentNode === container) el.remove();
  }
  for (const el of container.querySelectorAll('.field-error[data-test="field-error"]')) {
    const wrapper = el.closest('.field');
    el.remove();
    if (wrapper) {
      wrapper.classList.remove('has-error');
      for (const input of wrapper.querySelectorAll('input, select, textarea')) {
        input.removeAttribute('aria-invalid');
        const ids = (input.getAttribute('aria-describedby') || '')
          .split(/\s+/)
          .filter((id) => id && !id.startsWith('fe-'));
        if (ids.length) input.setAttribute('aria-describedby', ids.join(' '));
        else input.removeAttribute('aria-describedby');
      }
    }
  }
}

function placeFieldErrors(container, err) {
  const fields = err && Array.isArray(err.fields) ? err.fields : [];
  const unplaced = [];
  for (const f of fields) {
    const wrapper = findField(container, f.field);
    if (!wrapper) {
      unplaced.push(f);
      continue;
    }
    addFieldError(wrapper, f.field, message(f));
  }
  return unplaced;
}

function findField(container, path) {
  if (!path) return null;
  const sel = `.field[data-field="${CSS.escape(path)}"]`;
  return container.querySelector(sel);
}

/** Shows `text` under the input of the .field wrapper (client-side checks use it too). */
export function addFieldError(wrapper, path, text) {
  const id = uid('fe');
  const p = h('p', {class: 'field-error', 'data-test': 'field-error', 'data-field': path, id}, text);
  wrapper.appendChild(p);
  wrapper.classList.add('has-error');
  for (const input of wrapper.querySelectorAll('input, select, textarea')) {
    input.setAttribute('aria-invalid', 'true');
    const ids = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    ids.push(id);
    input.setAttribute('aria-describedby', ids.join(' '));
  }
  return p;
}

/**
 * A labelled field: <div class="field" data-field=path><label for>…</label>[hint] input</div>.
 * input: an element (given an id if it has none). hint: optional help text (tied by
 * aria-describedby). required: marks the label.
 */
export function field({label, input, path, hint, required, className}) {
  if (!input.id) input.id = uid('f');
  const hintEl = hint ? h('p', {class: 'field-hint', id: uid('fh')}, hint) : null;
  if (hintEl) {
    const ids = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    ids.push(hintEl.id);
    input.setAttribute('aria-describedby', ids.join(' '));
  }
  if (required) input.setAttribute('aria-required', 'true');
  return h(
    'div',
    {class: `field${className ? ` ${className}` : ''}`, 'data-field': path || null},
    h(
      'label',
      {for: input.id},
      label,
      required ? h('span', {class: 'field-required'}, t('common.required')) : null,
    ),
    hintEl,
    input,
  );
}

// ---------------------------------------------------------------------------------------------
// States

export function loading(text) {
  return h('div', {class: 'loading', role: 'status', 'aria-live': 'polite'}, h('span', {class: 'spinner', 'aria-hidden': 'true'}), text || t('common.loading'));
}

export function empty(text) {
  return h('div', {class: 'empty muted'}, text);
}

// ---------------------------------------------------------------------------------------------
// The room frame

const TABS = [
  {key: 'timeline', path: (id) => `/rooms/${id}`},
  {key: 'members', path: (id) => `/rooms/${id}/members`},
  {key: 'forms', path: (id) => `/rooms/${id}/forms`},
  {key: 'sheet', path: (id) => `/rooms/${id}/sheet`},
];

/** The path of a room's tab: 'timeline' | 'members' | 'forms' | 'sheet'. */
export function roomPath(roomId, tab = 'timeline') {
  const found = TABS.find((x) => x.key === tab);
  return found ? found.path(roomId) : `/rooms/${roomId}`;
}

function age(dob) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dob || '');
  if (!m) return '';
  const today = new Intl.DateTimeFormat('en-CA', {timeZone: 'Asia/Tokyo'}).format(new Date());
  const [ty, tm, td] = today.split('-').map(Number);
  let years = ty - Number(m[1]);
  if (tm < Number(m[2]) || (tm === Number(m[2]) && td < Number(m[3]))) years -= 1;
  return years;
}

/** A consent badge: given (calm), missing / withdrawn (warning). */
export function consentBadge(state) {
  const cls = state === 'given' ? 'badge badge-ok' : 'badge badge-warning';
  return h('span', {class: cls, 'data-consent': state}, t(`consent.${state}`));
}

/**
 * Renders the room header and tabs into `view`; answers {content, room}. On failure the error
 * banner is shown in `view` and the error is thrown again with `shown = true` (the router then
 * leaves the screen as it is).
 */
export async function roomShell(view, roomId, activeTab) {
  const family = session.isFamily();
  const top = h('section', {class: `room-header${family ? ' room-header-family' : ''}`});
  const content = h('div', {class: 'room-content'});
  mount(view, top, content);
  mount(content, loading());
  let room;
  try {
    room = await api('GET', `/api/rooms/${encodeURIComponent(roomId)}`);
  } catch (err) {
    clear(content);
    mount(top, h('a', {class: 'back-link', href: href('/rooms')}, '← ', t('room.back')));
    showError(view, err);
    err.shown = true;
    throw err;
  }
  clear(content);
  const patient = room.patient || {};
  const sheet = room.emergency_sheet;
  const meta = h(
    'div',
    {class: 'room-meta row'},
    family ? null : h('span', {class: 'muted'}, t('room.dob', {date: formatDate(patient.date_of_birth), age: age(patient.date_of_birth)})),
    consentBadge(room.consent),
    !family && sheet && sheet.needs_confirmation
      ? h(
          'a',
          {class: 'badge badge-warning', href: href(roomPath(roomId, 'sheet')), 'data-test': 'room-sheet-stale'},
          sheet.version === 0 ? t('room.sheet_missing') : t('room.sheet_stale'),
        )
      : null,
  );
  // Family and patient: the timeline and the members tab (the care team, and the consent
  // records, which they may withdraw); forms and the emergency sheet are the care team's.
  const shown = family ? TABS.filter((tab) => tab.key === 'timeline' || tab.key === 'members') : TABS;
  const tabs = h(
    'nav',
    {class: 'tabs', 'aria-label': t('room.tabs')},
    shown.map((tab) =>
      h(
        'a',
        {
          class: 'tab',
          href: href(tab.path(roomId)),
          'data-test': `tab-${tab.key}`,
          'aria-current': tab.key === activeTab ? 'page' : null,
        },
        t(family ? `room.tab_family.${tab.key}` : `room.tab.${tab.key}`),
      ),
    ),
  );
  mount(
    top,
    h('a', {class: 'back-link', href: href('/rooms')}, '← ', t(family ? 'room.back_family' : 'room.back')),
    h(
      'div',
      {class: 'room-title'},
      h('h1', {class: 'room-name', 'data-test': 'room-title'}, patient.name || ''),
      !family && patient.name_kana ? h('span', {class: 'room-kana'}, patient.name_kana) : null,
    ),
    meta,
    tabs,
  );
  return {content, room};
}
