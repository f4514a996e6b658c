// The security officer's console: '/audit'.
//
// - Search (GET /api/audit/records): period (dates in Japan time), action or family, outcome,
//   user, room; a table of records, oldest first, paged forward with `after`.
// - Export (GET /api/audit/export?format=csv|jsonl|fhir&…): a download link for the current
//   filters.
// - Reports (GET /api/audit/reports/{kind}): per-account counts and the records found.
// - Verification of the tamper-evident log (GET /api/audit/verify).
// - Review sign-offs (GET/POST /api/audit/reviews).
//
// Everything here is metadata: the API never gives an officer clinical content.

import { h, clear, mount, uid } from '../core/dom.js';
import { t, has, addStrings, lang, formatDateTime, roleName, todayInJapan } from '../core/i18n.js';
import { api } from '../core/api.js';
import { route, href, current } from '../core/router.js';
import { isOfficer, userId } from '../core/session.js';
import { showError, loading } from '../core/shell.js';
import { makeForm, busy, errorBlock, labelTable, isDate, shiftDate } from '../core/ui.js';

const REPORTS = ['outside_care_team', 'out_of_hours', 'bulk_exports', 'failed_logins', 'many_refusals', 'clock_unsynchronised'];
const OUTCOMES = ['success', 'failure', 'refused'];
const FORMATS = ['csv', 'jsonl', 'fhir'];
const PAGE_SIZES = [50, 100, 200, 500];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// Action families and actions (docs/security.md, section 8), for the suggestions and labels.
const FAMILIES = ['auth.', 'identity.', 'admin.', 'directory.', 'room.', 'timeline.', 'attachment.', 'form.', 'sheet.', 'audit.', 'security.', 'system.'];
const ACTIONS = [
  'auth.login', 'auth.logout', 'auth.refresh', 'auth.password_change', 'auth.totp_enrol', 'auth.totp_confirm',
  'auth.session_list', 'auth.session_revoke', 'auth.session_expire', 'auth.policy_accept',
  'identity.invitation_accept',
  'admin.organisation_create', 'admin.organisation_update', 'admin.organisation_list', 'admin.organisation_view',
  'admin.invitation_create', 'admin.invitation_list', 'admin.invitation_revoke', 'admin.user_list', 'admin.user_view',
  'admin.role_grant', 'admin.user_disable', 'admin.user_enable', 'admin.password_reset', 'admin.totp_reset',
  'admin.session_list', 'admin.session_revoke', 'admin.system_admin_create', 'admin.form_template_create',
  'admin.room_purge', 'admin.room_key_rotate', 'admin.master_key_rotate',
  'directory.search',
  'room.list', 'room.create', 'room.view', 'room.patient_search', 'room.close', 'room.member_list', 'room.member_invite',
  'room.member_respond', 'room.member_leave', 'room.member_revoke', 'room.consent_list', 'room.consent_record',
  'room.consent_withdraw',
  'timeline.read', 'timeline.post', 'timeline.edit', 'timeline.delete', 'timeline.versions', 'timeline.acknowledge',
  'timeline.acknowledgements', 'timeline.mark_read',
  'attachment.upload', 'attachment.read', 'attachment.cleanup',
  'form.list', 'form.send', 'form.read', 'form.answer', 'form.acknowledge', 'form.correct', 'form.inbox', 'form.print', 'form.export',
  'sheet.read', 'sheet.update', 'sheet.confirm', 'sheet.history', 'sheet.print',
  'audit.search', 'audit.export', 'audit.report', 'audit.verify', 'audit.review_sign_off', 'audit.review_list',
  'security.integrity_failure', 'security.audit_integrity_failure',
  'system.clock_status',
];

const STRINGS = {
  ja: {
    'audit.title': '監査ログ',
    'audit.lead': '誰が、いつ、どこから、何に対して、何をしたかの記録です。診療の内容は含まれません。あなたの検索・書き出し・検証もすべて記録されます。',
    'audit.only_officers': 'この画面はセキュリティ責任者だけが使えます。',
    'audit.jump': 'この画面の内容',
    'audit.section.search': '記録の検索',
    'audit.section.reports': '確認用レポート',
    'audit.section.verify': '改ざん検証',
    'audit.section.reviews': '定期確認の記録',

    'audit.from': '開始日',
    'audit.to': '終了日',
    'audit.period_hint': '日本時間。終了日はその日の終わりまでを含みます。',
    'audit.action': '操作',
    'audit.action_hint': '例: auth.login、または auth. のように「.」で終わる種類名で一括指定',
    'audit.outcome': '結果',
    'audit.outcome_all': 'すべて',
    'audit.user': '利用者 ID',
    'audit.user_hint': '表の利用者 ID を押すと入ります',
    'audit.room': '患者ルーム ID',
    'audit.limit': '1ページの件数',
    'audit.search': '検索',
    'audit.reset': '条件を戻す',
    'audit.invalid_id': 'ID の形式が正しくありません（例: 0193a1b0-…）。',
    'audit.invalid_action': '英小文字・「.」・「_」で入力してください。',
    'audit.period_order': '開始日は終了日以前にしてください。',
    'audit.searching': '検索中…',
    'audit.results': '検索結果',
    'audit.results_summary': '{count}件を表示（{page}ページ目、古い順）',
    'audit.results_more': '続きがあります。',
    'audit.no_results': 'この条件に一致する記録はありません。',
    'audit.prev': '前のページ',
    'audit.next': '次のページ',
    'audit.not_placed': '未確定',
    'audit.col.time': '日時',
    'audit.col.actor': '利用者',
    'audit.col.action': '操作',
    'audit.col.object': '対象',
    'audit.col.outcome': '結果',
    'audit.col.reason': '詳細',
    'audit.col.source': '接続元',
    'audit.col.position': '位置',
    'audit.no_actor': '（利用者なし）',
    'audit.filter_user': 'この利用者で絞り込む: {id}',
    'audit.filter_room': 'この患者ルームで絞り込む: {id}',
    'audit.outcome.success': '成功',
    'audit.outcome.failure': '失敗',
    'audit.outcome.refused': '拒否',

    'audit.export': '書き出し',
    'audit.export_format': '形式',
    'audit.export_link': '{format} で書き出す',
    'audit.export_hint': '検索条件（期間・操作・結果・利用者・患者ルーム）に一致する記録を最大10万件まで書き出します。書き出しも記録されます。',
    'audit.export_invalid': '検索条件を直すと書き出せます。',
    'audit.format.csv': 'CSV（Excel 用、BOM 付き）',
    'audit.format_short.csv': 'CSV',
    'audit.format_short.jsonl': 'JSON Lines',
    'audit.format_short.fhir': 'FHIR',
    'audit.format.jsonl': 'JSON Lines',
    'audit.format.fhir': 'FHIR AuditEvent（NDJSON）',

    'audit.report': 'レポート',
    'audit.report_choose': 'レポートを選んでください',
    'audit.report_from': '開始日',
    'audit.report_to': '終了日',
    'audit.report_run': 'レポートを表示',
    'audit.report_running': '集計中…',
    'audit.report_period': '期間: {from} 〜 {until}',
    'audit.report_truncated': '該当が多いため、最初の10,000件だけを表示しています。期間を短くしてください。',
    'audit.report_counts': '利用者ごとの件数',
    'audit.report_records': '該当する記録（{count}件）',
    'audit.report_empty': '該当する記録はありません。',
    'audit.report_no_counts': '件数の集計はありません。',
    'audit.col.account': '利用者 ID',
    'audit.col.count': '件数',
    'audit.unknown_account': 'アカウントなし（存在しない名前でのログイン試行）',
    'audit.report.outside_care_team': 'ケアチーム外からのアクセス',
    'audit.report.out_of_hours': '時間外のアクセス',
    'audit.report.bulk_exports': '書き出し・大量閲覧',
    'audit.report.failed_logins': 'ログイン失敗',
    'audit.report.many_refusals': '拒否の多い利用者',
    'audit.report.clock_unsynchronised': 'サーバー時計の非同期',
    'audit.report_desc.outside_care_team': '患者ルームのメンバーでない人による、患者ルームへのアクセスや試み。',
    'audit.report_desc.out_of_hours': '業務時間外（日本時間）に患者情報へアクセスした記録。',
    'audit.report_desc.bulk_exports': '監査ログの書き出しと、患者情報を多く閲覧した利用者。',
    'audit.report_desc.failed_logins': 'ログインの失敗とロック。',
    'audit.report_desc.many_refusals': '期間中に何度も操作を拒否された利用者。',
    'audit.report_desc.clock_unsynchronised': 'サーバーの時計が時刻源と同期していなかった期間（記録の時刻の信頼性に関わります）。',

    'audit.verify': '改ざん検証を実行',
    'audit.verify_help': 'すべての記録の MAC、ハッシュチェーン、署名付きチェックポイント（データベース外の控えを含む）を確認します。記録が多いと時間がかかります。',
    'audit.verifying': '検証中…',
    'audit.verify_ok': '問題は見つかりませんでした。',
    'audit.verify_bad': '改ざんまたは破損の可能性があります。',
    'audit.verify_first_bad': '位置 {position} 以降の記録は信頼できません。',
    'audit.verify_size': '確認した記録: {size}件',
    'audit.verify_checkpoints': '確認した署名: {checkpoints}件',
    'audit.verify_pending': '未確定の記録: {pending}件（数秒で確定します）',
    'audit.verify_problems': '見つかった問題（英語）',
    'audit.clock': 'サーバー時計: {state}（{source}、{at} 時点）',
    'audit.clock.synchronised': '同期しています',
    'audit.clock.unsynchronised': '同期していません',
    'audit.clock.unknown': '不明',
    'audit.clock_source_unknown': '確認方法なし',

    'audit.signoff_title': '定期確認の記録を残す',
    'audit.signoff_help': '確認した期間と、見つかったこと・対応したことを記録します。記録は変更できません。',
    'audit.signoff_start': '確認した期間の開始日',
    'audit.signoff_end': '確認した期間の終了日',
    'audit.signoff_end_hint': '今日を選ぶと現在時刻までになります。',
    'audit.signoff_findings': '所見と対応',
    'audit.signoff_findings_hint': '1〜4000文字。例: 時間外アクセス3件は夜間往診に伴うものと確認。',
    'audit.signoff': '確認を記録する',
    'audit.signoff_done': '確認を記録しました（記録の位置 {position} まで）。',
    'audit.future_date': '今日より後の日付は指定できません。',
    'audit.reviews_title': 'これまでの確認',
    'audit.reviews_empty': '確認の記録はまだありません。',
    'audit.review_period': '{from} 〜 {until}',
    'audit.review_by': '{who}、{at}',
    'audit.review_through': '位置 {position} までの記録',
    'audit.you': 'あなた',

    'audit.family.auth.': '認証（すべて）',
    'audit.family.identity.': '招待の受諾（すべて）',
    'audit.family.admin.': '管理（すべて）',
    'audit.family.directory.': '利用者検索（すべて）',
    'audit.family.room.': '患者ルーム（すべて）',
    'audit.family.timeline.': 'タイムライン（すべて）',
    'audit.family.attachment.': '添付ファイル（すべて）',
    'audit.family.form.': '書式（すべて）',
    'audit.family.sheet.': '緊急時情報（すべて）',
    'audit.family.audit.': '監査（すべて）',
    'audit.family.security.': 'セキュリティ（すべて）',
    'audit.family.system.': 'システム（すべて）',
  },
  en: {
    'audit.title': 'Audit trail',
    'audit.lead': 'Who did what, when, from where and on what. No clinical content. Your own searches, exports and checks are recorded too.',
    'audit.only_officers': 'This screen is for security officers only.',
    'audit.jump': 'On this screen',
    'audit.section.search': 'Search the records',
    'audit.section.reports': 'Review reports',
    'audit.section.verify': 'Tamper check',
    'audit.section.reviews': 'Review sign-offs',

    'audit.from': 'From',
    'audit.to': 'To',
    'audit.period_hint': 'Japan time; the end date is included to its end.',
    'audit.action': 'Action',
    'audit.action_hint': 'e.g. auth.login, or a family ending in "." such as auth.',
    'audit.outcome': 'Outcome',
    'audit.outcome_all': 'All',
    'audit.user': 'User id',
    'audit.user_hint': 'Tap a user id in the table to fill it in',
    'audit.room': 'Patient room id',
    'audit.limit': 'Records per page',
    'audit.search': 'Search',
    'audit.reset': 'Reset',
    'audit.invalid_id': 'This is not an id (e.g. 0193a1b0-…).',
    'audit.invalid_action': 'Use lower-case letters, "." and "_".',
    'audit.period_order': 'The start date must not be after the end date.',
    'audit.searching': 'Searching…',
    'audit.results': 'Results',
    'audit.results_summary': '{count} records (page {page}, oldest first)',
    'audit.results_more': 'There are more.',
    'audit.no_results': 'No record matches these filters.',
    'audit.prev': 'Previous page',
    'audit.next': 'Next page',
    'audit.not_placed': 'pending',
    'audit.col.time': 'Time',
    'audit.col.actor': 'User',
    'audit.col.action': 'Action',
    'audit.col.object': 'Object',
    'audit.col.outcome': 'Outcome',
    'audit.col.reason': 'Details',
    'audit.col.source': 'Source',
    'audit.col.position': 'Position',
    'audit.no_actor': '(no user)',
    'audit.filter_user': 'Filter by this user: {id}',
    'audit.filter_room': 'Filter by this patient room: {id}',
    'audit.outcome.success': 'Success',
    'audit.outcome.failure': 'Failure',
    'audit.outcome.refused': 'Refused',

    'audit.export': 'Export',
    'audit.export_format': 'Format',
    'audit.export_link': 'Export as {format}',
    'audit.export_hint': 'Exports up to 100,000 records matching the search filters (period, action, outcome, user, room). The export is recorded.',
    'audit.export_invalid': 'Correct the search filters to export.',
    'audit.format.csv': 'CSV (for Excel, with BOM)',
    'audit.format_short.csv': 'CSV',
    'audit.format_short.jsonl': 'JSON Lines',
    'audit.format_short.fhir': 'FHIR',
    'audit.format.jsonl': 'JSON Lines',
    'audit.format.fhir': 'FHIR AuditEvent (NDJSON)',

    'audit.report': 'Report',
    'audit.report_choose': 'Choose a report',
    'audit.report_from': 'From',
    'audit.report_to': 'To',
    'audit.report_run': 'Show the report',
    'audit.report_running': 'Working…',
    'audit.report_period': 'Period: {from} – {until}',
    'audit.report_truncated': 'Many records match: only the first 10,000 are shown. Shorten the period.',
    'audit.report_counts': 'Records per user',
    'audit.report_records': 'Records found ({count})',
    'audit.report_empty': 'Nothing found.',
    'audit.report_no_counts': 'No counts for this report.',
    'audit.col.account': 'User id',
    'audit.col.count': 'Count',
    'audit.unknown_account': 'No account (login attempts on unknown names)',
    'audit.report.outside_care_team': 'Access outside the care team',
    'audit.report.out_of_hours': 'Out-of-hours access',
    'audit.report.bulk_exports': 'Exports and large reads',
    'audit.report.failed_logins': 'Failed logins',
    'audit.report.many_refusals': 'Users refused many times',
    'audit.report.clock_unsynchronised': 'Server clock not synchronised',
    'audit.report_desc.outside_care_team': 'Access to, or attempts on, a patient room by someone who is not a member of its care team.',
    'audit.report_desc.out_of_hours': 'Access to patient information outside office hours (Japan time).',
    'audit.report_desc.bulk_exports': 'Audit exports, and users who read much patient information.',
    'audit.report_desc.failed_logins': 'Failed logins and lockouts.',
    'audit.report_desc.many_refusals': 'Users refused many times in the period.',
    'audit.report_desc.clock_unsynchronised': 'Periods in which the server clock was not synchronised (this affects how far record times can be trusted).',

    'audit.verify': 'Run the tamper check',
    'audit.verify_help': 'Checks every record\'s MAC, the hash chain and the signed checkpoints (including the copies outside the database). This takes a while on a large log.',
    'audit.verifying': 'Checking…',
    'audit.verify_ok': 'No problem found.',
    'audit.verify_bad': 'The log may have been tampered with or damaged.',
    'audit.verify_first_bad': 'Records from position {position} on cannot be trusted.',
    'audit.verify_size': 'Records checked: {size}',
    'audit.verify_checkpoints': 'Signatures checked: {checkpoints}',
    'audit.verify_pending': 'Records not placed yet: {pending} (placed within seconds)',
    'audit.verify_problems': 'Problems found',
    'audit.clock': 'Server clock: {state} ({source}, as of {at})',
    'audit.clock.synchronised': 'synchronised',
    'audit.clock.unsynchronised': 'not synchronised',
    'audit.clock.unknown': 'unknown',
    'audit.clock_source_unknown': 'no way to tell',

    'audit.signoff_title': 'Sign off a review',
    'audit.signoff_help': 'Record the period you reviewed and what you found and did. Sign-offs cannot be changed.',
    'audit.signoff_start': 'Start of the period reviewed',
    'audit.signoff_end': 'End of the period reviewed',
    'audit.signoff_end_hint': 'Today means up to now.',
    'audit.signoff_findings': 'Findings and actions',
    'audit.signoff_findings_hint': '1–4000 characters. E.g. the 3 out-of-hours reads were night visits.',
    'audit.signoff': 'Sign off',
    'audit.signoff_done': 'Signed off (records up to position {position}).',
    'audit.future_date': 'The date cannot be after today.',
    'audit.reviews_title': 'Past sign-offs',
    'audit.reviews_empty': 'No review has been signed off yet.',
    'audit.review_period': '{from} – {until}',
    'audit.review_by': '{who}, {at}',
    'audit.review_through': 'Records up to position {position}',
    'audit.you': 'you',

    'audit.family.auth.': 'Authentication (all)',
    'audit.family.identity.': 'Invitation acceptance (all)',
    'audit.family.admin.': 'Administration (all)',
    'audit.family.directory.': 'Directory search (all)',
    'audit.family.room.': 'Patient rooms (all)',
    'audit.family.timeline.': 'Timeline (all)',
    'audit.family.attachment.': 'Attachments (all)',
    'audit.family.form.': 'Forms (all)',
    'audit.family.sheet.': 'Emergency sheet (all)',
    'audit.family.audit.': 'Audit (all)',
    'audit.family.security.': 'Security (all)',
    'audit.family.system.': 'System (all)',
  },
};

// ---------------------------------------------------------------------------------------------
// Times

/** The instant a Japan date starts, as RFC 3339. */
function startOfDay(date) {
  return `${date}T00:00:00+09:00`;
}

/** The instant after a Japan date ends (exclusive bound). */
function endOfDay(date) {
  return `${shiftDate(date, -1)}T00:00:00+09:00`;
}

/** 2026/11/21 18:30:05 in Japan time: audit records need the seconds. */
function formatSeconds(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(lang() === 'ja' ? 'ja-JP' : 'en-GB', {
    timeZone: 'Asia/Tokyo',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  }).format(d);
}

// ---------------------------------------------------------------------------------------------
// Record tables

function outcomeBadge(outcome) {
  const cls = outcome === 'success' ? 'badge-ok' : outcome === 'refused' ? 'badge-danger' : 'badge-warning';
  return h('span', {class: `badge ${cls}`, 'data-outcome': outcome}, OUTCOMES.includes(outcome) ? t(`audit.outcome.${outcome}`) : outcome);
}

/**
 * A table of audit records. opts: {test: data-test of the rows, onUser(id), onRoom(id)}: the
 * user and room ids become buttons that filter the search.
 */
function recordsTable(records, opts) {
  const me = userId();
  const idButton = (id, label, fn, test) =>
    fn
      ? h('button', {type: 'button', class: 'link-button audit-id', title: label, 'aria-label': label, 'data-test': test, on: {click: () => fn(id)}}, id)
      : h('span', {class: 'audit-id'}, id);
  return h(
    'div',
    {class: 'table-scroll cards-narrow', tabindex: '0', role: 'region', 'aria-label': opts.label},
    labelTable(h(
      'table',
      {class: 'console-table audit-table'},
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          ['time', 'actor', 'action', 'object', 'outcome', 'reason', 'source'].map((c) =>
            h('th', {scope: 'col', class: `col-${c}`}, t(`audit.col.${c}`)),
          ),
        ),
      ),
      h(
        'tbody',
        null,
        records.map((r) =>
          h(
            'tr',
            {'data-test': opts.test, 'data-action': r.action, 'data-outcome': r.outcome, 'data-id': String(r.id)},
            h(
              'td',
              {class: 'col-time'},
              h('span', {class: 'nowrap'}, formatSeconds(r.occurred_at)),
              h('span', {class: 'audit-sub'}, `#${r.position ?? t('audit.not_placed')}`),
            ),
            h(
              'td',
              {class: 'col-actor'},
              r.actor_role ? h('span', {class: 'audit-role'}, roleName(r.actor_role)) : null,
              r.actor_user_id
                ? [
                    r.actor_user_id === me ? h('span', {class: 'badge badge-self'}, t('audit.you')) : null,
                    idButton(r.actor_user_id, t('audit.filter_user', {id: r.actor_user_id}), opts.onUser, 'audit-filter-user'),
                  ]
                : h('span', {class: 'muted'}, t('audit.no_actor')),
            ),
            h('td', {class: 'col-action'}, actionLabel(r.action)),
            h(
              'td',
              {class: 'col-object'},
              r.object_type ? h('span', {class: 'audit-sub'}, r.object_type) : null,
              r.object_id
                ? r.object_type === 'room' && UUID.test(r.object_id)
                  ? idButton(r.object_id, t('audit.filter_room', {id: r.object_id}), opts.onRoom, 'audit-filter-room')
                  : h('span', {class: 'audit-id'}, r.object_id)
                : null,
            ),
            h('td', {class: 'col-outcome'}, outcomeBadge(r.outcome)),
            h('td', {class: 'col-reason'}, r.reason ? h('span', {class: 'audit-reason'}, r.reason) : null),
            h(
              'td',
              {class: 'col-source'},
              r.source_address ? h('span', {class: 'audit-id'}, r.source_address) : null,
              r.user_agent ? h('span', {class: 'audit-sub audit-ua', title: r.user_agent}, r.user_agent) : null,
            ),
          ),
        ),
      ),
    )),
  );
}

function actionLabel(action) {
  const key = `audit.action.${action}`;
  return [
    has(key) ? h('span', {class: 'audit-action-label'}, t(key)) : null,
    h('code', {class: 'audit-action-code'}, action),
  ];
}

// ---------------------------------------------------------------------------------------------
// The screen

async function screen(view, params, query) {
  const page = h('div', {class: 'console audit-screen'});
  mount(view, page);
  if (!isOfficer()) {
    mount(page, h('h1', {class: 'page-title'}, t('audit.title')), h('p', {class: 'console-empty', 'data-test': 'error'}, t('audit.only_officers')));
    return;
  }
  const sections = {
    search: h('section', {class: 'console-section', id: 'audit-search-section', 'aria-labelledby': 'audit-h-search'}),
    reports: h('section', {class: 'console-section', id: 'audit-reports-section', 'aria-labelledby': 'audit-h-reports'}),
    verify: h('section', {class: 'console-section', id: 'audit-verify-section', 'aria-labelledby': 'audit-h-verify'}),
    reviews: h('section', {class: 'console-section', id: 'audit-reviews-section', 'aria-labelledby': 'audit-h-reviews'}),
  };
  mount(
    page,
    h('h1', {class: 'page-title'}, t('audit.title')),
    h('p', {class: 'console-lead'}, t('audit.lead')),
    h(
      'nav',
      {class: 'console-jump', 'aria-label': t('audit.jump')},
      Object.entries(sections).map(([key, el]) =>
        h('button', {type: 'button', class: 'btn btn-quiet', on: {click: () => el.scrollIntoView({block: 'start', behavior: 'smooth'})}}, t(`audit.section.${key}`)),
      ),
    ),
    sections.search,
    sections.reports,
    sections.verify,
    sections.reviews,
  );
  searchSection(sections.search, query || {});
  reportsSection(sections.reports);
  verifySection(sections.verify);
  reviewsSection(sections.reviews);
}

// --- search and export -----------------------------------------------------------------------

function searchSection(section, query) {
  const f = makeForm();
  const today = todayInJapan();
  const from = h('input', {type: 'date', class: 'input', max: today, value: isDate(query.from) ? query.from : today, 'data-test': 'audit-from'});
  const to = h('input', {type: 'date', class: 'input', max: today, value: isDate(query.to) ? query.to : today, 'data-test': 'audit-to'});
  const listId = uid('audit-actions');
  const action = h('input', {
    type: 'text',
    class: 'input',
    list: listId,
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
    maxlength: '64',
    value: query.action || '',
    'data-test': 'audit-action',
  });
  const datalist = h(
    'datalist',
    {id: listId},
    FAMILIES.map((fam) => h('option', {value: fam, label: t(`audit.family.${fam}`)})),
    ACTIONS.map((a) => h('option', {value: a})),
  );
  const outcome = h(
    'select',
    {class: 'input', 'data-test': 'audit-outcome', value: OUTCOMES.includes(query.outcome) ? query.outcome : ''},
    h('option', {value: ''}, t('audit.outcome_all')),
    OUTCOMES.map((o) => h('option', {value: o}, t(`audit.outcome.${o}`))),
  );
  const user = h('input', {type: 'text', class: 'input mono', autocomplete: 'off', spellcheck: 'false', maxlength: '36', value: query.user || '', 'data-test': 'audit-user'});
  const room = h('input', {type: 'text', class: 'input mono', autocomplete: 'off', spellcheck: 'false', maxlength: '36', value: query.room || '', 'data-test': 'audit-room'});
  const limit = h(
    'select',
    {class: 'input', 'data-test': 'audit-limit', value: String(PAGE_SIZES.includes(Number(query.limit)) ? Number(query.limit) : 100)},
    PAGE_SIZES.map((n) => h('option', {value: String(n)}, String(n))),
  );
  const submit = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'audit-search'}, t('audit.search'));
  const reset = h('button', {class: 'btn', type: 'button', 'data-test': 'audit-reset'}, t('audit.reset'));

  const exportFormat = h(
    'select',
    {class: 'input', 'data-test': 'audit-export-format', value: 'csv'},
    FORMATS.map((fmt) => h('option', {value: fmt}, t(`audit.format.${fmt}`))),
  );
  const exportLink = h('a', {class: 'btn', 'data-test': 'audit-export', download: ''});
  const exportNote = h('p', {class: 'field-hint'}, t('audit.export_hint'));
  const results = h('div', {class: 'audit-results', 'aria-live': 'polite'});

  // Paging: the `after` of each page shown so far (the first page has none).
  let pages = [null];
  let shownFilters = null;

  /** The filters of the form, or null (with field errors) when they are not valid. */
  function readFilters(showErrors) {
    const problems = [];
    const vFrom = from.value.trim();
    const vTo = to.value.trim();
    const vAction = action.value.trim();
    const vUser = user.value.trim();
    const vRoom = room.value.trim();
    if (vFrom && !isDate(vFrom)) problems.push(['from', t('console.invalid_date')]);
    if (vTo && !isDate(vTo)) problems.push(['until', t('console.invalid_date')]);
    if (vFrom && vTo && isDate(vFrom) && isDate(vTo) && vFrom > vTo) problems.push(['from', t('audit.period_order')]);
    if (vAction && !/^[a-z._]{1,64}$/.test(vAction)) problems.push(['action', t('audit.invalid_action')]);
    if (vUser && !UUID.test(vUser)) problems.push(['user', t('audit.invalid_id')]);
    if (vRoom && !UUID.test(vRoom)) problems.push(['room', t('audit.invalid_id')]);
    if (showErrors) for (const [path, text] of problems) f.local(path, text);
    if (problems.length) return null;
    const filters = {};
    if (vFrom) filters.from = startOfDay(vFrom);
    if (vTo) filters.until = endOfDay(vTo);
    if (vAction) filters.action = vAction;
    if (outcome.value) filters.outcome = outcome.value;
    if (vUser) filters.user = vUser.toLowerCase();
    if (vRoom) filters.room = vRoom.toLowerCase();
    return filters;
  }

  function updateExport() {
    const filters = readFilters(false);
    const fmt = exportFormat.value;
    mount(exportLink, t('audit.export_link', {format: t(`audit.format_short.${fmt}`)}));
    if (!filters) {
      exportLink.removeAttribute('href');
      exportLink.setAttribute('aria-disabled', 'true');
      exportNote.textContent = t('audit.export_invalid');
      return;
    }
    const qs = new URLSearchParams({format: fmt, ...filters});
    exportLink.setAttribute('href', `/api/audit/export?${qs}`);
    exportLink.removeAttribute('aria-disabled');
    exportNote.textContent = t('audit.export_hint');
  }

  // The download is a plain link (the browser sends the session cookie); make sure the access
  // token is fresh first, or the download would be a token_expired answer.
  let freshened = false;
  exportLink.addEventListener('click', async (ev) => {
    if (!exportLink.getAttribute('href')) {
      ev.preventDefault();
      return;
    }
    if (freshened) {
      freshened = false;
      return;
    }
    ev.preventDefault();
    try {
      await api('GET', '/api/auth/me');
    } catch (err) {
      showError(section, err);
      return;
    }
    freshened = true;
    exportLink.click();
  });

  for (const el of [from, to, action, outcome, user, room]) {
    el.addEventListener('input', updateExport);
    el.addEventListener('change', updateExport);
  }
  exportFormat.addEventListener('change', updateExport);

  /** Keeps the filters in the address, so that a reload shows the same search. */
  function remember() {
    const qs = new URLSearchParams();
    for (const [k, el] of [['from', from], ['to', to], ['action', action], ['outcome', outcome], ['user', user], ['room', room]]) {
      if (el.value.trim()) qs.set(k, el.value.trim());
    }
    if (limit.value !== '100') qs.set('limit', limit.value);
    const target = href(`/audit${qs.toString() ? `?${qs}` : ''}`);
    if (current().pattern === '/audit' && location.hash !== target) history.replaceState(null, '', target);
  }

  async function run(pageIndex, scroll = pageIndex > 0) {
    const filters = pageIndex === 0 ? readFilters(true) : shownFilters;
    if (!filters) {
      f.focusFirstError();
      return;
    }
    const qs = new URLSearchParams({...filters, limit: limit.value});
    const after = pages[pageIndex];
    if (after !== null && after !== undefined) qs.set('after', String(after));
    mount(results, loading(t('audit.searching')));
    let answer;
    try {
      answer = await busy(submit, () => api('GET', `/api/audit/records?${qs}`));
    } catch (err) {
      clear(results);
      f.apply(err);
      return;
    }
    if (pageIndex === 0) {
      pages = [null];
      shownFilters = filters;
      remember();
    }
    if (answer.next_after !== undefined && answer.next_after !== null) pages[pageIndex + 1] = answer.next_after;
    else pages.length = pageIndex + 1;
    showPage(answer, pageIndex);
    if (scroll) results.scrollIntoView({block: 'start'});
  }

  function showPage(answer, pageIndex) {
    const records = answer.records || [];
    const more = pages.length > pageIndex + 1;
    const pager = (suffix) =>
      h(
        'div',
        {class: 'pager'},
        h(
          'button',
          {class: 'btn', type: 'button', 'data-test': `audit-prev${suffix}`, disabled: pageIndex === 0, on: {click: () => run(pageIndex - 1, true)}},
          t('audit.prev'),
        ),
        h('span', {class: 'pager-state'}, t('audit.results_summary', {count: records.length, page: pageIndex + 1}), more ? ` ${t('audit.results_more')}` : ''),
        h(
          'button',
          {class: 'btn', type: 'button', 'data-test': `audit-next${suffix}`, disabled: !more, on: {click: () => run(pageIndex + 1)}},
          t('audit.next'),
        ),
      );
    mount(
      results,
      h('h3', {class: 'subsection-title', id: 'audit-results-title'}, t('audit.results')),
      records.length
        ? [
            pager(''),
            recordsTable(records, {
              test: 'audit-row',
              label: t('audit.results'),
              onUser: (id) => {
                user.value = id;
                updateExport();
                run(0);
              },
              onRoom: (id) => {
                room.value = id;
                updateExport();
                run(0);
              },
            }),
            records.length > 10 ? pager('-bottom') : null,
          ]
        : h('p', {class: 'console-empty', 'data-test': 'audit-empty'}, t('audit.no_results')),
    );
  }

  reset.addEventListener('click', () => {
    f.clear();
    from.value = todayInJapan();
    to.value = todayInJapan();
    action.value = '';
    outcome.value = '';
    user.value = '';
    room.value = '';
    limit.value = '100';
    updateExport();
    run(0);
  });

  const form = f.form(
    {
      class: 'console-panel audit-form',
      on: {
        submit: (ev) => {
          ev.preventDefault();
          f.clear();
          run(0);
        },
      },
    },
    h(
      'div',
      {class: 'field-grid'},
      f.field('from', t('audit.from'), from),
      f.field('until', t('audit.to'), to, {hint: t('audit.period_hint')}),
      f.field('action', t('audit.action'), action, {hint: t('audit.action_hint')}),
      f.field('outcome', t('audit.outcome'), outcome),
      f.field('user', t('audit.user'), user, {hint: t('audit.user_hint')}),
      f.field('room', t('audit.room'), room),
      f.field('limit', t('audit.limit'), limit),
    ),
    datalist,
    h('div', {class: 'form-actions'}, reset, submit),
  );

  mount(
    section,
    h('h2', {class: 'section-title', id: 'audit-h-search'}, t('audit.section.search')),
    form,
    h(
      'div',
      {class: 'console-panel audit-export'},
      h('h3', {class: 'subsection-title'}, t('audit.export')),
      h('div', {class: 'export-row'}, field(t('audit.export_format'), exportFormat), exportLink),
      exportNote,
    ),
    results,
  );
  updateExport();
  run(0);
}

/** A plain labelled control (not tied to server field errors). */
function field(label, input) {
  if (!input.id) input.id = uid('f');
  return h('div', {class: 'field'}, h('label', {for: input.id}, label), input);
}

// --- reports ---------------------------------------------------------------------------------

function reportsSection(section) {
  const f = makeForm();
  const today = todayInJapan();
  const kind = h(
    'select',
    {class: 'input', 'data-test': 'audit-report', value: ''},
    h('option', {value: ''}, t('audit.report_choose')),
    REPORTS.map((k) => h('option', {value: k}, t(`audit.report.${k}`))),
  );
  const from = h('input', {type: 'date', class: 'input', max: today, value: shiftDate(today, 30), 'data-test': 'audit-report-from'});
  const to = h('input', {type: 'date', class: 'input', max: today, value: today, 'data-test': 'audit-report-to'});
  const runButton = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'audit-report-run'}, t('audit.report_run'));
  const output = h('div', {class: 'audit-report-output', 'aria-live': 'polite'});
  let seq = 0;

  async function run() {
    f.clear();
    const k = kind.value;
    if (!k) {
      clear(output);
      return;
    }
    const vFrom = from.value.trim();
    const vTo = to.value.trim();
    if (!isDate(vFrom)) f.local('from', t('console.invalid_date'));
    if (!isDate(vTo)) f.local('until', t('console.invalid_date'));
    else if (isDate(vFrom) && vFrom > vTo) f.local('from', t('audit.period_order'));
    if (f.focusFirstError()) return;
    const qs = new URLSearchParams({from: startOfDay(vFrom), until: endOfDay(vTo)});
    const mySeq = ++seq;
    mount(output, loading(t('audit.report_running')));
    let report;
    try {
      report = await busy(runButton, () => api('GET', `/api/audit/reports/${encodeURIComponent(k)}?${qs}`));
    } catch (err) {
      if (mySeq !== seq) return;
      clear(output);
      f.apply(err);
      return;
    }
    if (mySeq !== seq) return;
    showReport(report);
  }

  function showReport(report) {
    const counts = report.counts || [];
    const records = report.records || [];
    mount(
      output,
      h(
        'div',
        {class: 'audit-report-result', 'data-test': 'audit-report-result', 'data-kind': report.kind},
        h('h3', {class: 'subsection-title'}, t(`audit.report.${report.kind}`)),
        h('p', {class: 'console-note'}, t(`audit.report_desc.${report.kind}`)),
        h('p', {class: 'console-note'}, t('audit.report_period', {from: formatDateTime(report.from), until: formatDateTime(report.until)})),
        report.truncated ? h('p', {class: 'console-warning', role: 'alert'}, t('audit.report_truncated')) : null,
        report.kind === 'clock_unsynchronised'
          ? null
          : [
              h('h4', {class: 'minor-title'}, t('audit.report_counts')),
              counts.length
                ? h(
                    'div',
                    {class: 'table-scroll table-short cards-narrow'},
                    labelTable(h(
                      'table',
                      {class: 'console-table'},
                      h('thead', null, h('tr', null, h('th', {scope: 'col'}, t('audit.col.account')), h('th', {scope: 'col', class: 'num'}, t('audit.col.count')))),
                      h(
                        'tbody',
                        null,
                        counts.map((c) =>
                          h(
                            'tr',
                            {'data-test': 'audit-report-count', 'data-account': c.account},
                            h('td', null, c.account === 'unknown' ? t('audit.unknown_account') : h('span', {class: 'audit-id'}, c.account)),
                            h('td', {class: 'num'}, String(c.count)),
                          ),
                        ),
                      ),
                    )),
                  )
                : h('p', {class: 'console-empty'}, t('audit.report_no_counts')),
            ],
        h('h4', {class: 'minor-title'}, t('audit.report_records', {count: records.length})),
        records.length
          ? recordsTable(records, {test: 'audit-report-row', label: t(`audit.report.${report.kind}`)})
          : h('p', {class: 'console-empty', 'data-test': 'audit-report-empty'}, t('audit.report_empty')),
      ),
    );
  }

  kind.addEventListener('change', run);

  mount(
    section,
    h('h2', {class: 'section-title', id: 'audit-h-reports'}, t('audit.section.reports')),
    f.form(
      {
        class: 'console-panel',
        on: {
          submit: (ev) => {
            ev.preventDefault();
            run();
          },
        },
      },
      h(
        'div',
        {class: 'field-grid'},
        f.field('kind', t('audit.report'), kind),
        f.field('from', t('audit.report_from'), from),
        f.field('until', t('audit.report_to'), to),
      ),
      h('div', {class: 'form-actions'}, runButton),
    ),
    output,
  );
}

// --- verification ----------------------------------------------------------------------------

function verifySection(section) {
  const button = h('button', {class: 'btn btn-primary', type: 'button', 'data-test': 'audit-verify'}, t('audit.verify'));
  const output = h('div', {class: 'audit-verify-output', 'aria-live': 'polite'});

  button.addEventListener('click', async () => {
    mount(output, loading(t('audit.verifying')));
    let v;
    try {
      v = await busy(button, () => api('GET', '/api/audit/verify'));
    } catch (err) {
      clear(output);
      showError(output, err);
      return;
    }
    const clock = v.clock || {};
    mount(
      output,
      h(
        'div',
        {
          class: `verify-result ${v.clean ? 'verify-ok' : 'verify-bad'}`,
          'data-test': 'audit-verify-result',
          'data-clean': v.clean ? 'true' : 'false',
          role: v.clean ? 'status' : 'alert',
        },
        h('p', {class: 'verify-headline'}, h('span', {class: 'verify-mark', 'aria-hidden': 'true'}, v.clean ? '✓' : '✕'), ' ', t(v.clean ? 'audit.verify_ok' : 'audit.verify_bad')),
        v.first_bad_position !== undefined && v.first_bad_position !== null
          ? h('p', {class: 'verify-first-bad', 'data-test': 'audit-verify-first-bad'}, t('audit.verify_first_bad', {position: v.first_bad_position}))
          : null,
        h(
          'ul',
          {class: 'verify-facts'},
          h('li', null, t('audit.verify_size', {size: v.size})),
          h('li', null, t('audit.verify_checkpoints', {checkpoints: v.checkpoints})),
          v.pending ? h('li', null, t('audit.verify_pending', {pending: v.pending})) : null,
          clock.state
            ? h(
                'li',
                {class: clock.state === 'synchronised' ? null : 'text-warning'},
                t('audit.clock', {
                  state: t(`audit.clock.${clock.state}`),
                  source: clock.source || t('audit.clock_source_unknown'),
                  at: formatDateTime(clock.checked_at),
                }),
              )
            : null,
        ),
        v.problems && v.problems.length
          ? [
              h('h4', {class: 'minor-title'}, t('audit.verify_problems')),
              h('ul', {class: 'verify-problems', lang: 'en'}, v.problems.map((p) => h('li', null, p))),
            ]
          : null,
      ),
    );
  });

  mount(
    section,
    h('h2', {class: 'section-title', id: 'audit-h-verify'}, t('audit.section.verify')),
    h('div', {class: 'console-panel'}, h('p', {class: 'console-note'}, t('audit.verify_help')), h('div', {class: 'form-actions form-actions-start'}, button), output),
  );
}

// --- review sign-offs ------------------------------------------------------------------------

function reviewsSection(section) {
  const f = makeForm();
  const today = todayInJapan();
  const start = h('input', {type: 'date', class: 'input', max: today, value: shiftDate(today, 30), 'data-test': 'audit-signoff-start'});
  const end = h('input', {type: 'date', class: 'input', max: today, value: today, 'data-test': 'audit-signoff-end'});
  const findings = h('textarea', {class: 'input', rows: '4', maxlength: '4000', 'data-test': 'audit-signoff-findings'});
  const submit = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'audit-signoff'}, t('audit.signoff'));
  const list = h('div', {class: 'audit-reviews'});
  let notice = null;

  async function loadReviews() {
    mount(list, loading());
    let reviews;
    try {
      reviews = (await api('GET', '/api/audit/reviews')) || [];
    } catch (err) {
      mount(list, errorBlock(err, loadReviews));
      return;
    }
    const me = userId();
    mount(
      list,
      notice,
      h('h3', {class: 'subsection-title'}, t('audit.reviews_title')),
      reviews.length
        ? h(
            'ul',
            {class: 'review-list'},
            reviews.map((r) =>
              h(
                'li',
                {class: 'review-item', 'data-test': 'audit-review', 'data-review-id': r.review_id},
                h('p', {class: 'review-period'}, t('audit.review_period', {from: formatDateTime(r.period_start), until: formatDateTime(r.period_end)})),
                h(
                  'p',
                  {class: 'review-meta'},
                  t('audit.review_by', {who: r.reviewed_by === me ? t('audit.you') : r.reviewed_by, at: formatDateTime(r.reviewed_at)}),
                  ' · ',
                  t('audit.review_through', {position: r.through_position}),
                ),
                h('p', {class: 'review-findings'}, r.findings),
              ),
            ),
          )
        : h('p', {class: 'console-empty'}, t('audit.reviews_empty')),
    );
    notice = null;
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    f.clear();
    const vStart = start.value.trim();
    const vEnd = end.value.trim();
    const text = findings.value.trim();
    const now = todayInJapan();
    if (!isDate(vStart)) f.local('period_start', vStart ? t('console.invalid_date') : t('console.required'));
    if (!isDate(vEnd)) f.local('period_end', vEnd ? t('console.invalid_date') : t('console.required'));
    else if (vEnd > now) f.local('period_end', t('audit.future_date'));
    else if (isDate(vStart) && vStart > vEnd) f.local('period_start', t('audit.period_order'));
    if (!text) f.local('findings', t('console.required'));
    else if ([...text].length > 4000) f.local('findings', t('console.too_long', {max: 4000}));
    if (f.focusFirstError()) return;
    // The period must end no later than now: "today" ends a minute ago.
    const periodEnd = vEnd === now ? new Date(Date.now() - 60 * 1000).toISOString() : endOfDay(vEnd);
    let review;
    try {
      review = await busy(submit, () =>
        api('POST', '/api/audit/reviews', {period_start: startOfDay(vStart), period_end: periodEnd, findings: text}),
      );
    } catch (err) {
      f.apply(err);
      return;
    }
    findings.value = '';
    notice = h('p', {class: 'console-flash', role: 'status', 'data-test': 'flash'}, t('audit.signoff_done', {position: review.through_position}));
    await loadReviews();
  }

  mount(
    section,
    h('h2', {class: 'section-title', id: 'audit-h-reviews'}, t('audit.section.reviews')),
    f.form(
      {class: 'console-panel', 'aria-labelledby': 'audit-signoff-title', on: {submit: onSubmit}},
      h('h3', {class: 'subsection-title', id: 'audit-signoff-title'}, t('audit.signoff_title')),
      h('p', {class: 'console-note'}, t('audit.signoff_help')),
      h(
        'div',
        {class: 'field-grid'},
        f.field('period_start', t('audit.signoff_start'), start, {required: true}),
        f.field('period_end', t('audit.signoff_end'), end, {required: true, hint: t('audit.signoff_end_hint')}),
      ),
      f.field('findings', t('audit.signoff_findings'), findings, {required: true, hint: t('audit.signoff_findings_hint')}),
      h('div', {class: 'form-actions'}, submit),
    ),
    list,
  );
  loadReviews();
}

export function register() {
  addStrings(STRINGS);
  addStrings(ACTION_STRINGS);
  route('/audit', screen);
}

// Labels of the actions in the table (the code is always shown beside them).
const ACTION_STRINGS = {
  ja: {
    'audit.action.auth.login': 'ログイン',
    'audit.action.auth.logout': 'ログアウト',
    'audit.action.auth.refresh': 'セッション更新',
    'audit.action.auth.password_change': 'パスワード変更',
    'audit.action.auth.totp_enrol': '二要素認証の登録開始',
    'audit.action.auth.totp_confirm': '二要素認証の有効化',
    'audit.action.auth.session_list': 'セッション一覧',
    'audit.action.auth.session_revoke': 'セッション終了',
    'audit.action.auth.session_expire': 'セッション期限切れ',
    'audit.action.auth.policy_accept': '運用方針への同意',
    'audit.action.identity.invitation_accept': '招待コードで登録',
    'audit.action.admin.organisation_create': '組織の作成',
    'audit.action.admin.organisation_update': '組織の変更',
    'audit.action.admin.organisation_list': '組織一覧',
    'audit.action.admin.organisation_view': '組織の表示',
    'audit.action.admin.invitation_create': '招待の作成',
    'audit.action.admin.invitation_list': '招待一覧',
    'audit.action.admin.invitation_revoke': '招待の取り消し',
    'audit.action.admin.user_list': '利用者一覧',
    'audit.action.admin.user_view': '利用者の表示',
    'audit.action.admin.role_grant': '役割の付与',
    'audit.action.admin.user_disable': '利用停止',
    'audit.action.admin.user_enable': '利用再開',
    'audit.action.admin.password_reset': 'パスワード再発行',
    'audit.action.admin.totp_reset': '二要素認証のリセット',
    'audit.action.admin.session_list': '利用者のセッション一覧',
    'audit.action.admin.session_revoke': '利用者のセッション終了',
    'audit.action.admin.system_admin_create': 'システム管理者の作成',
    'audit.action.admin.form_template_create': '書式テンプレートの登録',
    'audit.action.admin.room_purge': '患者ルームの消去',
    'audit.action.admin.room_key_rotate': '患者ルーム鍵の更新',
    'audit.action.admin.master_key_rotate': 'マスター鍵の更新',
    'audit.action.directory.search': '利用者の検索',
    'audit.action.room.list': '患者一覧の表示',
    'audit.action.room.create': '患者ルームの作成',
    'audit.action.room.view': '患者情報の表示',
    'audit.action.room.patient_search': '保険者番号で検索',
    'audit.action.room.close': '患者ルームの終了',
    'audit.action.room.member_list': 'メンバー一覧',
    'audit.action.room.member_invite': 'メンバーの招待',
    'audit.action.room.member_respond': '招待への返事',
    'audit.action.room.member_leave': '退出',
    'audit.action.room.member_revoke': 'メンバーの取り消し',
    'audit.action.room.consent_list': '同意記録の表示',
    'audit.action.room.consent_record': '同意の記録',
    'audit.action.room.consent_withdraw': '同意の撤回',
    'audit.action.timeline.read': 'タイムラインの閲覧',
    'audit.action.timeline.post': '投稿',
    'audit.action.timeline.edit': '投稿の訂正',
    'audit.action.timeline.delete': '投稿の削除',
    'audit.action.timeline.versions': '投稿の履歴表示',
    'audit.action.timeline.acknowledge': '見ました',
    'audit.action.timeline.acknowledgements': '見ましたの一覧',
    'audit.action.timeline.mark_read': '既読',
    'audit.action.attachment.upload': '添付ファイルの送信',
    'audit.action.attachment.read': '添付ファイルの表示',
    'audit.action.attachment.cleanup': '添付ファイルの整理',
    'audit.action.form.list': '書式一覧',
    'audit.action.form.send': '書式の送信',
    'audit.action.form.read': '書式の表示',
    'audit.action.form.answer': '書式への回答',
    'audit.action.form.acknowledge': '書式の確認',
    'audit.action.form.correct': '書式の訂正',
    'audit.action.form.inbox': '書式の受信箱',
    'audit.action.form.print': '書式の印刷',
    'audit.action.form.export': '書式の書き出し',
    'audit.action.sheet.read': '緊急時情報の表示',
    'audit.action.sheet.update': '緊急時情報の更新',
    'audit.action.sheet.confirm': '緊急時情報の確認',
    'audit.action.sheet.history': '緊急時情報の履歴',
    'audit.action.sheet.print': '緊急時情報の印刷',
    'audit.action.audit.search': '監査ログの検索',
    'audit.action.audit.export': '監査ログの書き出し',
    'audit.action.audit.report': '監査レポート',
    'audit.action.audit.verify': '改ざん検証',
    'audit.action.audit.review_sign_off': '定期確認の記録',
    'audit.action.audit.review_list': '定期確認の一覧',
    'audit.action.security.integrity_failure': 'データ完全性の異常',
    'audit.action.security.audit_integrity_failure': '監査記録の完全性の異常',
    'audit.action.system.clock_status': 'サーバー時計の状態',
  },
  en: {
    'audit.action.auth.login': 'Login',
    'audit.action.auth.logout': 'Logout',
    'audit.action.auth.refresh': 'Session refresh',
    'audit.action.auth.password_change': 'Password change',
    'audit.action.auth.totp_enrol': 'TOTP enrolment started',
    'audit.action.auth.totp_confirm': 'TOTP activated',
    'audit.action.auth.session_list': 'Session list',
    'audit.action.auth.session_revoke': 'Session ended',
    'audit.action.auth.session_expire': 'Session expired',
    'audit.action.auth.policy_accept': 'Policy accepted',
    'audit.action.identity.invitation_accept': 'Joined by invitation',
    'audit.action.admin.organisation_create': 'Organisation created',
    'audit.action.admin.organisation_update': 'Organisation changed',
    'audit.action.admin.organisation_list': 'Organisation list',
    'audit.action.admin.organisation_view': 'Organisation viewed',
    'audit.action.admin.invitation_create': 'Invitation created',
    'audit.action.admin.invitation_list': 'Invitation list',
    'audit.action.admin.invitation_revoke': 'Invitation revoked',
    'audit.action.admin.user_list': 'User list',
    'audit.action.admin.user_view': 'User viewed',
    'audit.action.admin.role_grant': 'Role granted',
    'audit.action.admin.user_disable': 'User disabled',
    'audit.action.admin.user_enable': 'User enabled',
    'audit.action.admin.password_reset': 'Password reset',
    'audit.action.admin.totp_reset': 'TOTP reset',
    'audit.action.admin.session_list': 'User sessions listed',
    'audit.action.admin.session_revoke': 'User sessions ended',
    'audit.action.admin.system_admin_create': 'System admin created',
    'audit.action.admin.form_template_create': 'Form template added',
    'audit.action.admin.room_purge': 'Room purged',
    'audit.action.admin.room_key_rotate': 'Room key rotated',
    'audit.action.admin.master_key_rotate': 'Master key rotated',
    'audit.action.directory.search': 'Directory search',
    'audit.action.room.list': 'Room list',
    'audit.action.room.create': 'Room created',
    'audit.action.room.view': 'Patient details viewed',
    'audit.action.room.patient_search': 'Insurer-number search',
    'audit.action.room.close': 'Room closed',
    'audit.action.room.member_list': 'Member list',
    'audit.action.room.member_invite': 'Member invited',
    'audit.action.room.member_respond': 'Invitation answered',
    'audit.action.room.member_leave': 'Left the room',
    'audit.action.room.member_revoke': 'Member removed',
    'audit.action.room.consent_list': 'Consents viewed',
    'audit.action.room.consent_record': 'Consent recorded',
    'audit.action.room.consent_withdraw': 'Consent withdrawn',
    'audit.action.timeline.read': 'Timeline read',
    'audit.action.timeline.post': 'Post',
    'audit.action.timeline.edit': 'Post corrected',
    'audit.action.timeline.delete': 'Post deleted',
    'audit.action.timeline.versions': 'Post history viewed',
    'audit.action.timeline.acknowledge': 'Acknowledged',
    'audit.action.timeline.acknowledgements': 'Acknowledgements viewed',
    'audit.action.timeline.mark_read': 'Marked read',
    'audit.action.attachment.upload': 'Attachment uploaded',
    'audit.action.attachment.read': 'Attachment viewed',
    'audit.action.attachment.cleanup': 'Attachment clean-up',
    'audit.action.form.list': 'Form list',
    'audit.action.form.send': 'Form sent',
    'audit.action.form.read': 'Form viewed',
    'audit.action.form.answer': 'Form answered',
    'audit.action.form.acknowledge': 'Form acknowledged',
    'audit.action.form.correct': 'Form corrected',
    'audit.action.form.inbox': 'Forms inbox',
    'audit.action.form.print': 'Form printed',
    'audit.action.form.export': 'Form exported',
    'audit.action.sheet.read': 'Emergency sheet viewed',
    'audit.action.sheet.update': 'Emergency sheet updated',
    'audit.action.sheet.confirm': 'Emergency sheet confirmed',
    'audit.action.sheet.history': 'Emergency sheet history',
    'audit.action.sheet.print': 'Emergency sheet printed',
    'audit.action.audit.search': 'Audit search',
    'audit.action.audit.export': 'Audit export',
    'audit.action.audit.report': 'Audit report',
    'audit.action.audit.verify': 'Tamper check',
    'audit.action.audit.review_sign_off': 'Review signed off',
    'audit.action.audit.review_list': 'Review list',
    'audit.action.security.integrity_failure': 'Data integrity failure',
    'audit.action.security.audit_integrity_failure': 'Audit record integrity failure',
    'audit.action.system.clock_status': 'Server clock status',
  },
};
