// Administration: '/admin', '/admin/organisations/:orgId', '/admin/users/:userId'.
//
// - System admins: every organisation (list, create), then as below for each one.
// - Organisation admins: their own organisation.
// - An organisation: its name and TOTP policy (PATCH), its users (GET …/users), its invitations
//   (create with the one-time code shown once, list, revoke).
// - A user: disable / enable, reset the password (one-time password shown once), reset TOTP,
//   change the role (with a reason), their sessions (list, revoke all), their role grants.
// - The admin's own sessions (GET /api/auth/sessions, DELETE one).
//
// Who may manage whom follows docs/security.md §6: an organisation admin manages only the users
// whose role they could grant (not other admins, security officers, nor themselves).

import { h, clear, mount, uid } from '../core/dom.js';
import { t, addStrings, formatDateTime, roleName, orgKindName } from '../core/i18n.js';
import { api } from '../core/api.js';
import { route, href, navigate, onLeave, current } from '../core/router.js';
import { me, userId, isOrgAdmin, isSystemAdmin } from '../core/session.js';
import { showError, loading } from '../core/shell.js';
import { makeForm, confirmDialog, busy, errorBlock, flashNode, labelTable } from '../core/ui.js';

const ROLES = [
  'physician', 'dentist', 'pharmacist', 'nurse', 'therapist', 'dietitian', 'dental_hygienist', 'care_manager',
  'care_worker', 'municipal_staff', 'family', 'patient', 'emergency_service', 'security_officer',
  'organisation_admin', 'system_admin',
];
const ORG_KINDS = [
  'clinic', 'hospital', 'dental_clinic', 'pharmacy', 'visiting_nursing_station', 'care_management_office',
  'care_service', 'community_support_centre', 'municipality', 'emergency_service',
];
const VALID_HOURS = [24, 72, 168, 336, 720];

/** The roles the caller may grant (identity::may_grant). */
function grantableRoles() {
  if (isSystemAdmin()) return ROLES.filter((r) => r !== 'system_admin');
  if (isOrgAdmin()) return ROLES.filter((r) => !['system_admin', 'organisation_admin', 'security_officer'].includes(r));
  return [];
}

/** Whether the caller may manage this user (user scope). */
function mayManage(user) {
  if (user.id === userId()) return false;
  if (isSystemAdmin()) return true;
  if (isOrgAdmin()) {
    const own = me()?.user?.organisation_id;
    return user.organisation_id === own && grantableRoles().includes(user.role);
  }
  return false;
}

// A one-time secret (invitation code, one-time password) stays on its page until the admin
// closes it, also across a re-render of the same page (language switch); it is forgotten as
// soon as the admin goes to another page. Never stored anywhere but in this variable.
let secret = null; // {path, kind, data}

function keepSecretOnThisPage() {
  const path = current().path;
  onLeave(() => {
    setTimeout(() => {
      if (secret && current().path !== path) secret = null;
    }, 0);
  });
}

const STRINGS = {
  ja: {
    'admin.title': '管理',
    'admin.only_admins': 'この画面は組織管理者とシステム管理者だけが使えます。',
    'admin.crumbs': '現在の位置',
    'admin.orgs': '組織',
    'admin.orgs_count': '組織（{count}）',
    'admin.orgs_empty': '組織はまだありません。下のフォームから作成してください。',
    'admin.org_open': '開く',
    'admin.col.name': '名前',
    'admin.col.kind': '種別',
    'admin.col.totp_policy': '家族・本人の二要素認証',
    'admin.col.created': '作成日',
    'admin.col.username': 'ログイン名',
    'admin.col.role': '役割',
    'admin.col.state': '状態',
    'admin.col.totp': '二要素認証',
    'admin.col.actions': '操作',
    'admin.col.invitee': '招待する人',
    'admin.col.expires': '有効期限',
    'admin.col.status': '状態',
    'admin.col.created_at': '作成日時',
    'admin.required_all': '必須',
    'admin.optional': '任意',
    'admin.org_create_title': '組織を作成',
    'admin.org_name': '組織名',
    'admin.org_kind': '種別',
    'admin.org_totp': '家族・本人のアカウントにも二要素認証（認証アプリ）を必須にする',
    'admin.org_totp_hint': 'オフにすると、家族・本人は15文字以上のパスワードだけでログインできます。',
    'admin.org_create': '組織を作成する',
    'admin.org_created': '組織「{name}」を作成しました。',
    'admin.org_settings': '組織の設定',
    'admin.org_save': '設定を保存',
    'admin.org_saved': '組織の設定を保存しました。',
    'admin.org_unchanged': '変更はありません。',
    'admin.org_totp_on_title': '家族・本人にも二要素認証を必須にしますか？',
    'admin.org_totp_on_body': 'この組織の家族・本人のアカウントは、次の操作のときに認証アプリの設定を求められます。',
    'admin.org_totp_on_confirm': '必須にする',
    'admin.required_yes': '必須',
    'admin.required_no': '任意',
    'admin.no_org': 'この組織は見つかりません。',

    'admin.users': '利用者（{count}人）',
    'admin.users_empty': 'この組織にはまだ利用者がいません。下の「招待」から招待してください。',
    'admin.users_filter': '名前・ログイン名で絞り込み',
    'admin.users_filter_none': '一致する利用者はいません。',
    'admin.user_open': '管理',
    'admin.user_not_manageable': '権限外',
    'admin.user_not_manageable_hint': '他の管理者・セキュリティ責任者・自分自身は、システム管理者が管理します。',
    'admin.status.active': '有効',
    'admin.status.disabled': '停止中',
    'admin.must_change_password': 'パスワード変更待ち',
    'admin.totp.on': '設定済み',
    'admin.totp.off': '未設定',
    'admin.you': 'あなた',

    'admin.invites': '招待',
    'admin.invite_create': '新しい利用者を招待',
    'admin.invite_help': '招待コードを作り、本人に直接渡してください。本人がコードを使ってアカウントを作ります。',
    'admin.invite_role': '役割',
    'admin.invite_role_choose': '役割を選んでください',
    'admin.invite_role_required': '役割を選んでください。',
    'admin.invite_name': '招待する人の名前',
    'admin.invite_name_hint': '管理者向けのメモです（本人の表示名は本人が登録します）。',
    'admin.invite_hours': '有効期限',
    'admin.invite_hours_n': '{n}時間',
    'admin.invite_days_n': '{n}日',
    'admin.invite_submit': '招待コードを作る',
    'admin.invite_code_title': '招待コード',
    'admin.invite_code_once': 'このコードは今しか表示されません。本人に確実に渡してから閉じてください。',
    'admin.invite_code_for': '{role}・{name}・{expires} まで有効',
    'admin.invite_code_for_noname': '{role}・{expires} まで有効',
    'admin.copy': 'コピー',
    'admin.copied': 'コピーしました。',
    'admin.copy_failed': 'コピーできませんでした。コードを選択してコピーしてください。',
    'admin.secret_done': '渡したので閉じる',
    'admin.invites_pending': '有効な招待（{count}件）',
    'admin.invites_none': '有効な招待はありません。',
    'admin.invites_past': '使用済み・期限切れ・取り消した招待（{count}件）',
    'admin.invite_revoke': '取り消す',
    'admin.invite_revoke_title': 'この招待を取り消しますか？',
    'admin.invite_revoke_body': '{role}「{name}」への招待コードは使えなくなります。',
    'admin.invite_revoked': '招待を取り消しました。',
    'admin.invite_status.pending': '有効',
    'admin.invite_status.accepted': '使用済み',
    'admin.invite_status.expired': '期限切れ',
    'admin.invite_status.revoked': '取り消し',
    'admin.no_name': '（名前なし）',

    'admin.user_title': '利用者の管理',
    'admin.user_back': '{org} の利用者一覧へ',
    'admin.user_facts': 'アカウント',
    'admin.user_org': '所属',
    'admin.user_created': '登録日時',
    'admin.user_actions': '操作',
    'admin.user_self_note': '自分自身のアカウントはここでは変更できません。',
    'admin.disable': '利用を停止する',
    'admin.enable': '利用を再開する',
    'admin.disable_title': '{name}さんの利用を停止しますか？',
    'admin.disable_body': 'すべてのセッションが終了し、再開するまでログインできなくなります。',
    'admin.enable_title': '{name}さんの利用を再開しますか？',
    'admin.enable_body': '再びログインできるようになります。',
    'admin.disabled_ok': '利用を停止しました。',
    'admin.enabled_ok': '利用を再開しました。',
    'admin.reset_password': 'パスワードを再発行する',
    'admin.reset_password_title': '{name}さんのパスワードを再発行しますか？',
    'admin.reset_password_body': '今のパスワードは使えなくなり、すべてのセッションが終了します。一度だけ表示される仮パスワードを本人に渡してください。本人は次のログインで変更します。',
    'admin.reset_password_confirm': '再発行する',
    'admin.otp_title': '仮パスワード',
    'admin.otp_once': 'この仮パスワードは今しか表示されません。本人に確実に渡してから閉じてください。',
    'admin.reset_totp': '二要素認証をリセットする',
    'admin.reset_totp_title': '{name}さんの二要素認証をリセットしますか？',
    'admin.reset_totp_body': '登録済みの認証アプリと回復コードは使えなくなり、すべてのセッションが終了します。本人は次のログインで設定し直します。',
    'admin.reset_totp_confirm': 'リセットする',
    'admin.reset_totp_ok': '二要素認証をリセットしました。',
    'admin.role_title': '役割を変更',
    'admin.role_new': '新しい役割',
    'admin.role_reason': '変更の理由',
    'admin.role_reason_hint': '1〜500文字。役割の付与の記録に残ります。',
    'admin.role_submit': '役割を変更する',
    'admin.role_confirm_title': '{name}さんの役割を「{role}」に変更しますか？',
    'admin.role_confirm_body': 'すべてのセッションが終了します。',
    'admin.role_confirm': '変更する',
    'admin.role_same': '今と同じ役割です。',
    'admin.role_changed': '役割を「{role}」に変更しました。',
    'admin.role_fixed': 'システム管理者の役割は変更できません。',
    'admin.grants': '役割の付与の記録',
    'admin.grants_empty': '記録はありません。',
    'admin.grant_by': '{who}が付与',
    'admin.grant_by_system': 'サーバーのコマンドで付与',
    'admin.a_system_admin': 'システム管理者',

    'admin.sessions': 'ログイン中のセッション',
    'admin.sessions_empty': 'ログイン中のセッションはありません。',
    'admin.sessions_revoke_all': 'すべてのセッションを終了する',
    'admin.sessions_revoke_title': '{name}さんのすべてのセッションを終了しますか？',
    'admin.sessions_revoke_body': 'すべての端末でログアウトされます。パスワードは変わりません。',
    'admin.sessions_revoke_confirm': '終了する',
    'admin.sessions_revoked': 'すべてのセッションを終了しました。',
    'admin.col.login_at': 'ログイン',
    'admin.col.last_seen': '最終利用',
    'admin.col.session_expires': '期限',
    'admin.col.device': '端末',
    'admin.col.source': '接続元',
    'admin.unknown_device': '不明な端末',
    'admin.this_device': 'この端末',

    'admin.own_sessions': '自分のセッション',
    'admin.own_sessions_help': '自分のアカウントでログイン中の端末です。心当たりのないものは終了してください。',
    'admin.own_revoke': '終了',
    'admin.own_revoke_title': 'このセッションを終了しますか？',
    'admin.own_revoke_body': 'その端末ではログアウトされます。',
    'admin.own_revoked': 'セッションを終了しました。',
  },
  en: {
    'admin.title': 'Administration',
    'admin.only_admins': 'This screen is for organisation and system administrators only.',
    'admin.crumbs': 'You are here',
    'admin.orgs': 'Organisations',
    'admin.orgs_count': 'Organisations ({count})',
    'admin.orgs_empty': 'There is no organisation yet. Create one with the form below.',
    'admin.org_open': 'Open',
    'admin.col.name': 'Name',
    'admin.col.kind': 'Kind',
    'admin.col.totp_policy': 'TOTP for family and patients',
    'admin.col.created': 'Created',
    'admin.col.username': 'Login name',
    'admin.col.role': 'Role',
    'admin.col.state': 'State',
    'admin.col.totp': 'TOTP',
    'admin.col.actions': 'Actions',
    'admin.col.invitee': 'Invitee',
    'admin.col.expires': 'Expires',
    'admin.col.status': 'Status',
    'admin.col.created_at': 'Created',
    'admin.required_all': 'Required',
    'admin.optional': 'Optional',
    'admin.org_create_title': 'Create an organisation',
    'admin.org_name': 'Name',
    'admin.org_kind': 'Kind',
    'admin.org_totp': 'Require two-factor authentication (authenticator app) of family and patient accounts too',
    'admin.org_totp_hint': 'When off, family and patients log in with a password of at least 15 characters.',
    'admin.org_create': 'Create the organisation',
    'admin.org_created': 'The organisation "{name}" was created.',
    'admin.org_settings': 'Organisation settings',
    'admin.org_save': 'Save the settings',
    'admin.org_saved': 'The settings were saved.',
    'admin.org_unchanged': 'Nothing has changed.',
    'admin.org_totp_on_title': 'Require TOTP of family and patients?',
    'admin.org_totp_on_body': 'Family and patient accounts of this organisation will be asked to set up an authenticator app at their next request.',
    'admin.org_totp_on_confirm': 'Require it',
    'admin.required_yes': 'Required',
    'admin.required_no': 'Optional',
    'admin.no_org': 'This organisation was not found.',

    'admin.users': 'Users ({count})',
    'admin.users_empty': 'This organisation has no users yet. Invite them below.',
    'admin.users_filter': 'Filter by name or login name',
    'admin.users_filter_none': 'No user matches.',
    'admin.user_open': 'Manage',
    'admin.user_not_manageable': 'Not yours',
    'admin.user_not_manageable_hint': 'Other administrators, security officers and your own account are managed by a system administrator.',
    'admin.status.active': 'Active',
    'admin.status.disabled': 'Disabled',
    'admin.must_change_password': 'Must change password',
    'admin.totp.on': 'On',
    'admin.totp.off': 'Not set up',
    'admin.you': 'You',

    'admin.invites': 'Invitations',
    'admin.invite_create': 'Invite a new user',
    'admin.invite_help': 'Create an invitation code and hand it to the person; they create their account with it.',
    'admin.invite_role': 'Role',
    'admin.invite_role_choose': 'Choose a role',
    'admin.invite_role_required': 'Choose a role.',
    'admin.invite_name': 'Name of the invitee',
    'admin.invite_name_hint': 'A note for administrators (the person registers their own display name).',
    'admin.invite_hours': 'Valid for',
    'admin.invite_hours_n': '{n} hours',
    'admin.invite_days_n': '{n} days',
    'admin.invite_submit': 'Create the invitation code',
    'admin.invite_code_title': 'Invitation code',
    'admin.invite_code_once': 'This code is shown only now. Hand it to the person before closing.',
    'admin.invite_code_for': '{role} · {name} · valid until {expires}',
    'admin.invite_code_for_noname': '{role} · valid until {expires}',
    'admin.copy': 'Copy',
    'admin.copied': 'Copied.',
    'admin.copy_failed': 'Could not copy: select the code and copy it.',
    'admin.secret_done': 'Handed over: close',
    'admin.invites_pending': 'Open invitations ({count})',
    'admin.invites_none': 'No open invitation.',
    'admin.invites_past': 'Used, expired and revoked invitations ({count})',
    'admin.invite_revoke': 'Revoke',
    'admin.invite_revoke_title': 'Revoke this invitation?',
    'admin.invite_revoke_body': 'The code for {role} "{name}" will no longer work.',
    'admin.invite_revoked': 'The invitation was revoked.',
    'admin.invite_status.pending': 'Open',
    'admin.invite_status.accepted': 'Used',
    'admin.invite_status.expired': 'Expired',
    'admin.invite_status.revoked': 'Revoked',
    'admin.no_name': '(no name)',

    'admin.user_title': 'Manage a user',
    'admin.user_back': 'Users of {org}',
    'admin.user_facts': 'Account',
    'admin.user_org': 'Organisation',
    'admin.user_created': 'Registered',
    'admin.user_actions': 'Actions',
    'admin.user_self_note': 'Your own account cannot be changed here.',
    'admin.disable': 'Disable the account',
    'admin.enable': 'Enable the account',
    'admin.disable_title': 'Disable the account of {name}?',
    'admin.disable_body': 'All their sessions end, and they cannot log in until the account is enabled again.',
    'admin.enable_title': 'Enable the account of {name}?',
    'admin.enable_body': 'They will be able to log in again.',
    'admin.disabled_ok': 'The account was disabled.',
    'admin.enabled_ok': 'The account was enabled.',
    'admin.reset_password': 'Reset the password',
    'admin.reset_password_title': 'Reset the password of {name}?',
    'admin.reset_password_body': 'The current password stops working and all their sessions end. Hand them the one-time password shown next; they change it at their next login.',
    'admin.reset_password_confirm': 'Reset',
    'admin.otp_title': 'One-time password',
    'admin.otp_once': 'This password is shown only now. Hand it to the person before closing.',
    'admin.reset_totp': 'Reset two-factor authentication',
    'admin.reset_totp_title': 'Reset the two-factor authentication of {name}?',
    'admin.reset_totp_body': 'Their authenticator app and recovery codes stop working and all their sessions end. They set it up again at their next login.',
    'admin.reset_totp_confirm': 'Reset',
    'admin.reset_totp_ok': 'Two-factor authentication was reset.',
    'admin.role_title': 'Change the role',
    'admin.role_new': 'New role',
    'admin.role_reason': 'Reason',
    'admin.role_reason_hint': '1–500 characters; kept with the record of the grant.',
    'admin.role_submit': 'Change the role',
    'admin.role_confirm_title': 'Change the role of {name} to "{role}"?',
    'admin.role_confirm_body': 'All their sessions end.',
    'admin.role_confirm': 'Change',
    'admin.role_same': 'This is the current role.',
    'admin.role_changed': 'The role is now "{role}".',
    'admin.role_fixed': 'A system administrator\'s role cannot be changed.',
    'admin.grants': 'Role grants',
    'admin.grants_empty': 'No record.',
    'admin.grant_by': 'granted by {who}',
    'admin.grant_by_system': 'granted from the server command line',
    'admin.a_system_admin': 'a system administrator',

    'admin.sessions': 'Live sessions',
    'admin.sessions_empty': 'No live session.',
    'admin.sessions_revoke_all': 'End all sessions',
    'admin.sessions_revoke_title': 'End every session of {name}?',
    'admin.sessions_revoke_body': 'They are logged out on every device. The password stays the same.',
    'admin.sessions_revoke_confirm': 'End them',
    'admin.sessions_revoked': 'All sessions were ended.',
    'admin.col.login_at': 'Logged in',
    'admin.col.last_seen': 'Last seen',
    'admin.col.session_expires': 'Ends',
    'admin.col.device': 'Device',
    'admin.col.source': 'Source',
    'admin.unknown_device': 'Unknown device',
    'admin.this_device': 'This device',

    'admin.own_sessions': 'Your sessions',
    'admin.own_sessions_help': 'The devices logged in with your account. End any you do not recognise.',
    'admin.own_revoke': 'End',
    'admin.own_revoke_title': 'End this session?',
    'admin.own_revoke_body': 'That device is logged out.',
    'admin.own_revoked': 'The session was ended.',
  },
};

// ---------------------------------------------------------------------------------------------
// Pieces

function pageTitle(text) {
  return h('h1', {class: 'page-title'}, text);
}

function crumbs(items) {
  return h(
    'nav',
    {class: 'breadcrumbs', 'aria-label': t('admin.crumbs')},
    h(
      'ol',
      null,
      items.map((item, i) =>
        h('li', null, item.path && i < items.length - 1 ? h('a', {href: href(item.path)}, item.label) : h('span', {'aria-current': 'page'}, item.label)),
      ),
    ),
  );
}

function table(headers, rows, opts = {}) {
  return h(
    'div',
    {class: `table-scroll cards-narrow${opts.short ? ' table-short' : ''}`, tabindex: '0', role: 'group', 'aria-label': opts.label || null},
    labelTable(
      h(
        'table',
        {class: 'console-table'},
        h('thead', null, h('tr', null, headers.map((x) => h('th', {scope: 'col', class: x.cls || null}, x.label)))),
        h('tbody', null, rows),
      ),
    ),
  );
}

function statusBadges(user) {
  return [
    h('span', {class: `badge ${user.status === 'active' ? 'badge-ok' : 'badge-danger'}`, 'data-test': 'admin-user-status'}, t(`admin.status.${user.status}`)),
    user.must_change_password ? h('span', {class: 'badge badge-warning'}, t('admin.must_change_password')) : null,
  ];
}

function totpBadge(on) {
  return h('span', {class: `badge ${on ? 'badge-ok' : 'badge-muted'}`}, t(on ? 'admin.totp.on' : 'admin.totp.off'));
}

function hoursLabel(n) {
  return n % 24 === 0 && n >= 48 ? t('admin.invite_days_n', {n: n / 24}) : t('admin.invite_hours_n', {n});
}

/** A checkbox with its label after it, as a .field for per-field errors. */
function checkField(path, label, input, hint) {
  if (!input.id) input.id = uid('f');
  const hintEl = hint ? h('p', {class: 'field-hint', id: `${input.id}-hint`}, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', {class: 'field field-check', 'data-field': path}, h('div', {class: 'check-row'}, input, h('label', {for: input.id}, label)), hintEl);
}

/** Copies text; falls back to selecting it for a manual copy. */
async function copyText(text, selectEl, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = t('admin.copied');
  } catch {
    const range = document.createRange();
    range.selectNodeContents(selectEl);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    status.textContent = ok ? t('admin.copied') : t('admin.copy_failed');
  }
}

/** The panel showing a one-time secret, with a copy button and a close button. */
function secretPanel({title, value, test, note, details, onDone}) {
  const valueEl = h('code', {class: 'secret-value', 'data-test': test}, value);
  const status = h('span', {class: 'secret-status', role: 'status', 'aria-live': 'polite'});
  return h(
    'div',
    {class: 'secret-panel', role: 'region', 'aria-label': title},
    h('h3', {class: 'subsection-title'}, title),
    h('p', {class: 'secret-row'}, valueEl),
    details ? h('p', {class: 'console-note'}, details) : null,
    h('p', {class: 'console-warning'}, note),
    h(
      'div',
      {class: 'form-actions form-actions-start'},
      h('button', {class: 'btn', type: 'button', 'data-test': `${test}-copy`, on: {click: () => copyText(value, valueEl, status)}}, t('admin.copy')),
      h('button', {class: 'btn btn-primary', type: 'button', 'data-test': `${test}-done`, on: {click: onDone}}, t('admin.secret_done')),
      status,
    ),
  );
}

function sessionDevice(s) {
  return s.user_agent ? h('span', {class: 'session-ua'}, s.user_agent) : h('span', {class: 'muted'}, t('admin.unknown_device'));
}

function sessionHeaders() {
  return [
    {label: t('admin.col.login_at')},
    {label: t('admin.col.last_seen')},
    {label: t('admin.col.session_expires')},
    {label: t('admin.col.device')},
    {label: t('admin.col.source'), cls: 'col-source'},
  ];
}

function sessionCells(s) {
  return [
    h('td', {class: 'nowrap'}, formatDateTime(s.created_at)),
    h('td', {class: 'nowrap'}, formatDateTime(s.last_seen_at)),
    h('td', {class: 'nowrap'}, formatDateTime(s.expires_at)),
    h('td', {class: 'col-wrap'}, sessionDevice(s), s.current ? h('span', {class: 'badge badge-self'}, t('admin.this_device')) : null),
    h('td', null, s.source_address ? h('span', {class: 'mono'}, s.source_address) : null),
  ];
}

function notAllowed(view) {
  mount(view, h('div', {class: 'console'}, pageTitle(t('admin.title')), h('p', {class: 'console-empty', 'data-test': 'error'}, t('admin.only_admins'))));
}

// ---------------------------------------------------------------------------------------------
// '/admin'

async function adminHome(view) {
  if (isSystemAdmin()) return organisationsPage(view);
  if (isOrgAdmin()) {
    const orgId = me()?.user?.organisation_id || me()?.organisation?.id;
    return organisationPage(view, {orgId}, {home: true});
  }
  return notAllowed(view);
}

// --- organisations (system admin) ------------------------------------------------------------

async function organisationsPage(view) {
  const page = h('div', {class: 'console admin-screen'});
  const list = h('section', {class: 'console-section', 'aria-labelledby': 'admin-orgs-title'});
  const own = h('section', {class: 'console-section', 'aria-labelledby': 'admin-own-title'});
  mount(view, page);
  mount(page, pageTitle(t('admin.title')), list, own);

  let notice = null;
  async function load() {
    mount(list, h('h2', {class: 'section-title', id: 'admin-orgs-title'}, t('admin.orgs')), loading());
    let orgs;
    try {
      orgs = (await api('GET', '/api/admin/organisations')) || [];
    } catch (err) {
      mount(list, h('h2', {class: 'section-title', id: 'admin-orgs-title'}, t('admin.orgs')), errorBlock(err, load));
      return;
    }
    orgs.sort((a, b) => a.name.localeCompare(b.name, 'ja'));
    mount(
      list,
      h('h2', {class: 'section-title', id: 'admin-orgs-title'}, t('admin.orgs_count', {count: orgs.length})),
      flashNode(notice),
      orgs.length
        ? table(
            [
              {label: t('admin.col.name')},
              {label: t('admin.col.kind')},
              {label: t('admin.col.totp_policy')},
              {label: t('admin.col.created')},
              {label: t('admin.col.actions'), cls: 'col-actions'},
            ],
            orgs.map((o) =>
              h(
                'tr',
                {'data-test': 'admin-org-row', 'data-org-id': o.id, class: 'row-link', on: {click: (ev) => rowClick(ev, `/admin/organisations/${o.id}`)}},
                h('td', {class: 'strong'}, o.name),
                h('td', null, orgKindName(o.kind)),
                h('td', null, t(o.require_totp_for_all ? 'admin.required_yes' : 'admin.required_no')),
                h('td', {class: 'nowrap'}, formatDateTime(o.created_at)),
                h('td', {class: 'col-actions'}, h('a', {class: 'btn', href: href(`/admin/organisations/${o.id}`), 'data-test': 'admin-org-open'}, t('admin.org_open'))),
              ),
            ),
            {label: t('admin.orgs')},
          )
        : h('p', {class: 'console-empty'}, t('admin.orgs_empty')),
      createOrganisationForm((org) => {
        notice = t('admin.org_created', {name: org.name});
        load();
      }),
    );
    notice = null;
  }
  await Promise.all([load(), ownSessions(own)]);
}

/** A click on a table row opens its page, unless the click was on a control inside it. */
function rowClick(ev, path) {
  if (ev.target.closest('a, button, input, select, textarea, label')) return;
  navigate(path);
}

function createOrganisationForm(onCreated) {
  const f = makeForm();
  const name = h('input', {type: 'text', class: 'input', maxlength: '200', autocomplete: 'off', 'data-test': 'admin-org-create-name'});
  const kind = h(
    'select',
    {class: 'input', 'data-test': 'admin-org-create-kind', value: 'clinic'},
    ORG_KINDS.map((k) => h('option', {value: k}, orgKindName(k))),
  );
  const totp = h('input', {type: 'checkbox', class: 'checkbox', 'data-test': 'admin-org-create-totp'});
  const submit = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'admin-org-create'}, t('admin.org_create'));
  async function onSubmit(ev) {
    ev.preventDefault();
    f.clear();
    const body = {name: name.value.trim(), kind: kind.value, require_totp_for_all: totp.checked};
    if (!body.name) f.local('name', t('console.required'));
    if (f.focusFirstError()) return;
    let org;
    try {
      org = await busy(submit, () => api('POST', '/api/admin/organisations', body));
    } catch (err) {
      f.apply(err);
      return;
    }
    onCreated(org);
  }
  return f.form(
    {class: 'console-panel', 'aria-labelledby': 'admin-org-create-title', on: {submit: onSubmit}},
    h('h3', {class: 'subsection-title', id: 'admin-org-create-title'}, t('admin.org_create_title')),
    h('div', {class: 'field-grid'}, f.field('name', t('admin.org_name'), name, {required: true}), f.field('kind', t('admin.org_kind'), kind, {required: true})),
    checkField('require_totp_for_all', t('admin.org_totp'), totp, t('admin.org_totp_hint')),
    h('div', {class: 'form-actions'}, submit),
  );
}

// --- one organisation ------------------------------------------------------------------------

async function organisationPage(view, params, opts = {}) {
  if (!isSystemAdmin() && !isOrgAdmin()) return notAllowed(view);
  keepSecretOnThisPage();
  const orgId = params.orgId;
  const page = h('div', {class: 'console admin-screen'});
  mount(view, page);
  mount(page, loading());

  let org;
  try {
    org = await api('GET', `/api/admin/organisations/${encodeURIComponent(orgId)}`);
  } catch (err) {
    mount(page, pageTitle(t('admin.title')), errorBlock(err, () => organisationPage(view, params, opts)));
    return;
  }

  const settings = h('section', {class: 'console-section', 'aria-labelledby': 'admin-settings-title'});
  const users = h('section', {class: 'console-section', 'aria-labelledby': 'admin-users-title'});
  const invites = h('section', {class: 'console-section', 'aria-labelledby': 'admin-invites-title'});
  const own = opts.home ? h('section', {class: 'console-section', 'aria-labelledby': 'admin-own-title'}) : null;

  function header() {
    return [
      isSystemAdmin() ? crumbs([{label: t('admin.title'), path: '/admin'}, {label: org.name}]) : null,
      h('h1', {class: 'page-title'}, org.name, h('span', {class: 'page-title-sub'}, orgKindName(org.kind))),
    ];
  }
  const head = h('div', null, header());
  mount(page, head, users, invites, settings, own);

  // settings
  function drawSettings(notice) {
    const f = makeForm();
    const name = h('input', {type: 'text', class: 'input', maxlength: '200', value: org.name, 'data-test': 'admin-org-name'});
    const totp = h('input', {type: 'checkbox', class: 'checkbox', checked: org.require_totp_for_all, 'data-test': 'admin-org-totp'});
    const submit = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'admin-org-save'}, t('admin.org_save'));
    async function onSubmit(ev) {
      ev.preventDefault();
      f.clear();
      const body = {};
      const newName = name.value.trim();
      if (!newName) f.local('name', t('console.required'));
      if (f.focusFirstError()) return;
      if (newName !== org.name) body.name = newName;
      if (totp.checked !== org.require_totp_for_all) body.require_totp_for_all = totp.checked;
      if (!Object.keys(body).length) {
        drawSettings(t('admin.org_unchanged'));
        return;
      }
      if (body.require_totp_for_all === true) {
        const ok = await confirmDialog({
          title: t('admin.org_totp_on_title'),
          body: t('admin.org_totp_on_body'),
          confirmLabel: t('admin.org_totp_on_confirm'),
          danger: false,
        });
        if (!ok) return;
      }
      try {
        org = await busy(submit, () => api('PATCH', `/api/admin/organisations/${encodeURIComponent(orgId)}`, body));
      } catch (err) {
        f.apply(err);
        return;
      }
      mount(head, header());
      drawSettings(t('admin.org_saved'));
    }
    mount(
      settings,
      h('h2', {class: 'section-title', id: 'admin-settings-title'}, t('admin.org_settings')),
      flashNode(notice),
      f.form(
        {class: 'console-panel', on: {submit: onSubmit}},
        f.field('name', t('admin.org_name'), name, {required: true}),
        checkField('require_totp_for_all', t('admin.org_totp'), totp, t('admin.org_totp_hint')),
        h('div', {class: 'form-actions'}, submit),
      ),
    );
  }
  drawSettings(null);

  await Promise.all([usersSection(users, org), invitationsSection(invites, org), own ? ownSessions(own) : null]);
}

async function usersSection(section, org) {
  const title = (count) => h('h2', {class: 'section-title', id: 'admin-users-title'}, t('admin.users', {count}));
  mount(section, title('…'), loading());
  let users;
  try {
    users = (await api('GET', `/api/admin/organisations/${encodeURIComponent(org.id)}/users`)) || [];
  } catch (err) {
    mount(section, title('–'), errorBlock(err, () => usersSection(section, org)));
    return;
  }
  users.sort((a, b) => a.display_name.localeCompare(b.display_name, 'ja'));
  const myId = userId();
  const filter = h('input', {type: 'search', class: 'input', autocomplete: 'off', 'data-test': 'admin-user-filter'});
  const filterId = uid('f');
  filter.id = filterId;
  const body = h('tbody', null);
  const empty = h('p', {class: 'console-empty', hidden: true}, t('admin.users_filter_none'));
  const rows = users.map((u) => {
    const manageable = mayManage(u);
    const path = `/admin/users/${u.id}`;
    const row = h(
      'tr',
      {
        'data-test': 'admin-user-row',
        'data-user-id': u.id,
        'data-status': u.status,
        'data-role': u.role,
        class: manageable ? 'row-link' : null,
        on: manageable ? {click: (ev) => rowClick(ev, path)} : null,
      },
      h('td', {class: 'strong'}, h('span', {'data-test': 'admin-user-name'}, u.display_name), u.id === myId ? h('span', {class: 'badge badge-self'}, t('admin.you')) : null),
      h('td', null, h('span', {class: 'mono'}, u.username)),
      h('td', null, roleName(u.role)),
      h('td', null, statusBadges(u)),
      h('td', null, totpBadge(u.totp_enabled)),
      h('td', {class: 'nowrap'}, formatDateTime(u.created_at)),
      h(
        'td',
        {class: 'col-actions'},
        manageable
          ? h('a', {class: 'btn', href: href(path), 'data-test': 'admin-user-open'}, t('admin.user_open'))
          : h('span', {class: 'muted', title: t('admin.user_not_manageable_hint')}, t('admin.user_not_manageable')),
      ),
    );
    row.searchText = `${u.display_name} ${u.username}`.toLowerCase();
    return row;
  });
  mount(body, rows);
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      row.hidden = Boolean(q) && !row.searchText.includes(q);
      if (!row.hidden) shown += 1;
    }
    empty.hidden = shown > 0;
  });
  mount(
    section,
    title(users.length),
    users.length
      ? [
          users.length > 8 ? h('div', {class: 'field field-inline'}, h('label', {for: filterId}, t('admin.users_filter')), filter) : null,
          h(
            'div',
            {class: 'table-scroll cards-narrow', tabindex: '0', role: 'group', 'aria-labelledby': 'admin-users-title'},
            labelTable(h(
              'table',
              {class: 'console-table'},
              h(
                'thead',
                null,
                h(
                  'tr',
                  null,
                  [
                    ['admin.col.name', 'col-name'], ['admin.col.username', 'col-username'], ['admin.col.role', 'col-role'],
                    ['admin.col.state'], ['admin.col.totp'], ['admin.col.created', 'col-date'], ['admin.col.actions', 'col-actions'],
                  ].map(([k, cls]) => h('th', {scope: 'col', class: cls || null}, t(k))),
                ),
              ),
              body,
            )),
          ),
          empty,
        ]
      : h('p', {class: 'console-empty'}, t('admin.users_empty')),
  );
}

async function invitationsSection(section, org) {
  const roles = grantableRoles();
  const list = h('div', {class: 'invite-list'});
  const secretSlot = h('div', {class: 'secret-slot'});
  let notice = null;

  function showSecret() {
    if (secret && secret.kind === 'invitation' && secret.path === current().path) {
      const {code, invitation} = secret.data;
      const expires = formatDateTime(invitation.expires_at);
      mount(
        secretSlot,
        secretPanel({
          title: t('admin.invite_code_title'),
          value: code,
          test: 'admin-invite-code',
          note: t('admin.invite_code_once'),
          details: invitation.invitee_name
            ? t('admin.invite_code_for', {role: roleName(invitation.role), name: invitation.invitee_name, expires})
            : t('admin.invite_code_for_noname', {role: roleName(invitation.role), expires}),
          onDone: () => {
            secret = null;
            clear(secretSlot);
          },
        }),
      );
    } else {
      clear(secretSlot);
    }
  }

  async function loadList() {
    let invitations;
    try {
      invitations = (await api('GET', `/api/admin/organisations/${encodeURIComponent(org.id)}/invitations`)) || [];
    } catch (err) {
      mount(list, errorBlock(err, loadList));
      return;
    }
    const pending = invitations.filter((i) => i.status === 'pending');
    const past = invitations.filter((i) => i.status !== 'pending');
    const row = (i, withRevoke) =>
      h(
        'tr',
        {'data-test': 'admin-invitation-row', 'data-invitation-id': i.id, 'data-status': i.status},
        h('td', {class: 'strong'}, i.invitee_name || h('span', {class: 'muted'}, t('admin.no_name'))),
        h('td', null, roleName(i.role)),
        h('td', {class: 'nowrap'}, formatDateTime(i.created_at)),
        h('td', {class: 'nowrap'}, formatDateTime(i.expires_at)),
        h('td', null, h('span', {class: `badge ${i.status === 'pending' ? 'badge-ok' : 'badge-muted'}`}, t(`admin.invite_status.${i.status}`))),
        withRevoke
          ? h(
              'td',
              {class: 'col-actions'},
              h('button', {class: 'btn btn-danger-outline', type: 'button', 'data-test': 'admin-invitation-revoke', on: {click: (ev) => revoke(i, ev.currentTarget)}}, t('admin.invite_revoke')),
            )
          : null,
      );
    const headers = (withActions) =>
      [
        {label: t('admin.col.invitee')},
        {label: t('admin.col.role')},
        {label: t('admin.col.created_at')},
        {label: t('admin.col.expires')},
        {label: t('admin.col.status')},
        withActions ? {label: t('admin.col.actions'), cls: 'col-actions'} : null,
      ].filter(Boolean);
    mount(
      list,
      flashNode(notice),
      h('h3', {class: 'subsection-title'}, t('admin.invites_pending', {count: pending.length})),
      pending.length
        ? table(headers(true), pending.map((i) => row(i, true)), {label: t('admin.invites'), short: true})
        : h('p', {class: 'console-empty'}, t('admin.invites_none')),
      past.length
        ? h(
            'details',
            {class: 'console-details'},
            h('summary', null, t('admin.invites_past', {count: past.length})),
            table(headers(false), past.map((i) => row(i, false)), {label: t('admin.invites')}),
          )
        : null,
    );
    notice = null;
  }

  async function revoke(invitation, button) {
    const ok = await confirmDialog({
      title: t('admin.invite_revoke_title'),
      body: t('admin.invite_revoke_body', {role: roleName(invitation.role), name: invitation.invitee_name || t('admin.no_name')}),
      confirmLabel: t('admin.invite_revoke'),
    });
    if (!ok) return;
    try {
      await busy(button, () => api('DELETE', `/api/admin/invitations/${encodeURIComponent(invitation.id)}`));
    } catch (err) {
      showError(list, err);
      return;
    }
    notice = t('admin.invite_revoked');
    await loadList();
  }

  // the create form
  const f = makeForm();
  const role = h(
    'select',
    {class: 'input', 'data-test': 'admin-invite-role', value: ''},
    h('option', {value: ''}, t('admin.invite_role_choose')),
    roles.map((r) => h('option', {value: r}, roleName(r))),
  );
  const name = h('input', {type: 'text', class: 'input', maxlength: '200', autocomplete: 'off', 'data-test': 'admin-invite-name'});
  const hours = h(
    'select',
    {class: 'input', 'data-test': 'admin-invite-hours', value: '72'},
    VALID_HOURS.map((n) => h('option', {value: String(n)}, hoursLabel(n))),
  );
  const submit = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'admin-invite-submit'}, t('admin.invite_submit'));
  async function onSubmit(ev) {
    ev.preventDefault();
    f.clear();
    const body = {role: role.value, valid_hours: Number(hours.value)};
    const invitee = name.value.trim();
    if (invitee) body.invitee_name = invitee;
    if (!body.role) f.local('role', t('admin.invite_role_required'));
    if (f.focusFirstError()) return;
    let created;
    try {
      created = await busy(submit, () => api('POST', `/api/admin/organisations/${encodeURIComponent(org.id)}/invitations`, body));
    } catch (err) {
      f.apply(err);
      return;
    }
    secret = {path: current().path, kind: 'invitation', data: created};
    name.value = '';
    showSecret();
    secretSlot.scrollIntoView({block: 'nearest'});
    const codeEl = secretSlot.querySelector('[data-test="admin-invite-code-copy"]');
    if (codeEl) codeEl.focus();
    await loadList();
  }

  mount(
    section,
    h('h2', {class: 'section-title', id: 'admin-invites-title'}, t('admin.invites')),
    f.form(
      {class: 'console-panel', 'aria-labelledby': 'admin-invite-title', on: {submit: onSubmit}},
      h('h3', {class: 'subsection-title', id: 'admin-invite-title'}, t('admin.invite_create')),
      h('p', {class: 'console-note'}, t('admin.invite_help')),
      h(
        'div',
        {class: 'field-grid'},
        f.field('role', t('admin.invite_role'), role, {required: true}),
        f.field('invitee_name', `${t('admin.invite_name')} ${t('console.optional_mark')}`, name, {hint: t('admin.invite_name_hint')}),
        f.field('valid_hours', t('admin.invite_hours'), hours),
      ),
      h('div', {class: 'form-actions'}, submit),
    ),
    secretSlot,
    list,
  );
  showSecret();
  mount(list, loading());
  await loadList();
}

// --- one user --------------------------------------------------------------------------------

async function userPage(view, params) {
  if (!isSystemAdmin() && !isOrgAdmin()) return notAllowed(view);
  keepSecretOnThisPage();
  const id = params.userId;
  const page = h('div', {class: 'console admin-screen'});
  mount(view, page);
  mount(page, loading());

  let user;
  let org = null;
  let colleagues = [];
  try {
    user = await api('GET', `/api/admin/users/${encodeURIComponent(id)}`);
    if (user.organisation_id) {
      [org, colleagues] = await Promise.all([
        api('GET', `/api/admin/organisations/${encodeURIComponent(user.organisation_id)}`),
        api('GET', `/api/admin/organisations/${encodeURIComponent(user.organisation_id)}/users`).catch(() => []),
      ]);
    }
  } catch (err) {
    mount(page, pageTitle(t('admin.user_title')), errorBlock(err, () => userPage(view, params)));
    return;
  }
  const nameOf = (uidValue) => {
    if (uidValue === userId()) return t('admin.you');
    const found = (colleagues || []).find((c) => c.id === uidValue);
    // Only system administrators (who belong to no organisation) act on an organisation's
    // users from outside it.
    return found ? found.display_name : t('admin.a_system_admin');
  };

  const head = h('div');
  const facts = h('section', {class: 'console-section', 'aria-labelledby': 'admin-facts-title'});
  const actions = h('section', {class: 'console-section', 'aria-labelledby': 'admin-actions-title'});
  const sessions = h('section', {class: 'console-section', 'data-test': 'admin-sessions', 'aria-labelledby': 'admin-sessions-title'});
  const grants = h('section', {class: 'console-section', 'aria-labelledby': 'admin-grants-title'});
  mount(page, head, facts, actions, sessions, grants);

  const orgPath = org ? (isSystemAdmin() ? `/admin/organisations/${org.id}` : '/admin') : '/admin';

  function drawHead() {
    mount(
      head,
      crumbs(
        [
          {label: t('admin.title'), path: '/admin'},
          org && isSystemAdmin() ? {label: org.name, path: orgPath} : null,
          {label: user.display_name},
        ].filter(Boolean),
      ),
      h('h1', {class: 'page-title'}, user.display_name, h('span', {class: 'page-title-sub'}, roleName(user.role))),
    );
    mount(
      facts,
      h('h2', {class: 'section-title', id: 'admin-facts-title'}, t('admin.user_facts')),
      h(
        'dl',
        {class: 'console-dl console-panel', 'data-test': 'admin-user-facts', 'data-status': user.status},
        [
          [t('admin.col.username'), h('span', {class: 'mono'}, user.username)],
          [t('admin.col.role'), roleName(user.role)],
          [t('admin.user_org'), org ? `${org.name}（${orgKindName(org.kind)}）` : '—'],
          [t('admin.col.state'), statusBadges(user)],
          [t('admin.col.totp'), totpBadge(user.totp_enabled)],
          [t('admin.user_created'), formatDateTime(user.created_at)],
        ].map(([k, v]) => h('div', {class: 'dl-row'}, h('dt', null, k), h('dd', null, v))),
      ),
    );
  }

  let actionNotice = null;
  function drawActions() {
    const self = user.id === userId();
    const secretSlot = h('div', {class: 'secret-slot'});
    if (secret && secret.kind === 'password' && secret.path === current().path) {
      mount(
        secretSlot,
        secretPanel({
          title: t('admin.otp_title'),
          value: secret.data.one_time_password,
          test: 'admin-one-time-password',
          note: t('admin.otp_once'),
          details: `${user.display_name}（${user.username}）`,
          onDone: () => {
            secret = null;
            clear(secretSlot);
          },
        }),
      );
    }
    const box = h('div', {class: 'console-panel'});
    const fail = (err) => {
      showError(box, err);
    };

    async function act({title, body, confirmLabel, danger = true, button, run, done}) {
      const ok = await confirmDialog({title, body, confirmLabel, danger});
      if (!ok) return;
      let answer;
      try {
        answer = await busy(button, run);
      } catch (err) {
        fail(err);
        return;
      }
      done(answer);
    }

    const disableBtn = h(
      'button',
      {class: user.status === 'active' ? 'btn btn-danger-outline' : 'btn', type: 'button', 'data-test': user.status === 'active' ? 'admin-user-disable' : 'admin-user-enable'},
      t(user.status === 'active' ? 'admin.disable' : 'admin.enable'),
    );
    disableBtn.addEventListener('click', () => {
      const disabling = user.status === 'active';
      act({
        title: t(disabling ? 'admin.disable_title' : 'admin.enable_title', {name: user.display_name}),
        body: t(disabling ? 'admin.disable_body' : 'admin.enable_body'),
        confirmLabel: t(disabling ? 'admin.disable' : 'admin.enable'),
        danger: disabling,
        button: disableBtn,
        run: () => api('POST', `/api/admin/users/${encodeURIComponent(user.id)}/${disabling ? 'disable' : 'enable'}`),
        done: (u) => {
          user = u;
          actionNotice = t(disabling ? 'admin.disabled_ok' : 'admin.enabled_ok');
          drawHead();
          drawActions();
          loadSessions();
        },
      });
    });

    const resetPwBtn = h('button', {class: 'btn', type: 'button', 'data-test': 'admin-user-reset-password'}, t('admin.reset_password'));
    resetPwBtn.addEventListener('click', () =>
      act({
        title: t('admin.reset_password_title', {name: user.display_name}),
        body: t('admin.reset_password_body'),
        confirmLabel: t('admin.reset_password_confirm'),
        button: resetPwBtn,
        run: () => api('POST', `/api/admin/users/${encodeURIComponent(user.id)}/reset-password`),
        done: async (answer) => {
          secret = {path: current().path, kind: 'password', data: answer};
          user = {...user, must_change_password: true};
          drawHead();
          drawActions();
          loadSessions();
          const copy = actions.querySelector('[data-test="admin-one-time-password-copy"]');
          if (copy) copy.focus();
        },
      }),
    );

    const resetTotpBtn = h('button', {class: 'btn', type: 'button', 'data-test': 'admin-user-reset-totp'}, t('admin.reset_totp'));
    resetTotpBtn.addEventListener('click', () =>
      act({
        title: t('admin.reset_totp_title', {name: user.display_name}),
        body: t('admin.reset_totp_body'),
        confirmLabel: t('admin.reset_totp_confirm'),
        button: resetTotpBtn,
        run: () => api('POST', `/api/admin/users/${encodeURIComponent(user.id)}/reset-totp`),
        done: (u) => {
          user = u;
          actionNotice = t('admin.reset_totp_ok');
          drawHead();
          drawActions();
          loadSessions();
        },
      }),
    );

    mount(
      actions,
      h('h2', {class: 'section-title', id: 'admin-actions-title'}, t('admin.user_actions')),
      flashNode(actionNotice),
      secretSlot,
      self
        ? h('p', {class: 'console-note'}, t('admin.user_self_note'))
        : [
            box,
            user.role === 'system_admin' ? h('p', {class: 'console-note'}, t('admin.role_fixed')) : roleForm(),
          ],
    );
    mount(box, h('div', {class: 'action-row'}, disableBtn, resetPwBtn, resetTotpBtn));
    actionNotice = null;
  }

  function roleForm() {
    const f = makeForm();
    const roles = grantableRoles();
    const role = h(
      'select',
      {class: 'input', 'data-test': 'admin-user-role', value: roles.includes(user.role) ? user.role : roles[0]},
      roles.map((r) => h('option', {value: r}, roleName(r))),
    );
    const reason = h('textarea', {class: 'input', rows: '2', maxlength: '500', 'data-test': 'admin-user-role-reason'});
    const submit = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'admin-user-role-submit'}, t('admin.role_submit'));
    async function onSubmit(ev) {
      ev.preventDefault();
      f.clear();
      const body = {role: role.value, reason: reason.value.trim()};
      if (body.role === user.role) f.local('role', t('admin.role_same'));
      if (!body.reason) f.local('reason', t('console.required'));
      else if ([...body.reason].length > 500) f.local('reason', t('console.too_long', {max: 500}));
      if (f.focusFirstError()) return;
      const ok = await confirmDialog({
        title: t('admin.role_confirm_title', {name: user.display_name, role: roleName(body.role)}),
        body: t('admin.role_confirm_body'),
        confirmLabel: t('admin.role_confirm'),
      });
      if (!ok) return;
      try {
        user = await busy(submit, () => api('PUT', `/api/admin/users/${encodeURIComponent(user.id)}/role`, body));
      } catch (err) {
        f.apply(err);
        return;
      }
      actionNotice = t('admin.role_changed', {role: roleName(user.role)});
      drawHead();
      drawActions();
      loadSessions();
      loadGrants();
    }
    return f.form(
      {class: 'console-panel', 'aria-labelledby': 'admin-role-title', on: {submit: onSubmit}},
      h('h3', {class: 'subsection-title', id: 'admin-role-title'}, t('admin.role_title')),
      h(
        'div',
        {class: 'field-grid'},
        f.field('role', t('admin.role_new'), role, {required: true}),
        f.field('reason', t('admin.role_reason'), reason, {required: true, hint: t('admin.role_reason_hint'), className: 'field-wide'}),
      ),
      h('div', {class: 'form-actions'}, submit),
    );
  }

  let sessionsNotice = null;
  async function loadSessions() {
    const titleEl = h('h2', {class: 'section-title', id: 'admin-sessions-title'}, t('admin.sessions'));
    mount(sessions, titleEl, loading());
    let list;
    try {
      list = (await api('GET', `/api/admin/users/${encodeURIComponent(user.id)}/sessions`)) || [];
    } catch (err) {
      mount(sessions, titleEl, errorBlock(err, loadSessions));
      return;
    }
    const revokeAll = h(
      'button',
      {class: 'btn btn-danger-outline', type: 'button', 'data-test': 'admin-sessions-revoke'},
      t('admin.sessions_revoke_all'),
    );
    revokeAll.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: t('admin.sessions_revoke_title', {name: user.display_name}),
        body: t('admin.sessions_revoke_body'),
        confirmLabel: t('admin.sessions_revoke_confirm'),
      });
      if (!ok) return;
      try {
        await busy(revokeAll, () => api('DELETE', `/api/admin/users/${encodeURIComponent(user.id)}/sessions`));
      } catch (err) {
        showError(sessions, err);
        return;
      }
      sessionsNotice = t('admin.sessions_revoked');
      loadSessions();
    });
    mount(
      sessions,
      titleEl,
      flashNode(sessionsNotice),
      list.length
        ? table(sessionHeaders(), list.map((s) => h('tr', {'data-test': 'admin-session-row', 'data-session-id': s.id}, sessionCells(s))), {label: t('admin.sessions'), short: true})
        : h('p', {class: 'console-empty', 'data-test': 'admin-sessions-empty'}, t('admin.sessions_empty')),
      user.id === userId() || !list.length ? null : h('div', {class: 'form-actions form-actions-start'}, revokeAll),
    );
    sessionsNotice = null;
  }

  async function loadGrants() {
    const titleEl = h('h2', {class: 'section-title', id: 'admin-grants-title'}, t('admin.grants'));
    mount(grants, titleEl, loading());
    let list;
    try {
      list = (await api('GET', `/api/admin/users/${encodeURIComponent(user.id)}/role-grants`)) || [];
    } catch (err) {
      mount(grants, titleEl, errorBlock(err, loadGrants));
      return;
    }
    mount(
      grants,
      titleEl,
      list.length
        ? h(
            'ol',
            {class: 'grant-list'},
            [...list].reverse().map((g) =>
              h(
                'li',
                {class: 'grant-item', 'data-test': 'admin-role-grant'},
                h('p', {class: 'grant-head'}, h('span', {class: 'strong'}, roleName(g.role)), ' · ', formatDateTime(g.granted_at)),
                h('p', {class: 'grant-meta'}, g.granted_by ? t('admin.grant_by', {who: nameOf(g.granted_by)}) : t('admin.grant_by_system')),
                h('p', {class: 'grant-reason'}, g.reason),
              ),
            ),
          )
        : h('p', {class: 'console-empty'}, t('admin.grants_empty')),
    );
  }

  drawHead();
  drawActions();
  await Promise.all([loadSessions(), loadGrants()]);
}

// --- the admin's own sessions ----------------------------------------------------------------

async function ownSessions(section) {
  let notice = null;
  const titleEl = () => h('h2', {class: 'section-title', id: 'admin-own-title'}, t('admin.own_sessions'));
  async function load() {
    mount(section, titleEl(), loading());
    let list;
    try {
      list = (await api('GET', '/api/auth/sessions')) || [];
    } catch (err) {
      mount(section, titleEl(), errorBlock(err, load));
      return;
    }
    list.sort((a, b) => Number(b.current) - Number(a.current) || (a.last_seen_at < b.last_seen_at ? 1 : -1));
    const headers = [...sessionHeaders(), {label: t('admin.col.actions'), cls: 'col-actions'}];
    mount(
      section,
      titleEl(),
      h('p', {class: 'console-note'}, t('admin.own_sessions_help')),
      flashNode(notice),
      list.length
        ? table(
            headers,
            list.map((s) =>
              h(
                'tr',
                {'data-test': 'admin-own-session-row', 'data-session-id': s.id, 'data-current': s.current ? 'true' : 'false'},
                sessionCells(s),
                h(
                  'td',
                  {class: 'col-actions'},
                  s.current
                    ? null
                    : h('button', {class: 'btn btn-danger-outline', type: 'button', 'data-test': 'admin-own-session-revoke', on: {click: (ev) => revoke(s, ev.currentTarget)}}, t('admin.own_revoke')),
                ),
              ),
            ),
            {label: t('admin.own_sessions'), short: true},
          )
        : h('p', {class: 'console-empty'}, t('admin.sessions_empty')),
    );
    notice = null;
  }
  async function revoke(s, button) {
    const ok = await confirmDialog({title: t('admin.own_revoke_title'), body: t('admin.own_revoke_body'), confirmLabel: t('admin.own_revoke')});
    if (!ok) return;
    try {
      await busy(button, () => api('DELETE', `/api/auth/sessions/${encodeURIComponent(s.id)}`));
    } catch (err) {
      showError(section, err);
      return;
    }
    notice = t('admin.own_revoked');
    await load();
  }
  await load();
}

export function register() {
  addStrings(STRINGS);
  route('/admin', adminHome);
  route('/admin/organisations/:orgId', (view, params) => organisationPage(view, params));
  route('/admin/users/:userId', userPage);
}
