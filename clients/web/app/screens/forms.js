// Structured forms: the room's forms, a new form generated from its template, the inbox, a
// form read-only with its versions, recipients and actions (answer, acknowledge, correct,
// print).
//
// Routes:
//   /rooms/:roomId/forms                   the room's forms (room tab 'forms')
//   /rooms/:roomId/forms/new?template=KEY  template chooser, then the form
//   /inbox                                 forms waiting for me
//   /forms/:formId?version=N               one form, read-only
//   /forms/:formId/answer                  the answer form, linked to the request
//   /forms/:formId/correct                 the sender's correction (a new version)
//
// The server is the judge of every value: it answers 400 invalid_request with every problem
// and its path (`data.section.field`, `data.section.field[2].dose`, `to.role`, `due_on`);
// each is shown next to its field (data-test="field-error", data-field = the path).
//
// Also exported for sheet.js: the list editor, the error placement and small formatters.

import { h, clear, mount, uid } from '../core/dom.js';
import {
  t,
  tIn,
  addStrings,
  lang,
  pick,
  formatDateTime,
  formatDate,
  message,
  roleName,
  todayInJapan,
} from '../core/i18n.js';
import { api, ApiError, uploadAttachment } from '../core/api.js';
import { route, navigate, href, onLeave } from '../core/router.js';
import { me, role, userId, isProfessional, isProfessionalRole, isFamily } from '../core/session.js';
import { roomShell, showError, loading, empty } from '../core/shell.js';
import { live } from '../core/live.js';

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------

const STRINGS = {
  ja: {
    'forms.title': '書式',
    'forms.new': '新しい書式を作成',
    'forms.list.empty': 'この部屋にはまだ書式がありません。',
    'forms.list.emptyFiltered': '条件に合う書式はありません。',
    'forms.filter.all': 'すべて',
    'forms.filter.open': '対応待ち',
    'forms.filter.overdue': '期限超過',
    'forms.filter.mine': '自分宛て',
    'forms.filter.label': '表示する書式',
    'forms.reload': '最新の状態に更新',
    'forms.sender': '送信者',
    'forms.sentAt': '送信日時',
    'forms.to': '宛先',
    'forms.due': '期限',
    'forms.noDue': '期限なし',
    'forms.visibility': '公開範囲',
    'forms.vis.care_team': 'ケアチームのみ',
    'forms.vis.everyone': '家族・本人にも公開',
    'forms.status': '状況',
    'forms.status.open': '対応待ち',
    'forms.status.completed': '完了',
    'forms.overdue': '期限超過',
    'forms.rstatus.sent': '未開封',
    'forms.rstatus.opened': '開封済み',
    'forms.rstatus.answered': '回答済み',
    'forms.rstatus.acknowledged': '確認済み',
    'forms.toRole': '{role}（職種宛て）',
    'forms.isReply': '回答',
    'forms.recipients': '受信者の状況',
    'forms.person': '{name}（{detail}）',
    'forms.version': '第{n}版',
    'forms.versionOf': '第{n}版（最新は第{current}版）',
    'forms.versions': '版',
    'forms.oldVersion': '古い版（第{n}版）を表示しています。',
    'forms.toLatest': '最新の版を見る',
    'forms.correctionReason': '訂正の理由',
    'forms.correctedAt': '訂正日時',
    'forms.replyTo': 'この書式は次の依頼への回答です:',
    'forms.openRequest': '依頼の書式を開く',
    'forms.replies': '届いた回答',
    'forms.openReply': '回答を開く（{n}）',
    'forms.openAnswer': '回答を開く',
    'forms.openedAt': '開封',
    'forms.doneAt': '対応',
    'forms.blank': '未記入',
    'forms.print': '印刷用の表示',
    'forms.answer': '回答する',
    'forms.ack': '確認した（回答なし）',
    'forms.ackDone': '確認済みにしました。',
    'forms.correct': '訂正する',
    'forms.completedByOther': 'この書式は対応が完了しています。',
    'forms.youAre': 'あなたの状況: {status}',
    'forms.backToList': '書式の一覧へ',
    'forms.backToForm': '書式に戻る',
    'forms.inbox.title': '対応待ちの書式',
    'forms.inbox.lead': 'あなた宛ての書式です。期限の近い順に並んでいます。',
    'forms.inbox.empty': '対応待ちの書式はありません。',
    'forms.inbox.title_family': 'あなた宛ての書類',
    'forms.inbox.lead_family': 'ケアチームから届いた、返事や確認をお願いしている書類です。',
    'forms.inbox.empty_family': '今、返事をお願いしている書類はありません。',
    'forms.patient': '利用者',
    'forms.new.title': '書式の作成',
    'forms.new.template': '書式の種類',
    'forms.new.choose': '書式を選んでください',
    'forms.new.answerTemplates': '回答用の書式',
    'forms.new.none': 'あなたの職種で作成できる書式はありません。',
    'forms.new.unknownTemplate': 'この書式はありません。または、あなたの職種では作成できません。',
    'forms.new.noConsent': 'この部屋には有効な同意が記録されていないため、書式を送れません。',
    'forms.new.usualTo': '主な宛先: {roles}',
    'forms.new.discard': '入力した内容は失われます。書式を変更しますか？',
    'forms.addressee': '宛先と期限',
    'forms.to.mode': '宛先の指定方法',
    'forms.to.byRole': '職種で指定（その職種のメンバー全員。1人の対応で完了）',
    'forms.to.byMembers': 'メンバーを選んで指定（全員の対応で完了）',
    'forms.to.role': '宛先の職種',
    'forms.to.chooseRole': '職種を選んでください',
    'forms.to.roleOption': '{role}（{names}）',
    'forms.to.usual': '（主な宛先）',
    'forms.to.members': '宛先のメンバー',
    'forms.to.noOne': 'この部屋には宛先にできるメンバーがいません。',
    'forms.to.pickRole': '宛先の職種を選んでください。',
    'forms.to.pickMembers': '宛先のメンバーを1人以上選んでください。',
    'forms.to.check': '宛先を確認してください。',
    'forms.vis.careTeamHint': '家族・本人には表示されません。',
    'forms.vis.everyoneHint': '家族・本人もこの書式を読めます。',
    'forms.dueOn': '回答期限',
    'forms.dueOnHint': '空欄の場合は期限なしになります。',
    'forms.dueOnFromField': '空欄の場合は「{field}」の日付を期限にします。',
    'forms.dueRule.after': '期限は「{field}」の{days}日後に自動で設定されます。',
    'forms.dueRule.before': '期限は「{field}」の{days}日前に自動で設定されます。',
    'forms.dueRule.sent': '期限は送信日の{days}日後に自動で設定されます。',
    'forms.submit': '送信する',
    'forms.sending': '送信中…',
    'forms.cancel': 'キャンセル',
    'forms.requiredNote': '「必須」の項目は必ず入力してください。',
    'forms.uploading': 'ファイルのアップロードが終わるまでお待ちください。',
    'forms.choose': '選択してください',
    'forms.unselected': '指定しない',
    'forms.today': '今日',
    'forms.now': '現在時刻',
    'forms.jst': '日本時間',
    'forms.range.both': '{min}〜{max}',
    'forms.range.min': '{min}以上',
    'forms.range.max': '{max}以下',
    'forms.integer': '整数',
    'forms.chars': '{n} / {max}文字',
    'forms.ref.pickPerson': 'この部屋のメンバーから選ぶ',
    'forms.ref.pickOrg': 'この部屋の事業所から選ぶ',
    'forms.ref.pickNone': '選ばない（直接入力）',
    'forms.ref.name': '氏名',
    'forms.ref.orgName': '名称',
    'forms.ref.contact': '連絡先（電話・FAX・住所）',
    'forms.ref.linked': 'Tsunagu の利用者・事業所に紐付けました',
    'forms.med.name': '薬剤名',
    'forms.med.dose': '用量（1回量）',
    'forms.med.route': '投与経路',
    'forms.med.frequency': '用法',
    'forms.med.start': '開始日',
    'forms.med.add': '薬を追加',
    'forms.med.item': '薬 {n}',
    'forms.med.none': '登録されている薬はありません。',
    'forms.route.oral': '内服',
    'forms.route.topical': '外用',
    'forms.route.injection': '注射',
    'forms.route.inhalation': '吸入',
    'forms.route.sublingual': '舌下',
    'forms.route.rectal': '坐剤（直腸）',
    'forms.route.transdermal': '貼付（経皮）',
    'forms.route.enteral': '経管',
    'forms.route.other': 'その他',
    'forms.vital.temperature_c': '体温',
    'forms.vital.systolic_mmhg': '血圧（収縮期）',
    'forms.vital.diastolic_mmhg': '血圧（拡張期）',
    'forms.vital.pulse_per_min': '脈拍',
    'forms.vital.respiratory_rate_per_min': '呼吸数',
    'forms.vital.spo2_percent': 'SpO2',
    'forms.vital.measured_at': '測定日時',
    'forms.unit.perMin': '回/分',
    'forms.att.add': 'ファイルを添付',
    'forms.att.hint': 'JPEG・PNG・PDF、1ファイル20MBまで、10件まで。',
    'forms.att.uploading': 'アップロード中…',
    'forms.att.failed': 'アップロードできませんでした: {message}',
    'forms.att.tooMany': '添付できるのは10件までです。',
    'forms.att.file': '添付ファイル {n}',
    'forms.att.open': '開く',
    'forms.att.remove': '削除: {name}',
    'forms.list.remove': '{item}を削除',
    'forms.list.up': '{item}を上へ',
    'forms.list.down': '{item}を下へ',
    'forms.answer.title': '回答: {title}',
    'forms.answer.lead': '「{title}」（{sender}）への回答です。送信すると依頼者に届き、依頼は回答済みになります。',
    'forms.answer.showRequest': '依頼の内容を表示',
    'forms.answer.notYours': 'この書式に回答することはできません（宛先ではないか、対応済みです）。',
    'forms.answer.submit': '回答を送信',
    'forms.correct.title': '訂正: {title}',
    'forms.correct.lead': '訂正すると第{n}版として保存され、これまでの版もそのまま閲覧できます。開封済みの受信者は未開封に戻ります。',
    'forms.correct.reason': '訂正の理由',
    'forms.correct.submit': '訂正を保存',
    'forms.correct.notSender': '書式を訂正できるのは送信者だけです。',
    'forms.correct.stale': 'この書式は他の操作で既に訂正されています。入力内容は残してあります。最新の版を確認してください。',
    'forms.rawData': '書式の定義を読み込めないため、入力内容をそのまま表示しています。',
    'forms.unknownError': 'エラーが発生しました。',
    'forms.draftRestored': '入力途中の内容を復元しました。',
    'forms.sent': '書式を送信しました。',
    'forms.answered': '回答を送信しました。',
    'forms.corrected': '訂正を保存しました（第{n}版）。',
  },
  en: {
    'forms.title': 'Forms',
    'forms.new': 'New form',
    'forms.list.empty': 'No forms in this room yet.',
    'forms.list.emptyFiltered': 'No forms match this filter.',
    'forms.filter.all': 'All',
    'forms.filter.open': 'Waiting',
    'forms.filter.overdue': 'Overdue',
    'forms.filter.mine': 'To me',
    'forms.filter.label': 'Show',
    'forms.reload': 'Refresh',
    'forms.sender': 'From',
    'forms.sentAt': 'Sent',
    'forms.to': 'To',
    'forms.due': 'Due',
    'forms.noDue': 'No due date',
    'forms.visibility': 'Visible to',
    'forms.vis.care_team': 'Care team only',
    'forms.vis.everyone': 'Family and patient too',
    'forms.status': 'Status',
    'forms.status.open': 'Waiting',
    'forms.status.completed': 'Completed',
    'forms.overdue': 'Overdue',
    'forms.rstatus.sent': 'Not opened',
    'forms.rstatus.opened': 'Opened',
    'forms.rstatus.answered': 'Answered',
    'forms.rstatus.acknowledged': 'Acknowledged',
    'forms.toRole': '{role} (by role)',
    'forms.isReply': 'Reply',
    'forms.recipients': 'Recipients',
    'forms.person': '{name} ({detail})',
    'forms.version': 'Version {n}',
    'forms.versionOf': 'Version {n} (newest: {current})',
    'forms.versions': 'Versions',
    'forms.oldVersion': 'You are looking at an earlier version ({n}).',
    'forms.toLatest': 'Show the newest version',
    'forms.correctionReason': 'Reason for the correction',
    'forms.correctedAt': 'Corrected',
    'forms.replyTo': 'This form answers the request:',
    'forms.openRequest': 'Open the request',
    'forms.replies': 'Replies',
    'forms.openReply': 'Open reply ({n})',
    'forms.openAnswer': 'Open the reply',
    'forms.openedAt': 'Opened',
    'forms.doneAt': 'Done',
    'forms.blank': 'Not filled in',
    'forms.print': 'Print view',
    'forms.answer': 'Answer',
    'forms.ack': 'Acknowledge (no reply)',
    'forms.ackDone': 'Acknowledged.',
    'forms.correct': 'Correct',
    'forms.completedByOther': 'This form has been completed.',
    'forms.youAre': 'Your status: {status}',
    'forms.backToList': 'Back to the forms',
    'forms.backToForm': 'Back to the form',
    'forms.inbox.title': 'Forms waiting for me',
    'forms.inbox.lead': 'Forms addressed to you, soonest due first.',
    'forms.inbox.empty': 'Nothing is waiting for you.',
    'forms.inbox.title_family': 'Documents for you',
    'forms.inbox.lead_family': 'Documents from the care team that ask for your reply or confirmation.',
    'forms.inbox.empty_family': 'Nothing needs your reply now.',
    'forms.patient': 'Patient',
    'forms.new.title': 'New form',
    'forms.new.template': 'Form',
    'forms.new.choose': 'Choose a form',
    'forms.new.answerTemplates': 'Answer forms',
    'forms.new.none': 'There is no form your role may send.',
    'forms.new.unknownTemplate': 'This form does not exist, or your role may not send it.',
    'forms.new.noConsent': 'No consent is in force in this room: forms cannot be sent.',
    'forms.new.usualTo': 'Usually to: {roles}',
    'forms.new.discard': 'What you typed will be lost. Change the form?',
    'forms.addressee': 'Addressee and due date',
    'forms.to.mode': 'Address the form',
    'forms.to.byRole': 'To a role (every member with it; one answer completes it)',
    'forms.to.byMembers': 'To chosen members (complete when all have answered)',
    'forms.to.role': 'Role',
    'forms.to.chooseRole': 'Choose a role',
    'forms.to.roleOption': '{role} ({names})',
    'forms.to.usual': ' (usual)',
    'forms.to.members': 'Members',
    'forms.to.noOne': 'No one in this room can receive this form.',
    'forms.to.pickRole': 'Choose the role to send the form to.',
    'forms.to.pickMembers': 'Choose at least one member.',
    'forms.to.check': 'Check the addressee.',
    'forms.vis.careTeamHint': 'Family members and the patient will not see it.',
    'forms.vis.everyoneHint': 'Family members and the patient can read this form.',
    'forms.dueOn': 'Reply by',
    'forms.dueOnHint': 'Leave empty for no due date.',
    'forms.dueOnFromField': 'When empty, the date in "{field}" is the due date.',
    'forms.dueRule.after': 'The due date is set to {days} days after "{field}".',
    'forms.dueRule.before': 'The due date is set to {days} days before "{field}".',
    'forms.dueRule.sent': 'The due date is set to {days} days after sending.',
    'forms.submit': 'Send',
    'forms.sending': 'Sending…',
    'forms.cancel': 'Cancel',
    'forms.requiredNote': 'Fields marked "Required" must be filled in.',
    'forms.uploading': 'Wait until the files have been uploaded.',
    'forms.choose': 'Choose',
    'forms.unselected': 'Not specified',
    'forms.today': 'Today',
    'forms.now': 'Now',
    'forms.jst': 'Japan time',
    'forms.range.both': '{min}–{max}',
    'forms.range.min': 'at least {min}',
    'forms.range.max': 'at most {max}',
    'forms.integer': 'whole number',
    'forms.chars': '{n} / {max} characters',
    'forms.ref.pickPerson': 'Choose a member of this room',
    'forms.ref.pickOrg': 'Choose an organisation of this room',
    'forms.ref.pickNone': 'None (type below)',
    'forms.ref.name': 'Name',
    'forms.ref.orgName': 'Name',
    'forms.ref.contact': 'Contact (phone, fax, address)',
    'forms.ref.linked': 'Linked to a Tsunagu user or organisation',
    'forms.med.name': 'Drug',
    'forms.med.dose': 'Dose',
    'forms.med.route': 'Route',
    'forms.med.frequency': 'Frequency',
    'forms.med.start': 'Started',
    'forms.med.add': 'Add a medication',
    'forms.med.item': 'Medication {n}',
    'forms.med.none': 'No medication listed.',
    'forms.route.oral': 'Oral',
    'forms.route.topical': 'Topical',
    'forms.route.injection': 'Injection',
    'forms.route.inhalation': 'Inhalation',
    'forms.route.sublingual': 'Sublingual',
    'forms.route.rectal': 'Rectal',
    'forms.route.transdermal': 'Transdermal',
    'forms.route.enteral': 'Enteral (tube)',
    'forms.route.other': 'Other',
    'forms.vital.temperature_c': 'Temperature',
    'forms.vital.systolic_mmhg': 'Blood pressure (systolic)',
    'forms.vital.diastolic_mmhg': 'Blood pressure (diastolic)',
    'forms.vital.pulse_per_min': 'Pulse',
    'forms.vital.respiratory_rate_per_min': 'Respiratory rate',
    'forms.vital.spo2_percent': 'SpO2',
    'forms.vital.measured_at': 'Measured at',
    'forms.unit.perMin': '/min',
    'forms.att.add': 'Attach a file',
    'forms.att.hint': 'JPEG, PNG or PDF, up to 20 MB each, at most 10.',
    'forms.att.uploading': 'Uploading…',
    'forms.att.failed': 'Could not upload: {message}',
    'forms.att.tooMany': 'At most 10 files.',
    'forms.att.file': 'Attachment {n}',
    'forms.att.open': 'Open',
    'forms.att.remove': 'Delete {name}',
    'forms.list.remove': 'Delete {item}',
    'forms.list.up': 'Move {item} up',
    'forms.list.down': 'Move {item} down',
    'forms.answer.title': 'Answer: {title}',
    'forms.answer.lead': 'Your answer to "{title}" from {sender}. Once sent it reaches the sender and the request counts as answered.',
    'forms.answer.showRequest': 'Show the request',
    'forms.answer.notYours': 'You cannot answer this form (you are not a recipient, or it is done).',
    'forms.answer.submit': 'Send the answer',
    'forms.correct.title': 'Correct: {title}',
    'forms.correct.lead': 'The correction is saved as version {n}; earlier versions stay readable. Recipients who had opened it go back to not opened.',
    'forms.correct.reason': 'Reason for the correction',
    'forms.correct.submit': 'Save the correction',
    'forms.correct.notSender': 'Only the sender may correct a form.',
    'forms.correct.stale': 'Someone corrected this form in the meantime. Your input is kept; read the newest version first.',
    'forms.rawData': 'The form definition could not be loaded; the content is shown as stored.',
    'forms.unknownError': 'Something went wrong.',
    'forms.draftRestored': 'Your unsent input has been restored.',
    'forms.sent': 'The form has been sent.',
    'forms.answered': 'Your answer has been sent.',
    'forms.corrected': 'The correction has been saved (version {n}).',
  },
};

// ---------------------------------------------------------------------------------------
// Small helpers (exported for sheet.js)
// ---------------------------------------------------------------------------------------

/** The routes a medication may have (protocol::forms::MEDICATION_ROUTES). */
export const MEDICATION_ROUTES = [
  'oral',
  'topical',
  'injection',
  'inhalation',
  'sublingual',
  'rectal',
  'transdermal',
  'enteral',
  'other',
];

export function routeLabel(value) {
  return MEDICATION_ROUTES.includes(value) ? t(`forms.route.${value}`) : String(value ?? '');
}

/** An error made on this side, shaped like the server's (both languages). */
export function localError(key, fields = [], vars) {
  return new ApiError(0, {
    code: 'client',
    message_ja: tIn('ja', key, vars),
    message_en: tIn('en', key, vars),
    fields: fields.map((f) => ({
      field: f.field,
      code: f.code || 'client',
      message_ja: tIn('ja', f.key, f.vars),
      message_en: tIn('en', f.key, f.vars),
    })),
  });
}

/** 「山田 太郎（医師・あおば診療所）」 */
export function personText(person) {
  if (!person) return '';
  const detail = [roleName(person.role), person.organisation_name].filter(Boolean).join(lang() === 'ja' ? '・' : ', ');
  return detail ? t('forms.person', {name: person.display_name, detail}) : person.display_name;
}

/** 2026/11/25（水） for a plain YYYY-MM-DD date. */
export function dayText(ymd) {
  if (!ymd) return '';
  const base = formatDate(ymd);
  const d = new Date(`${ymd}T00:00:00+09:00`);
  if (Number.isNaN(d.getTime())) return String(ymd);
  const wd = new Intl.DateTimeFormat(lang() === 'ja' ? 'ja-JP' : 'en-GB', {
    timeZone: 'Asia/Tokyo',
    weekday: 'short',
  }).format(d);
  return lang() === 'ja' ? `${base}（${wd}）` : `${wd} ${base}`;
}

/** An RFC 3339 instant as the value of a datetime-local input, in Japan time. */
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone: 'Asia/Tokyo',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

/** A datetime-local value (Japan time) as RFC 3339 with the +09:00 offset; null when empty. */
export function fromLocalInput(value) {
  const v = (value || '').trim();
  if (!v) return null;
  return /T\d{2}:\d{2}:\d{2}/.test(v) ? `${v}+09:00` : `${v}:00+09:00`;
}

/** The datetime-local value of now, Japan time. */
function nowLocal() {
  return toLocalInput(new Date().toISOString());
}

/**
 * A number typed by a person: full-width digits are fine. Empty -> null; a number -> the
 * number; anything else -> the text as typed, so that the server names the problem.
 */
export function parseNumber(text) {
  const v = String(text ?? '')
    .normalize('NFKC')
    .replace(/[\u2212\u30FC]/g, '-')
    .replace(/,/g, '')
    .trim();
  if (!v) return null;
  if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(v)) return Number(v);
  return v;
}

function fileSize(bytes) {
  if (!Number.isFinite(bytes)) return '';
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

export function loadingBlock() {
  return loading();
}

export function emptyBlock(text) {
  return empty(text);
}

/** A required mark inside a label. */
export function requiredMark() {
  return h('span', {class: 'field-required'}, t('common.required'));
}

/** Disables `button` while fn runs, with a busy label; returns fn's result. */
export async function withBusy(button, busyLabel, fn) {
  if (button.disabled) return undefined;
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (busyLabel) button.textContent = busyLabel;
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

/** An error block with a retry button (for screens that failed to load). */
export function failedBlock(container, err, retry) {
  clear(container);
  showError(container, err);
  if (retry) {
    container.append(
      h('p', null, h('button', {type: 'button', class: 'btn', on: {click: retry}}, t('common.retry'))),
    );
  }
}

// ---------------------------------------------------------------------------------------
// Field errors next to their fields
// ---------------------------------------------------------------------------------------
//
// Every element that can carry an error has `data-slot` = the server's path for it. An error
// goes to the slot with its path, or else to the nearest enclosing path
// (`data.s.f[2].dose` -> `data.s.f[2]` -> `data.s.f` -> `data.s` -> `data`); what finds no slot
// is listed under the banner. A slot may have a `.slot-errs` child where errors go.

function parentPath(path) {
  const m = /^(.+?)(\[\d+\]|\.[^.[\]]+)$/.exec(path);
  return m ? m[1] : null;
}

function findSlot(root, path) {
  const slots = new Map();
  for (const el of root.querySelectorAll('[data-slot]')) {
    if (!slots.has(el.dataset.slot)) slots.set(el.dataset.slot, el);
  }
  let p = path;
  while (p) {
    const slot = slots.get(p);
    if (slot && !slot.closest('[hidden]')) return slot;
    p = parentPath(p);
  }
  return null;
}

const FOCUSABLE = 'input:not([type="hidden"]):not([disabled]), select:not([disabled]), textarea:not([disabled])';

export function clearFieldErrors(root) {
  for (const el of root.querySelectorAll('[data-test="field-error"]')) el.remove();
  for (const el of root.querySelectorAll('[aria-invalid="true"]')) {
    el.removeAttribute('aria-invalid');
    const ids = (el.getAttribute('aria-describedby') || '')
      .split(/\s+/)
      .filter((id) => id && !id.startsWith('ferr-'));
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
    else el.removeAttribute('aria-describedby');
  }
  for (const el of root.querySelectorAll('.has-error')) el.classList.remove('has-error');
}

/**
 * Shows `err` in `host` (the banner) and each of its fields next to its slot in `root`;
 * scrolls to and focuses the first. Returns the number of field errors placed by a field.
 */
export function showFormErrors(root, host, err) {
  clearFieldErrors(root);
  clear(host);
  const fields = err instanceof ApiError ? err.fields : [];
  // The banner carries the message; the fields go next to their inputs (below).
  const bannerErr = Object.assign(Object.create(Object.getPrototypeOf(err)), err, {fields: []});
  showError(host, bannerErr);
  const unplaced = [];
  const placed = [];
  for (const f of fields) {
    const id = uid('ferr');
    const el = h(
      'p',
      {class: 'field-error', id, 'data-test': 'field-error', 'data-field': f.field},
      message(f) || f.code,
    );
    const slot = findSlot(root, f.field);
    if (!slot || host.contains(slot)) {
      unplaced.push(el);
      continue;
    }
    const box = slot.querySelector(':scope > .slot-errs') || slot;
    box.append(el);
    slot.classList.add('has-error');
    for (const input of [...slot.querySelectorAll(FOCUSABLE)].slice(0, 40)) {
      input.setAttribute('aria-invalid', 'true');
      const ids = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
      ids.push(id);
      input.setAttribute('aria-describedby', ids.join(' '));
    }
    placed.push({slot, el});
  }
  if (unplaced.length) (host.querySelector('[data-test="error"]') || host).append(h('div', {class: 'field-errors-general'}, unplaced));
  placed.sort((a, b) =>
    a.slot.compareDocumentPosition(b.slot) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1,
  );
  const first = placed[0];
  if (first) {
    first.slot.scrollIntoView({block: 'center', behavior: 'smooth'});
    const target = first.slot.querySelector(FOCUSABLE);
    if (target) target.focus({preventScroll: true});
  } else {
    host.scrollIntoView({block: 'start', behavior: 'smooth'});
    const banner = host.firstElementChild;
    if (banner) {
      if (!banner.hasAttribute('tabindex')) banner.setAttribute('tabindex', '-1');
      banner.focus({preventScroll: true});
    }
  }
  return placed.length;
}

/** Clears the banner and the field errors. */
export function resetErrors(root, host) {
  clearFieldErrors(root);
  clear(host);
}

// ---------------------------------------------------------------------------------------
// A list of rows (medications, allergies, contacts …) — exported for sheet.js
// ---------------------------------------------------------------------------------------
//
// columns: [{key, label: () => text, type: 'text'|'tel'|'date'|'select'|'textarea',
//            options: () => [{value, label}], max, required, wide}]
// Each cell is a slot `${basePath}[i].${key}`, each row `${basePath}[i]`.

export function listEditor({
  basePath,
  columns,
  rows = [],
  addLabel,
  itemLabel,
  emptyText,
  max = 100,
  minRows = 0,
  reorder = false,
  newRow = () => ({}),
}) {
  let model = rows.map((r) => ({...r}));
  while (model.length < minRows) model.push(newRow());
  const list = h('ol', {class: 'le-rows'});
  const empty = emptyText ? h('p', {class: 'le-empty'}, emptyText) : null;
  const addBtn = h(
    'button',
    {
      type: 'button',
      class: 'btn le-add',
      on: {
        click: () => {
          model.push(newRow());
          render();
          focusRow(model.length - 1);
        },
      },
    },
    `＋ ${addLabel}`,
  );
  const el = h('div', {class: 'le'}, empty, list, addBtn);

  function focusRow(i) {
    const row = list.children[i];
    const input = row && row.querySelector(FOCUSABLE);
    if (input) input.focus();
  }

  function move(i, delta) {
    const j = i + delta;
    if (j < 0 || j >= model.length) return;
    [model[i], model[j]] = [model[j], model[i]];
    render();
    const btn = list.children[j]?.querySelector(delta < 0 ? '.le-up' : '.le-down');
    if (btn && !btn.disabled) btn.focus();
    else focusRow(j);
    el.dispatchEvent(new Event('change', {bubbles: true}));
  }

  function cell(col, row, i) {
    const id = uid('le');
    const value = row[col.key] ?? '';
    let input;
    if (col.type === 'select') {
      input = h(
        'select',
        {id, class: 'input'},
        col.options().map((o) => h('option', {value: o.value}, o.label)),
      );
      input.value = value;
    } else if (col.type === 'textarea') {
      input = h('textarea', {id, class: 'input', rows: 2, maxlength: col.max || null});
      input.value = value;
    } else {
      input = h('input', {
        id,
        class: 'input',
        type: col.type || 'text',
        maxlength: col.type === 'date' ? null : col.max || null,
        inputmode: col.type === 'tel' ? 'tel' : null,
        autocomplete: 'off',
      });
      input.value = value;
    }
    if (col.required) input.setAttribute('aria-required', 'true');
    const sync = () => {
      row[col.key] = input.value;
    };
    input.addEventListener('input', sync);
    input.addEventListener('change', sync);
    return h(
      'div',
      {class: `le-cell le-${col.key}${col.wide ? ' le-wide' : ''}`, 'data-slot': `${basePath}[${i}].${col.key}`},
      h('label', {for: id}, col.label(), col.required ? requiredMark() : null),
      input,
    );
  }

  function render() {
    clear(list);
    model.forEach((row, i) => {
      const name = itemLabel(i + 1);
      const actions = [];
      if (reorder) {
        actions.push(
          h(
            'button',
            {
              type: 'button',
              class: 'btn btn-small le-up',
              disabled: i === 0,
              'aria-label': t('forms.list.up', {item: name}),
              on: {click: () => move(i, -1)},
            },
            '↑',
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'btn btn-small le-down',
              disabled: i === model.length - 1,
              'aria-label': t('forms.list.down', {item: name}),
              on: {click: () => move(i, 1)},
            },
            '↓',
          ),
        );
      }
      actions.push(
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-small le-remove',
            'aria-label': t('forms.list.remove', {item: name}),
            on: {
              click: () => {
                model.splice(i, 1);
                render();
                if (model.length) focusRow(Math.min(i, model.length - 1));
                else addBtn.focus();
                el.dispatchEvent(new Event('change', {bubbles: true}));
              },
            },
          },
          t('common.delete'),
        ),
      );
      list.append(
        h(
          'li',
          {class: 'le-row', 'data-slot': `${basePath}[${i}]`},
          h('div', {class: 'le-head'}, h('span', {class: 'le-num'}, name), h('span', {class: 'le-actions'}, actions)),
          h('div', {class: 'slot-errs'}),
          h('div', {class: 'le-cells'}, columns.map((col) => cell(col, row, i))),
        ),
      );
    });
    if (empty) empty.hidden = model.length > 0;
    addBtn.disabled = model.length >= max;
  }
  render();

  const isBlank = (row) => columns.every((c) => String(row[c.key] ?? '').trim() === '');
  return {
    el,
    /** Copies of the rows as typed. */
    rows: () => model.map((r) => ({...r})),
    /** Drops rows left entirely blank (so that row numbers match what is sent). */
    prune: () => {
      const before = model.length;
      model = model.filter((r) => !isBlank(r));
      if (model.length !== before) render();
    },
    set: (rows2) => {
      model = (rows2 || []).map((r) => ({...r}));
      render();
    },
  };
}

export function medicationColumns() {
  return [
    {key: 'name', label: () => t('forms.med.name'), max: 200, required: true, wide: true},
    {key: 'dose', label: () => t('forms.med.dose'), max: 100, required: true},
    {
      key: 'route',
      label: () => t('forms.med.route'),
      type: 'select',
      required: true,
      options: () => [
        {value: '', label: t('forms.choose')},
        ...MEDICATION_ROUTES.map((r) => ({value: r, label: routeLabel(r)})),
      ],
    },
    {key: 'frequency', label: () => t('forms.med.frequency'), max: 200, required: true, wide: true},
    {key: 'start', label: () => t('forms.med.start'), type: 'date'},
  ];
}

/** Medication rows as sent: trimmed text, `start` only when given. */
export function medicationValues(rows) {
  return rows.map((r) => {
    const m = {
      name: String(r.name ?? '').trim(),
      dose: String(r.dose ?? '').trim(),
      route: r.route || '',
      frequency: String(r.frequency ?? '').trim(),
    };
    if (r.start) m.start = r.start;
    return m;
  });
}

/** A table of medications, read-only. */
export function medicationTable(items) {
  return h(
    'table',
    {class: 'table fv-table'},
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['name', 'dose', 'route', 'frequency', 'start'].map((k) => h('th', {scope: 'col'}, t(`forms.med.${k}`))),
      ),
    ),
    h(
      'tbody',
      null,
      items.map((m) =>
        h(
          'tr',
          null,
          h('td', null, m?.name ?? ''),
          h('td', null, m?.dose ?? ''),
          h('td', null, routeLabel(m?.route)),
          h('td', null, m?.frequency ?? ''),
          h('td', null, m?.start ? dayText(m.start) : ''),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Conditions (show_if): the server's rules, on this side
// ---------------------------------------------------------------------------------------
//
// A condition holds when the field it names is shown and its value equals `equals` (for a
// multiple choice: contains it). A field of a hidden section is hidden.

function visibility(def, valueOf) {
  const find = (path) => {
    const [s, f] = String(path).split('.');
    const section = def.sections.find((x) => x.id === s);
    const field = section && section.fields.find((x) => x.id === f);
    return field ? {section, field} : null;
  };
  function holds(cond, depth) {
    if (!cond) return true;
    if (depth > 32) return false;
    const found = find(cond.field);
    if (!found) return false;
    if (!fieldVisible(found.section, found.field, depth + 1)) return false;
    const v = valueOf(cond.field);
    if (v === null || v === undefined) return false;
    if (found.field.type === 'multi_choice') return Array.isArray(v) && v.some((x) => x === cond.equals);
    return v === cond.equals;
  }
  function sectionVisible(section, depth = 0) {
    return holds(section.show_if, depth);
  }
  function fieldVisible(section, field, depth = 0) {
    return sectionVisible(section, depth) && holds(field.show_if, depth);
  }
  return {sectionVisible, fieldVisible};
}

// ---------------------------------------------------------------------------------------
// Field controls
// ---------------------------------------------------------------------------------------
//
// Each control: {key: 'section.field', path: 'data.section.field', el, get(), set(v),
// snap?(), restore?(v), prune?()}. get() answers null for a blank value (not sent).

function textInput(props) {
  return h('input', {type: 'text', class: 'input', autocomplete: 'off', ...props});
}

function dateButton(input, label, valueFn) {
  return h(
    'button',
    {
      type: 'button',
      class: 'btn btn-small',
      on: {
        click: () => {
          input.value = valueFn();
          input.dispatchEvent(new Event('input', {bubbles: true}));
          input.dispatchEvent(new Event('change', {bubbles: true}));
        },
      },
    },
    label,
  );
}

function radioGroup(options, {required, describedBy}) {
  const name = uid('rg');
  const items = options.map((o) => ({value: o.value, label: o.label}));
  if (!required) items.push({value: '', label: t('forms.unselected'), none: true});
  const inputs = [];
  const labels = items.map((o) => {
    const id = uid('opt');
    const input = h('input', {
      type: 'radio',
      name,
      id,
      value: o.value,
      checked: Boolean(o.none),
      'aria-describedby': describedBy || null,
    });
    inputs.push(input);
    return h('label', {class: `check opt${o.none ? ' opt-none' : ''}`, for: id}, input, h('span', null, o.label));
  });
  return {
    el: h('div', {class: 'opts', role: 'radiogroup'}, labels),
    get: () => inputs.find((i) => i.checked)?.value ?? '',
    set: (v) => {
      for (const i of inputs) i.checked = i.value === (v ?? '');
    },
  };
}

function fieldControl(field, section, ctx) {
  const key = `${section.id}.${field.id}`;
  const path = `data.${key}`;
  const id = uid('f');
  const helpText = pick(field, 'help');
  const helpId = helpText ? uid('help') : null;
  const req = field.required ? requiredMark() : null;
  const label = pick(field, 'label');
  const describedBy = helpId;
  let grouped = false;
  let control;
  let get;
  let set;
  let snap = null;
  let restore = null;
  let prune = null;

  switch (field.type) {
    case 'text': {
      const input = textInput({
        id,
        maxlength: field.max_length || 200,
        'aria-describedby': describedBy,
        'aria-required': field.required ? 'true' : null,
      });
      control = input;
      get = () => input.value.trim() || null;
      set = (v) => {
        input.value = v ?? '';
      };
      break;
    }
    case 'long_text': {
      const max = field.max_length || 4000;
      const input = h('textarea', {
        id,
        class: 'input',
        rows: 5,
        maxlength: max,
        'aria-describedby': describedBy,
        'aria-required': field.required ? 'true' : null,
      });
      const counter = h('span', {class: 'ff-count'});
      const count = () => {
        counter.textContent = t('forms.chars', {n: [...input.value].length, max});
      };
      input.addEventListener('input', count);
      control = h('div', {class: 'ff-long'}, input, counter);
      get = () => (input.value.trim() ? input.value.replace(/\s+$/, '') : null);
      set = (v) => {
        input.value = v ?? '';
        count();
      };
      count();
      break;
    }
    case 'number': {
      const input = textInput({
        id,
        inputmode: field.integer ? 'numeric' : 'decimal',
        class: 'input input-num',
        'aria-describedby': describedBy,
        'aria-required': field.required ? 'true' : null,
      });
      const hasMin = field.min !== undefined && field.min !== null;
      const hasMax = field.max !== undefined && field.max !== null;
      const range = hasMin && hasMax
        ? t('forms.range.both', {min: field.min, max: field.max})
        : hasMin
          ? t('forms.range.min', {min: field.min})
          : hasMax
            ? t('forms.range.max', {max: field.max})
            : '';
      const hintText = [range, field.integer ? t('forms.integer') : ''].filter(Boolean).join(lang() === 'ja' ? '・' : ', ');
      control = h(
        'div',
        {class: 'num-wrap'},
        input,
        field.unit ? h('span', {class: 'unit'}, field.unit) : null,
        hintText ? h('span', {class: 'field-hint'}, hintText) : null,
      );
      get = () => parseNumber(input.value);
      set = (v) => {
        input.value = v === null || v === undefined ? '' : String(v);
      };
      break;
    }
    case 'date': {
      const input = h('input', {
        id,
        type: 'date',
        class: 'input input-date',
        'aria-describedby': describedBy,
        'aria-required': field.required ? 'true' : null,
      });
      control = h('div', {class: 'inline'}, input, dateButton(input, t('forms.today'), todayInJapan));
      get = () => input.value || null;
      set = (v) => {
        input.value = v ?? '';
      };
      break;
    }
    case 'date_time': {
      const input = h('input', {
        id,
        type: 'datetime-local',
        class: 'input input-datetime',
        'aria-describedby': describedBy,
        'aria-required': field.required ? 'true' : null,
      });
      control = h(
        'div',
        {class: 'inline'},
        input,
        dateButton(input, t('forms.now'), nowLocal),
        h('span', {class: 'field-hint'}, t('forms.jst')),
      );
      get = () => fromLocalInput(input.value);
      set = (v) => {
        input.value = toLocalInput(v);
      };
      break;
    }
    case 'choice': {
      const options = (field.options || []).map((o) => ({value: o.value, label: pick(o, 'label')}));
      if (options.length <= 6) {
        grouped = true;
        const group = radioGroup(options, {required: field.required, describedBy});
        control = group.el;
        get = () => group.get() || null;
        set = (v) => group.set(v);
      } else {
        const select = h(
          'select',
          {id, class: 'input', 'aria-describedby': describedBy, 'aria-required': field.required ? 'true' : null},
          h('option', {value: ''}, field.required ? t('forms.choose') : t('forms.unselected')),
          options.map((o) => h('option', {value: o.value}, o.label)),
        );
        control = select;
        get = () => select.value || null;
        set = (v) => {
          select.value = v ?? '';
        };
      }
      break;
    }
    case 'multi_choice': {
      grouped = true;
      const inputs = [];
      const labels = (field.options || []).map((o) => {
        const oid = uid('opt');
        const input = h('input', {type: 'checkbox', id: oid, value: o.value, 'aria-describedby': describedBy});
        inputs.push(input);
        return h('label', {class: 'check opt', for: oid}, input, h('span', null, pick(o, 'label')));
      });
      control = h('div', {class: 'opts opts-multi'}, labels);
      get = () => {
        const v = inputs.filter((i) => i.checked).map((i) => i.value);
        return v.length ? v : null;
      };
      set = (v) => {
        const values = Array.isArray(v) ? v : [];
        for (const i of inputs) i.checked = values.includes(i.value);
      };
      break;
    }
    case 'yes_no': {
      grouped = true;
      const group = radioGroup(
        [
          {value: 'true', label: t('common.yes')},
          {value: 'false', label: t('common.no')},
        ],
        {required: field.required, describedBy},
      );
      control = group.el;
      control.classList.add('opts-yesno');
      get = () => {
        const v = group.get();
        return v === 'true' ? true : v === 'false' ? false : null;
      };
      set = (v) => group.set(v === true ? 'true' : v === false ? 'false' : '');
      break;
    }
    case 'reference': {
      grouped = true;
      const organisation = field.target === 'organisation';
      const nameId = uid('f');
      const contactId = uid('f');
      const pickId = uid('f');
      const nameInput = textInput({id: nameId, maxlength: 100, 'aria-describedby': describedBy});
      const contactInput = textInput({id: contactId, maxlength: 200});
      let refId = null;
      let refName = null;
      const choices = [];
      if (organisation) {
        const seen = new Set();
        for (const m of ctx.members || []) {
          if (m.organisation_id && !seen.has(m.organisation_id)) {
            seen.add(m.organisation_id);
            choices.push({value: m.organisation_id, name: m.organisation_name || '', label: m.organisation_name || ''});
          }
        }
      } else {
        for (const m of ctx.members || []) {
          if (m.state !== 'accepted') continue;
          choices.push({value: m.user_id, name: m.display_name, label: personText(m)});
        }
      }
      const linked = h('span', {class: 'field-hint ref-linked', hidden: true}, t('forms.ref.linked'));
      let picker = null;
      if (choices.length) {
        picker = h(
          'select',
          {
            id: pickId,
            class: 'input',
            on: {
              change: () => {
                const c = choices.find((x) => x.value === picker.value);
                if (c) {
                  refId = c.value;
                  refName = c.name;
                  nameInput.value = c.name;
                } else {
                  refId = null;
                }
                linked.hidden = !refId;
              },
            },
          },
          h('option', {value: ''}, t('forms.ref.pickNone')),
          choices.map((c) => h('option', {value: c.value}, c.label)),
        );
      }
      nameInput.addEventListener('input', () => {
        if (refId && nameInput.value.trim() !== refName) {
          refId = null;
          if (picker) picker.value = '';
          linked.hidden = true;
        }
      });
      control = h(
        'div',
        {class: 'ref'},
        picker
          ? h(
              'div',
              {class: 'sub', 'data-slot': `${path}.id`},
              h('label', {for: pickId}, organisation ? t('forms.ref.pickOrg') : t('forms.ref.pickPerson')),
              picker,
              linked,
            )
          : null,
        h(
          'div',
          {class: 'sub', 'data-slot': `${path}.name`},
          h('label', {for: nameId}, organisation ? t('forms.ref.orgName') : t('forms.ref.name'), req ? requiredMark() : null),
          nameInput,
        ),
        h(
          'div',
          {class: 'sub', 'data-slot': `${path}.contact`},
          h('label', {for: contactId}, t('forms.ref.contact')),
          contactInput,
        ),
      );
      get = () => {
        const o = {};
        const n = nameInput.value.trim();
        const c = contactInput.value.trim();
        if (n) o.name = n;
        if (refId) o.id = refId;
        if (c) o.contact = c;
        return Object.keys(o).length ? o : null;
      };
      set = (v) => {
        const o = v && typeof v === 'object' ? v : {};
        nameInput.value = o.name ?? '';
        contactInput.value = o.contact ?? '';
        refId = o.id ?? null;
        refName = o.name ?? null;
        if (picker) picker.value = choices.some((c) => c.value === refId) ? refId : '';
        linked.hidden = !refId;
      };
      break;
    }
    case 'medication_list': {
      grouped = true;
      const editor = listEditor({
        basePath: path,
        columns: medicationColumns(),
        addLabel: t('forms.med.add'),
        itemLabel: (n) => t('forms.med.item', {n}),
        emptyText: t('forms.med.none'),
        max: 100,
        minRows: field.required ? 1 : 0,
      });
      control = editor.el;
      get = () => {
        const rows = medicationValues(editor.rows());
        return rows.length ? rows : null;
      };
      set = (v) => editor.set(Array.isArray(v) ? v : []);
      snap = () => editor.rows();
      restore = (v) => editor.set(v);
      prune = () => editor.prune();
      break;
    }
    case 'vital_signs': {
      grouped = true;
      const parts = [
        ['temperature_c', '℃', 'decimal'],
        ['systolic_mmhg', 'mmHg', 'numeric'],
        ['diastolic_mmhg', 'mmHg', 'numeric'],
        ['pulse_per_min', t('forms.unit.perMin'), 'numeric'],
        ['respiratory_rate_per_min', t('forms.unit.perMin'), 'numeric'],
        ['spo2_percent', '%', 'numeric'],
      ];
      const inputs = {};
      const cells = parts.map(([name, unit, mode]) => {
        const pid = uid('f');
        const input = textInput({id: pid, inputmode: mode, class: 'input input-num'});
        inputs[name] = input;
        return h(
          'div',
          {class: 'sub vital', 'data-slot': `${path}.${name}`},
          h('label', {for: pid}, t(`forms.vital.${name}`)),
          h('div', {class: 'num-wrap'}, input, h('span', {class: 'unit'}, unit)),
        );
      });
      const atId = uid('f');
      const at = h('input', {id: atId, type: 'datetime-local', class: 'input input-datetime'});
      inputs.measured_at = at;
      cells.push(
        h(
          'div',
          {class: 'sub vital vital-at', 'data-slot': `${path}.measured_at`},
          h('label', {for: atId}, t('forms.vital.measured_at'), h('span', {class: 'field-hint'}, ` (${t('forms.jst')})`)),
          h('div', {class: 'inline'}, at, dateButton(at, t('forms.now'), nowLocal)),
        ),
      );
      control = h('div', {class: 'vitals', 'aria-describedby': describedBy}, cells);
      get = () => {
        const o = {};
        for (const [name] of parts) {
          const v = parseNumber(inputs[name].value);
          if (v !== null) o[name] = v;
        }
        const m = fromLocalInput(at.value);
        if (m) o.measured_at = m;
        return Object.keys(o).length ? o : null;
      };
      set = (v) => {
        const o = v && typeof v === 'object' ? v : {};
        for (const [name] of parts) inputs[name].value = o[name] === undefined || o[name] === null ? '' : String(o[name]);
        at.value = toLocalInput(o.measured_at);
      };
      break;
    }
    case 'attachment': {
      grouped = true;
      let items = []; // {attachment_id, file_name, byte_size, state: 'uploading'|'done'|'error', error}
      const fileId = uid('file');
      const fileInput = h('input', {
        type: 'file',
        id: fileId,
        class: 'visually-hidden',
        accept: 'image/jpeg,image/png,application/pdf',
        multiple: true,
        // Reached through the button below: out of the tab order and of the accessibility tree.
        tabindex: '-1',
        'aria-hidden': 'true',
        'data-test': 'form-attachment-input',
      });
      const list = h('ul', {class: 'att-list'});
      const localErr = h('p', {class: 'att-error', role: 'alert', hidden: true});
      const pickBtn = h(
        'button',
        {type: 'button', class: 'btn', 'aria-describedby': describedBy, on: {click: () => fileInput.click()}},
        `＋ ${t('forms.att.add')}`,
      );
      const render = () => {
        clear(list);
        items.forEach((item, i) => {
          const name = item.file_name || t('forms.att.file', {n: i + 1});
          const status =
            item.state === 'uploading'
              ? h('span', {class: 'att-state'}, t('forms.att.uploading'))
              : item.state === 'error'
                ? h('span', {class: 'att-state att-failed'}, t('forms.att.failed', {message: item.error}))
                : h(
                    'a',
                    {
                      class: 'att-open',
                      href: `/api/rooms/${enc(ctx.roomId)}/attachments/${enc(item.attachment_id)}`,
                      target: '_blank',
                      rel: 'noopener',
                    },
                    t('forms.att.open'),
                  );
          list.append(
            h(
              'li',
              {class: `att-item att-${item.state}`},
              h('span', {class: 'att-name'}, name),
              item.byte_size ? h('span', {class: 'att-size'}, fileSize(item.byte_size)) : null,
              status,
              item.state === 'uploading'
                ? null
                : h(
                    'button',
                    {
                      type: 'button',
                      class: 'btn btn-small',
                      'aria-label': t('forms.att.remove', {name}),
                      on: {
                        click: () => {
                          items = items.filter((x) => x !== item);
                          render();
                          pickBtn.focus();
                        },
                      },
                    },
                    t('common.delete'),
                  ),
            ),
          );
        });
        pickBtn.disabled = items.length >= 10;
      };
      fileInput.addEventListener('change', () => {
        const files = [...fileInput.files];
        fileInput.value = '';
        localErr.hidden = true;
        for (const file of files) {
          if (items.length >= 10) {
            localErr.textContent = t('forms.att.tooMany');
            localErr.hidden = false;
            break;
          }
          const item = {file_name: file.name, byte_size: file.size, state: 'uploading'};
          items.push(item);
          ctx.uploads += 1;
          uploadAttachment(ctx.roomId, file)
            .then((a) => {
              item.attachment_id = a.attachment_id;
              item.file_name = a.file_name || item.file_name;
              item.byte_size = a.byte_size || item.byte_size;
              item.state = 'done';
            })
            .catch((err) => {
              item.state = 'error';
              item.error = message(err) || String(err?.message || err);
            })
            .finally(() => {
              ctx.uploads -= 1;
              render();
            });
        }
        render();
      });
      control = h(
        'div',
        {class: 'att'},
        fileInput,
        h('div', {class: 'inline'}, pickBtn, h('span', {class: 'field-hint'}, t('forms.att.hint'))),
        localErr,
        list,
      );
      get = () => {
        const ids = items.filter((i) => i.state === 'done').map((i) => i.attachment_id);
        return ids.length ? ids : null;
      };
      set = (v) => {
        items = (Array.isArray(v) ? v : []).map((x) =>
          typeof x === 'string' ? {attachment_id: x, state: 'done'} : {...x},
        );
        items = items.filter((x) => x.state === 'done');
        render();
      };
      snap = () => items.filter((x) => x.state === 'done').map((x) => ({...x}));
      restore = set;
      render();
      break;
    }
    default: {
      // A type this client does not know: show the value as JSON text, send it back parsed.
      const input = h('textarea', {id, class: 'input', rows: 3, 'aria-describedby': describedBy});
      control = input;
      get = () => {
        const v = input.value.trim();
        if (!v) return null;
        try {
          return JSON.parse(v);
        } catch {
          return v;
        }
      };
      set = (v) => {
        input.value = v === undefined || v === null ? '' : JSON.stringify(v);
      };
    }
  }

  const help = helpText ? h('p', {class: 'field-hint ff-help', id: helpId}, helpText) : null;
  const labelEl = grouped
    ? h('legend', {class: 'field-label'}, label, req)
    : h('label', {class: 'field-label', for: id}, label, req);
  const el = h(
    grouped ? 'fieldset' : 'div',
    {
      class: `field ff ff-${field.type}`,
      'data-test': 'form-field',
      'data-path': path,
      'data-slot': path,
      'data-type': field.type,
      'aria-describedby': grouped && helpId ? helpId : null,
    },
    labelEl,
    help,
    h('div', {class: 'slot-errs'}),
    control,
  );
  return {
    key,
    path,
    field,
    section,
    el,
    get,
    set,
    snap: snap || get,
    restore: restore || set,
    prune,
  };
}

/**
 * The fields of a template as a form: {el, collect(), snapshot(), restore(s), refresh()}.
 * collect() answers the data to send: shown fields only, blank values left out.
 */
function templateForm(def, ctx, initial) {
  const controls = new Map();
  const sectionEls = new Map();
  const sections = def.sections.map((section) => {
    const fields = section.fields.map((field) => {
      const c = fieldControl(field, section, ctx);
      controls.set(c.key, c);
      const v = initial?.[section.id]?.[field.id];
      if (v !== undefined && v !== null) c.set(v);
      return c.el;
    });
    const el = h(
      'fieldset',
      {class: 'fm-section', 'data-slot': `data.${section.id}`, 'data-section': section.id},
      h('legend', {class: 'fm-section-title'}, pick(section, 'label')),
      h('div', {class: 'slot-errs'}),
      fields,
    );
    sectionEls.set(section.id, el);
    return el;
  });
  const vis = visibility(def, (path) => controls.get(path)?.get() ?? null);
  const el = h('div', {class: 'fm-sections', 'data-slot': 'data'}, h('div', {class: 'slot-errs'}), sections);

  function refresh() {
    for (const section of def.sections) {
      const sectionShown = vis.sectionVisible(section);
      sectionEls.get(section.id).hidden = !sectionShown;
      for (const field of section.fields) {
        const c = controls.get(`${section.id}.${field.id}`);
        c.el.hidden = !(sectionShown && vis.fieldVisible(section, field));
      }
    }
  }
  el.addEventListener('input', refresh);
  el.addEventListener('change', refresh);
  refresh();

  function collect() {
    for (const c of controls.values()) if (c.prune) c.prune();
    const data = {};
    for (const section of def.sections) {
      if (!vis.sectionVisible(section)) continue;
      const obj = {};
      for (const field of section.fields) {
        if (!vis.fieldVisible(section, field)) continue;
        const v = controls.get(`${section.id}.${field.id}`).get();
        if (v !== null && v !== undefined) obj[field.id] = v;
      }
      if (Object.keys(obj).length) data[section.id] = obj;
    }
    return data;
  }

  function snapshot() {
    const s = {};
    for (const [key, c] of controls) s[key] = c.snap();
    return s;
  }

  function restore(s) {
    for (const [key, v] of Object.entries(s || {})) {
      const c = controls.get(key);
      if (c && v !== null && v !== undefined) c.restore(v);
    }
    refresh();
  }

  return {el, collect, snapshot, restore, refresh};
}

// ---------------------------------------------------------------------------------------
// Drafts: what was typed survives a re-render of the same screen (language switch, a tab
// tapped by mistake) — in memory only, for the same session, never in browser storage.
// ---------------------------------------------------------------------------------------

let draft = null; // {session, key, form, extra, clientId}

export function takeDraft(key) {
  const session = me()?.session_id;
  if (draft && draft.session === session && draft.key === key) return draft;
  draft = null;
  return null;
}

export function keepDraft(key, value) {
  draft = {session: me()?.session_id, key, ...value};
}

export function dropDraft(key) {
  if (draft && draft.key === key) draft = null;
}

/** Forgets every draft (called on logout by anyone who cares; harmless otherwise). */
export function forgetDrafts() {
  draft = null;
}

// ---------------------------------------------------------------------------------------
// Read-only rendering of form data
// ---------------------------------------------------------------------------------------

function blankValue() {
  return h('span', {class: 'fv-empty'}, t('forms.blank'));
}

function isBlankValue(v) {
  if (v === null || v === undefined) return true;
  if (typeof v === 'string') return v.trim() === '';
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.values(v).every((x) => x === null || x === undefined || x === '');
  return false;
}

function formatValue(field, v, roomId) {
  if (isBlankValue(v)) return blankValue();
  const optionLabel = (value) => {
    const o = (field.options || []).find((x) => x.value === value);
    return o ? pick(o, 'label') : String(value);
  };
  switch (field.type) {
    case 'text':
    case 'long_text':
      return h('span', {class: 'fv-text'}, String(v));
    case 'number':
      return h('span', null, `${v}${field.unit ? ` ${field.unit}` : ''}`);
    case 'date':
      return h('span', null, dayText(String(v)));
    case 'date_time':
      return h('span', null, formatDateTime(String(v)));
    case 'choice':
      return h('span', null, optionLabel(v));
    case 'multi_choice':
      return Array.isArray(v)
        ? h('ul', {class: 'fv-tags'}, v.map((x) => h('li', null, optionLabel(x))))
        : h('span', null, String(v));
    case 'yes_no':
      return h('span', {class: `fv-yesno fv-${v ? 'yes' : 'no'}`}, v === true ? t('common.yes') : v === false ? t('common.no') : String(v));
    case 'reference':
      return h(
        'span',
        null,
        v.name ?? '',
        v.contact ? h('span', {class: 'fv-sub'}, ` ${v.contact}`) : null,
      );
    case 'medication_list':
      return Array.isArray(v) ? medicationTable(v) : h('span', null, JSON.stringify(v));
    case 'vital_signs': {
      const units = {
        temperature_c: '℃',
        systolic_mmhg: 'mmHg',
        diastolic_mmhg: 'mmHg',
        pulse_per_min: t('forms.unit.perMin'),
        respiratory_rate_per_min: t('forms.unit.perMin'),
        spo2_percent: '%',
      };
      const rows = [];
      for (const [name, unit] of Object.entries(units)) {
        if (v[name] !== undefined && v[name] !== null) {
          rows.push(h('div', {class: 'fv-vital'}, h('dt', null, t(`forms.vital.${name}`)), h('dd', null, `${v[name]} ${unit}`)));
        }
      }
      if (v.measured_at) {
        rows.push(
          h('div', {class: 'fv-vital'}, h('dt', null, t('forms.vital.measured_at')), h('dd', null, formatDateTime(v.measured_at))),
        );
      }
      return h('dl', {class: 'fv-vitals'}, rows);
    }
    case 'attachment':
      return Array.isArray(v)
        ? h(
            'ul',
            {class: 'fv-attachments'},
            v.map((id, i) =>
              h(
                'li',
                null,
                h(
                  'a',
                  {href: `/api/rooms/${enc(roomId)}/attachments/${enc(id)}`, target: '_blank', rel: 'noopener'},
                  t('forms.att.file', {n: i + 1}),
                ),
              ),
            ),
          )
        : h('span', null, String(v));
    default:
      return h('span', {class: 'fv-text'}, typeof v === 'string' ? v : JSON.stringify(v));
  }
}

function readonlyForm(def, data, roomId) {
  const d = data && typeof data === 'object' ? data : {};
  if (!def) {
    return h(
      'div',
      {class: 'fv'},
      h('p', {class: 'banner banner-info'}, t('forms.rawData')),
      Object.entries(d).map(([sid, fields]) =>
        h(
          'section',
          {class: 'fv-section'},
          h('h3', null, sid),
          h(
            'dl',
            {class: 'fv-list'},
            Object.entries(fields || {}).map(([fid, v]) =>
              h('div', {class: 'fv-row'}, h('dt', null, fid), h('dd', null, h('span', {class: 'fv-text'}, typeof v === 'string' ? v : JSON.stringify(v, null, 1)))),
            ),
          ),
        ),
      ),
    );
  }
  const vis = visibility(def, (path) => {
    const [s, f] = path.split('.');
    return d[s]?.[f] ?? null;
  });
  return h(
    'div',
    {class: 'fv'},
    def.sections
      .filter((s) => vis.sectionVisible(s))
      .map((section) =>
        h(
          'section',
          {class: 'fv-section', 'data-section': section.id},
          h('h3', null, pick(section, 'label')),
          h(
            'dl',
            {class: 'fv-list'},
            section.fields
              .filter((f) => vis.fieldVisible(section, f))
              .map((field) =>
                h(
                  'div',
                  {class: `fv-row fv-${field.type}`, 'data-path': `data.${section.id}.${field.id}`},
                  h('dt', null, pick(field, 'label')),
                  h('dd', null, formatValue(field, d[section.id]?.[field.id], roomId)),
                ),
              ),
          ),
        ),
      ),
  );
}

// ---------------------------------------------------------------------------------------
// Shared bits of the lists
// ---------------------------------------------------------------------------------------

function statusBadge(status) {
  return h('span', {class: `badge badge-${status === 'completed' ? 'done' : 'open'}`, 'data-status': status}, t(`forms.status.${status}`));
}

function recipientBadge(status) {
  return h('span', {class: `badge badge-r-${status}`}, t(`forms.rstatus.${status}`));
}

function overdueBadge() {
  return h('span', {class: 'badge badge-overdue'}, t('forms.overdue'));
}

function addresseeText(to, recipients) {
  if (!to) return '';
  if (to.kind === 'role') return t('forms.toRole', {role: roleName(to.role)});
  const names = (recipients || []).map((r) => r.display_name);
  return names.join(lang() === 'ja' ? '、' : ', ');
}

function dueBlock(f) {
  return h(
    'span',
    {class: `due${f.overdue ? ' due-overdue' : ''}`},
    f.due_on ? dayText(f.due_on) : t('forms.noDue'),
  );
}

function templateTitle(ref) {
  return pick(ref, 'title');
}

/** One live-event listener for the whole module; the screen on display sets `onFormEvent`. */
let onFormEvent = null;
function formEventArrived(roomId, event) {
  const name = event?.event?.event || event?.event;
  const isForm =
    (event?.type === 'system' && typeof name === 'string' && name.startsWith('form_')) ||
    (typeof event?.type === 'string' && event.type.startsWith('form_'));
  if (isForm && onFormEvent) onFormEvent(roomId, event);
}

/**
 * Calls fn() again when a form event of a watched room arrives, and every minute while the page
 * is visible (rooms that nobody watches send no events), until the user leaves the screen.
 */
function watchForms(fn) {
  let timer = null;
  const handler = (roomId, event) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(roomId, event), 400);
  };
  onFormEvent = handler;
  const poll = setInterval(() => {
    if (document.visibilityState === 'visible') fn(undefined, null);
  }, 60000);
  onLeave(() => {
    clearTimeout(timer);
    clearInterval(poll);
    if (onFormEvent === handler) onFormEvent = null;
  });
}

// ---------------------------------------------------------------------------------------
// /rooms/:roomId/forms
// ---------------------------------------------------------------------------------------

const FILTERS = ['all', 'open', 'overdue', 'mine'];
const roomFilter = new Map(); // roomId -> filter (in memory)

async function roomFormsScreen(view, params) {
  const roomId = params.roomId;
  const {content} = await roomShell(view, roomId, 'forms');
  const listHost = h('div', {class: 'fm-list-host'});
  const filterBar = h('div', {class: 'chips', role: 'group', 'aria-label': t('forms.filter.label')});
  const canCreate = isProfessional();
  mount(
    content,
    h(
      'div',
      {class: 'fm-page'},
      h(
        'div',
        {class: 'fm-toolbar'},
        h('h2', {class: 'fm-h'}, t('forms.title')),
        h(
          'div',
          {class: 'fm-toolbar-actions'},
          h('button', {type: 'button', class: 'btn', on: {click: () => load()}}, t('forms.reload')),
          canCreate
            ? h(
                'button',
                {type: 'button', class: 'btn btn-primary', 'data-test': 'form-new', on: {click: () => navigate(`/rooms/${roomId}/forms/new`)}},
                `＋ ${t('forms.new')}`,
              )
            : null,
        ),
      ),
      filterBar,
      listHost,
    ),
  );
  let forms = [];
  const me_ = userId();

  function matches(f, filter) {
    if (filter === 'open') return f.status === 'open';
    if (filter === 'overdue') return f.overdue;
    if (filter === 'mine') return (f.recipients || []).some((r) => r.user_id === me_);
    return true;
  }

  function renderList() {
    const filter = roomFilter.get(roomId) || 'all';
    clear(filterBar);
    for (const key of FILTERS) {
      const n = forms.filter((f) => matches(f, key)).length;
      filterBar.append(
        h(
          'button',
          {
            type: 'button',
            class: `chip${key === filter ? ' chip-on' : ''}${key === 'overdue' && n ? ' chip-alert' : ''}`,
            'aria-pressed': key === filter ? 'true' : 'false',
            'data-test': 'form-filter',
            'data-filter': key,
            on: {
              click: () => {
                roomFilter.set(roomId, key);
                renderList();
              },
            },
          },
          `${t(`forms.filter.${key}`)} ${n}`,
        ),
      );
    }
    const shown = forms.filter((f) => matches(f, filter));
    if (!forms.length) {
      mount(listHost, emptyBlock(t('forms.list.empty')));
      return;
    }
    if (!shown.length) {
      mount(listHost, emptyBlock(t('forms.list.emptyFiltered')));
      return;
    }
    mount(listHost, h('ul', {class: 'fm-list'}, shown.map((f) => formItem(f))));
  }

  async function load() {
    if (!forms.length) mount(listHost, loadingBlock());
    try {
      const answer = await api('GET', `/api/rooms/${enc(roomId)}/forms`);
      forms = answer?.forms || [];
      renderList();
    } catch (err) {
      failedBlock(listHost, err, load);
    }
  }
  watchForms((rid) => {
    if (rid === roomId || rid === undefined) load();
  });
  await load();
}

function formItem(f) {
  const mine = (f.recipients || []).find((r) => r.user_id === userId());
  return h(
    'li',
    {
      class: `fm-item${f.overdue ? ' is-overdue' : ''}${f.status === 'completed' ? ' is-done' : ''}`,
      'data-test': 'form-item',
      'data-form-id': f.id,
      'data-status': f.status,
      'data-overdue': f.overdue ? 'true' : 'false',
    },
    h(
      'div',
      {class: 'fm-item-main'},
      h(
        'a',
        {class: 'fm-item-title', href: href(`/forms/${f.id}`)},
        f.reply_to ? h('span', {class: 'badge badge-reply'}, t('forms.isReply')) : null,
        templateTitle(f.template),
        f.version > 1 ? h('span', {class: 'fm-version'}, t('forms.version', {n: f.version})) : null,
      ),
      h(
        'dl',
        {class: 'fm-meta'},
        h('div', null, h('dt', null, t('forms.sender')), h('dd', null, personText(f.sender))),
        h('div', null, h('dt', null, t('forms.sentAt')), h('dd', null, formatDateTime(f.sent_at))),
        h('div', null, h('dt', null, t('forms.to')), h('dd', null, addresseeText(f.to, f.recipients))),
        h('div', null, h('dt', null, t('forms.due')), h('dd', null, dueBlock(f))),
      ),
      h(
        'ul',
        {class: 'fm-recipients', 'aria-label': t('forms.recipients')},
        (f.recipients || []).map((r) =>
          h(
            'li',
            {class: `rcp rcp-${r.status}`, 'data-user-id': r.user_id, 'data-status': r.status},
            h('span', {class: 'rcp-name'}, r.display_name),
            recipientBadge(r.status),
          ),
        ),
      ),
    ),
    h(
      'div',
      {class: 'fm-item-side'},
      statusBadge(f.status),
      f.overdue ? overdueBadge() : null,
      mine && !['answered', 'acknowledged'].includes(mine.status) && f.status === 'open'
        ? h('span', {class: 'badge badge-todo'}, t('forms.filter.mine'))
        : null,
    ),
  );
}

// ---------------------------------------------------------------------------------------
// /inbox
// ---------------------------------------------------------------------------------------

async function inboxScreen(view) {
  const listHost = h('div', {class: 'fm-list-host'});
  mount(
    view,
    h(
      'div',
      {class: 'page fm-page'},
      h(
        'div',
        {class: 'fm-toolbar'},
        h('h1', {class: 'fm-h'}, t(isFamily() ? 'forms.inbox.title_family' : 'forms.inbox.title')),
        h('div', {class: 'fm-toolbar-actions'}, h('button', {type: 'button', class: 'btn', on: {click: () => load()}}, t('forms.reload'))),
      ),
      h('p', {class: 'lead'}, t(isFamily() ? 'forms.inbox.lead_family' : 'forms.inbox.lead')),
      listHost,
    ),
  );
  let loaded = false;
  async function load() {
    if (!loaded) mount(listHost, loadingBlock());
    try {
      const answer = await api('GET', '/api/forms/inbox');
      loaded = true;
      const forms = answer?.forms || [];
      if (!forms.length) {
        mount(listHost, emptyBlock(t(isFamily() ? 'forms.inbox.empty_family' : 'forms.inbox.empty')));
        return;
      }
      mount(listHost, h('ul', {class: 'fm-list fm-inbox'}, forms.map((f) => inboxItem(f))));
    } catch (err) {
      failedBlock(listHost, err, load);
    }
  }
  watchForms(() => load());
  await load();
}

function inboxItem(f) {
  return h(
    'li',
    {class: `fm-item fm-inbox-item${f.overdue ? ' is-overdue' : ''}`},
    h(
      'a',
      {
        class: 'fm-inbox-link',
        href: href(`/forms/${f.id}`),
        'data-test': 'inbox-item',
        'data-form-id': f.id,
        'data-status': f.my_status || f.status,
        'data-overdue': f.overdue ? 'true' : 'false',
      },
      h(
        'div',
        {class: 'fm-inbox-due'},
        h('span', {class: 'fm-inbox-due-label'}, t('forms.due')),
        dueBlock(f),
        f.overdue ? overdueBadge() : null,
      ),
      h(
        'div',
        {class: 'fm-item-main'},
        h('span', {class: 'fm-inbox-patient'}, f.patient_name || ''),
        h(
          'span',
          {class: 'fm-item-title'},
          f.reply_to ? h('span', {class: 'badge badge-reply'}, t('forms.isReply')) : null,
          templateTitle(f.template),
        ),
        h(
          'span',
          {class: 'fm-inbox-from'},
          `${t('forms.sender')}: ${personText(f.sender)} · ${formatDateTime(f.sent_at)}`,
        ),
      ),
      h('div', {class: 'fm-item-side'}, f.my_status ? recipientBadge(f.my_status) : statusBadge(f.status)),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Filling a form: shared by sending, answering and correcting
// ---------------------------------------------------------------------------------------

/**
 * A form page: the banner host, the template's fields, optional blocks before and after
 * them, and the submit bar. onSubmit(data) sends; it throws ApiError to show.
 */
function formEditor({def, ctx, initial, before = [], after = [], submitLabel, submitTest = 'form-submit', cancelHref, onSubmit, draftKey, extraSnapshot, extraRestore}) {
  const host = h('div', {class: 'fm-errors', 'aria-live': 'assertive'});
  const tf = templateForm(def, ctx, initial);
  const submit = h('button', {type: 'submit', class: 'btn btn-primary btn-large', 'data-test': submitTest}, submitLabel);
  const form = h(
    'form',
    {class: 'fm-form', novalidate: true, autocomplete: 'off'},
    host,
    h('p', {class: 'field-hint fm-required-note'}, t('forms.requiredNote')),
    before,
    tf.el,
    after,
    h(
      'div',
      {class: 'fm-submitbar'},
      cancelHref ? h('a', {class: 'btn', href: cancelHref}, t('forms.cancel')) : null,
      submit,
    ),
  );
  if (draftKey) {
    const saved = takeDraft(draftKey);
    if (saved) {
      tf.restore(saved.form);
      if (extraRestore) extraRestore(saved.extra);
      host.append(h('p', {class: 'banner banner-info', role: 'status'}, t('forms.draftRestored')));
    }
    const save = () => keepDraft(draftKey, {form: tf.snapshot(), extra: extraSnapshot ? extraSnapshot() : null, clientId: ctx.clientId});
    form.addEventListener('input', save);
    form.addEventListener('change', save);
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (ctx.uploads > 0) {
      showFormErrors(form, host, localError('forms.uploading'));
      return;
    }
    withBusy(submit, t('forms.sending'), async () => {
      const data = tf.collect();
      try {
        await onSubmit(data, {form, host});
        if (draftKey) dropDraft(draftKey);
      } catch (err) {
        if (err instanceof ApiError) showFormErrors(form, host, err);
        else {
          console.error(err);
          showFormErrors(form, host, localError('forms.unknownError'));
        }
      }
    });
  });
  return {el: form, host, tf};
}

/** A stored Template carries its definition flattened in it. */
function templateDefinitionOf(template) {
  return template;
}

// ---------------------------------------------------------------------------------------
// /rooms/:roomId/forms/new?template=KEY
// ---------------------------------------------------------------------------------------

function maySend(summary) {
  const r = role();
  const senders = summary.sender_roles || [];
  return senders.length ? senders.includes(r) : isProfessional();
}

async function newFormScreen(view, params, query) {
  const roomId = params.roomId;
  const key = query.template || '';
  const {content, room} = await roomShell(view, roomId, 'forms');
  mount(content, loadingBlock());
  let templates;
  let members;
  try {
    const [list, m] = await Promise.all([
      api('GET', '/api/form-templates'),
      api('GET', `/api/rooms/${enc(roomId)}/members`),
    ]);
    templates = (list?.templates || []).filter(maySend);
    members = Array.isArray(m) ? m : [];
  } catch (err) {
    failedBlock(content, err, () => newFormScreen(view, params, query));
    return;
  }
  // Answer templates (named by another template as its answer) are listed last.
  const answerKeys = new Set(['reply', 'care_meeting_inquiry_answer']);
  const main = templates.filter((x) => !answerKeys.has(x.key));
  const answers = templates.filter((x) => answerKeys.has(x.key));
  const selectId = uid('tpl');
  const select = h(
    'select',
    {
      id: selectId,
      class: 'input input-wide',
      'data-test': 'form-template',
      on: {
        change: () => {
          const next = select.value;
          if (draft && draft.key === `send:${roomId}:${key}` && key && next !== key && !window.confirm(t('forms.new.discard'))) {
            select.value = key;
            return;
          }
          navigate(`/rooms/${roomId}/forms/new${next ? `?template=${enc(next)}` : ''}`);
        },
      },
    },
    h('option', {value: ''}, t('forms.new.choose')),
    main.map((x) => h('option', {value: x.key}, pick(x, 'title'))),
    answers.length
      ? h('optgroup', {label: t('forms.new.answerTemplates')}, answers.map((x) => h('option', {value: x.key}, pick(x, 'title'))))
      : null,
  );
  select.value = templates.some((x) => x.key === key) ? key : '';
  const head = h(
    'div',
    {class: 'fm-toolbar'},
    h('h2', {class: 'fm-h'}, t('forms.new.title')),
    h('div', {class: 'fm-toolbar-actions'}, h('a', {class: 'btn', href: href(`/rooms/${roomId}/forms`)}, t('forms.backToList'))),
  );
  const chooser = h(
    'div',
    {class: 'field ff fm-chooser'},
    h('label', {class: 'field-label', for: selectId}, t('forms.new.template')),
    select,
  );
  if (!templates.length) {
    mount(content, h('div', {class: 'fm-page'}, head, emptyBlock(t('forms.new.none'))));
    return;
  }
  const consentOk = !room || room.consent === undefined || room.consent === 'given';
  const consentBanner = consentOk ? null : h('p', {class: 'banner banner-warning', role: 'alert'}, t('forms.new.noConsent'));
  if (!key) {
    mount(
      content,
      h(
        'div',
        {class: 'fm-page'},
        head,
        consentBanner,
        chooser,
        h(
          'ul',
          {class: 'tpl-cards'},
          [...main, ...answers].map((x) =>
            h(
              'li',
              null,
              h(
                'a',
                {class: 'tpl-card', href: href(`/rooms/${roomId}/forms/new?template=${enc(x.key)}`), 'data-template': x.key},
                h('span', {class: 'tpl-title'}, pick(x, 'title')),
                (x.recipient_roles || []).length
                  ? h('span', {class: 'tpl-to'}, t('forms.new.usualTo', {roles: x.recipient_roles.map(roleName).join(lang() === 'ja' ? '・' : ', ')}))
                  : null,
              ),
            ),
          ),
        ),
      ),
    );
    return;
  }
  const summary = templates.find((x) => x.key === key);
  if (!summary) {
    mount(content, h('div', {class: 'fm-page'}, head, chooser, h('p', {class: 'banner banner-warning', role: 'alert'}, t('forms.new.unknownTemplate'))));
    return;
  }
  let template;
  try {
    template = await api('GET', `/api/form-templates/${enc(key)}`);
  } catch (err) {
    const box = h('div', {class: 'stack'});
    mount(content, h('div', {class: 'fm-page'}, head, chooser, box));
    failedBlock(box, err, () => newFormScreen(view, params, query));
    return;
  }
  const def = templateDefinitionOf(template);
  if (!consentOk) {
    mount(content, h('div', {class: 'fm-page'}, head, consentBanner, chooser));
    return;
  }
  const draftKey = `send:${roomId}:${key}`;
  const saved = takeDraft(draftKey);
  const ctx = {roomId, members, uploads: 0, clientId: saved?.clientId || crypto.randomUUID()};
  const addr = addresseeBlock(def, members);
  const editor = formEditor({
    def,
    ctx,
    initial: null,
    after: [addr.el],
    submitLabel: t('forms.submit'),
    cancelHref: href(`/rooms/${roomId}/forms`),
    draftKey,
    extraSnapshot: () => addr.snapshot(),
    extraRestore: (s) => addr.restore(s),
    onSubmit: async (data, {form, host}) => {
      const problems = addr.check();
      const body = {
        client_id: ctx.clientId,
        template: def.key,
        template_version: template.version,
        to: problems.length ? {kind: 'members', user_ids: []} : addr.to(),
        visibility: addr.visibility(),
        data,
      };
      let due = addr.due();
      const fallback = def.due ? null : replyByField(def);
      if (!due && fallback) due = data?.[fallback.section.id]?.[fallback.field.id] || null;
      if (due) body.due_on = due;
      let sent;
      try {
        // Without an addressee the server refuses the form (after checking its data), so
        // every problem is shown at once: the server's for the data, ours for the addressee.
        sent = await api('POST', `/api/rooms/${enc(roomId)}/forms`, body);
      } catch (err) {
        if (problems.length && err instanceof ApiError && err.status === 400) {
          const local = localError('forms.to.check', problems);
          const dataProblems = err.fields.filter((f) => !f.field.startsWith('to'));
          throw dataProblems.length
            ? new ApiError(400, {
                code: err.code,
                message_ja: err.message_ja,
                message_en: err.message_en,
                fields: [...dataProblems, ...local.fields],
              })
            : local;
        }
        throw err;
      }
      dropDraft(draftKey);
      flash = {formId: sent.id, text: t('forms.sent')};
      navigate(`/forms/${sent.id}`);
    },
  });
  mount(
    content,
    h(
      'div',
      {class: 'fm-page'},
      head,
      chooser,
      h(
        'div',
        {class: 'fm-paper'},
        h('h3', {class: 'fm-paper-title'}, pick(def, 'title')),
        pick(def, 'description') ? h('p', {class: 'fm-desc'}, pick(def, 'description')) : null,
        editor.el,
      ),
    ),
  );
}

/** A date field of the template that names the reply date (e.g. meeting.reply_by). */
function replyByField(def) {
  for (const section of def.sections) {
    for (const field of section.fields) {
      if (field.type === 'date' && /^(reply_by|reply_due|due_on|answer_by)$/.test(field.id)) return {section, field};
    }
  }
  return null;
}

/** Addressee, visibility and due date of a new form. */
function addresseeBlock(def, members) {
  const me_ = userId();
  const others = members.filter((m) => m.state === 'accepted' && m.user_id !== me_);
  const professionalSender = isProfessional();
  const eligible = (m, vis) => isProfessionalRole(m.role) || ((m.role === 'family' || m.role === 'patient') && vis === 'everyone');

  // Visibility
  const visName = uid('vis');
  const visInputs = ['care_team', 'everyone'].map((v) => {
    const id = uid('opt');
    const input = h('input', {
      type: 'radio',
      name: visName,
      id,
      value: v,
      checked: professionalSender ? v === 'care_team' : v === 'everyone',
      disabled: !professionalSender && v === 'care_team',
      'data-test': `form-visibility-${v}`,
    });
    return {
      input,
      el: h(
        'label',
        {class: 'check opt', for: id},
        input,
        h('span', null, t(`forms.vis.${v}`), h('span', {class: 'opt-hint'}, t(v === 'care_team' ? 'forms.vis.careTeamHint' : 'forms.vis.everyoneHint'))),
      ),
    };
  });
  const vis = () => visInputs.find((x) => x.input.checked)?.input.value || 'care_team';

  // Mode
  const modeName = uid('mode');
  const modeInputs = ['role', 'members'].map((v) => {
    const id = uid('opt');
    const input = h('input', {type: 'radio', name: modeName, id, value: v, checked: v === 'role', 'data-test': `form-send-mode-${v}`});
    return {input, el: h('label', {class: 'check opt', for: id}, input, h('span', null, t(v === 'role' ? 'forms.to.byRole' : 'forms.to.byMembers')))};
  });
  const mode = () => modeInputs.find((x) => x.input.checked)?.input.value || 'role';

  // Role
  const roleId = uid('role');
  const roleSelect = h('select', {id: roleId, class: 'input input-wide', 'data-test': 'form-send-role'});
  const usual = def.recipient_roles || [];
  function fillRoles() {
    const keep = roleSelect.value;
    const byRole = new Map();
    for (const m of others) {
      if (!eligible(m, vis())) continue;
      if (!byRole.has(m.role)) byRole.set(m.role, []);
      byRole.get(m.role).push(m.display_name);
    }
    const ordered = [...usual.filter((r) => byRole.has(r)), ...[...byRole.keys()].filter((r) => !usual.includes(r))];
    clear(roleSelect);
    roleSelect.append(h('option', {value: ''}, t('forms.to.chooseRole')));
    for (const r of ordered) {
      const names = byRole.get(r);
      const shown = names.slice(0, 3).join(lang() === 'ja' ? '、' : ', ') + (names.length > 3 ? '…' : '');
      roleSelect.append(
        h('option', {value: r}, t('forms.to.roleOption', {role: roleName(r), names: shown}) + (usual.includes(r) ? t('forms.to.usual') : '')),
      );
    }
    if (ordered.includes(keep)) roleSelect.value = keep;
    else roleSelect.value = ordered.find((r) => usual.includes(r)) || '';
    roleEmpty.hidden = ordered.length > 0;
  }
  const roleEmpty = h('p', {class: 'field-hint'}, t('forms.to.noOne'));
  const roleBlock = h(
    'div',
    {class: 'field ff', 'data-slot': 'to.role'},
    h('label', {class: 'field-label', for: roleId}, t('forms.to.role'), requiredMark()),
    h('div', {class: 'slot-errs'}),
    roleSelect,
    roleEmpty,
  );

  // Members
  const memberInputs = [];
  const memberList = h('div', {class: 'opts opts-members'});
  const membersEmpty = h('p', {class: 'field-hint'}, t('forms.to.noOne'));
  function fillMembers() {
    const checked = new Set(memberInputs.filter((i) => i.checked).map((i) => i.value));
    memberInputs.length = 0;
    clear(memberList);
    for (const m of others) {
      if (!eligible(m, vis())) continue;
      const id = uid('opt');
      const input = h('input', {type: 'checkbox', id, value: m.user_id, checked: checked.has(m.user_id), 'data-test': 'form-send-member'});
      memberInputs.push(input);
      memberList.append(h('label', {class: 'check opt', for: id}, input, h('span', null, personText(m))));
    }
    membersEmpty.hidden = memberInputs.length > 0;
  }
  const membersBlock = h(
    'fieldset',
    {class: 'field ff', 'data-slot': 'to.user_ids'},
    h('legend', {class: 'field-label'}, t('forms.to.members'), requiredMark()),
    h('div', {class: 'slot-errs'}),
    memberList,
    membersEmpty,
  );

  function showMode() {
    roleBlock.hidden = mode() !== 'role';
    membersBlock.hidden = mode() !== 'members';
  }
  for (const x of modeInputs) x.input.addEventListener('change', showMode);
  for (const x of visInputs) {
    x.input.addEventListener('change', () => {
      fillRoles();
      fillMembers();
    });
  }

  // Due date
  let dueInput = null;
  let dueBlockEl;
  if (def.due) {
    const rule = def.due;
    let text;
    if (rule.field) {
      const [s, f] = rule.field.split('.');
      const field = def.sections.find((x) => x.id === s)?.fields.find((x) => x.id === f);
      const name = field ? pick(field, 'label') : rule.field;
      text = rule.days >= 0 ? t('forms.dueRule.after', {field: name, days: rule.days}) : t('forms.dueRule.before', {field: name, days: -rule.days});
    } else {
      text = t('forms.dueRule.sent', {days: rule.days});
    }
    dueBlockEl = h('div', {class: 'field ff', 'data-slot': 'due_on'}, h('p', {class: 'field-label'}, t('forms.dueOn')), h('div', {class: 'slot-errs'}), h('p', {class: 'field-hint ff-help'}, text));
  } else {
    const id = uid('due');
    const helpId = uid('help');
    dueInput = h('input', {id, type: 'date', class: 'input input-date', min: todayInJapan(), 'aria-describedby': helpId, 'data-test': 'form-due'});
    const fallback = replyByField(def);
    dueBlockEl = h(
      'div',
      {class: 'field ff', 'data-slot': 'due_on'},
      h('label', {class: 'field-label', for: id}, t('forms.dueOn')),
      h(
        'p',
        {class: 'field-hint ff-help', id: helpId},
        fallback ? t('forms.dueOnFromField', {field: pick(fallback.field, 'label')}) : t('forms.dueOnHint'),
      ),
      h('div', {class: 'slot-errs'}),
      dueInput,
    );
  }

  fillRoles();
  fillMembers();
  showMode();

  const el = h(
    'fieldset',
    {class: 'fm-section fm-addressee', 'data-slot': 'to'},
    h('legend', {class: 'fm-section-title'}, t('forms.addressee')),
    h('div', {class: 'slot-errs'}),
    h(
      'fieldset',
      {class: 'field ff', 'data-slot': 'visibility'},
      h('legend', {class: 'field-label'}, t('forms.visibility')),
      h('div', {class: 'slot-errs'}),
      h('div', {class: 'opts'}, visInputs.map((x) => x.el)),
    ),
    h(
      'fieldset',
      {class: 'field ff'},
      h('legend', {class: 'field-label'}, t('forms.to.mode')),
      h('div', {class: 'opts'}, modeInputs.map((x) => x.el)),
    ),
    roleBlock,
    membersBlock,
    dueBlockEl,
  );

  return {
    el,
    visibility: vis,
    to: () =>
      mode() === 'role'
        ? {kind: 'role', role: roleSelect.value}
        : {kind: 'members', user_ids: memberInputs.filter((i) => i.checked).map((i) => i.value)},
    due: () => (dueInput && dueInput.value) || null,
    check: () => {
      if (mode() === 'role' && !roleSelect.value) return [{field: 'to.role', key: 'forms.to.pickRole'}];
      if (mode() === 'members' && !memberInputs.some((i) => i.checked)) return [{field: 'to.user_ids', key: 'forms.to.pickMembers'}];
      return [];
    },
    snapshot: () => ({
      vis: vis(),
      mode: mode(),
      role: roleSelect.value,
      members: memberInputs.filter((i) => i.checked).map((i) => i.value),
      due: dueInput ? dueInput.value : '',
    }),
    restore: (s) => {
      if (!s) return;
      for (const x of visInputs) x.input.checked = x.input.value === s.vis && !x.input.disabled;
      fillRoles();
      for (const x of modeInputs) x.input.checked = x.input.value === s.mode;
      fillMembers();
      for (const i of memberInputs) i.checked = (s.members || []).includes(i.value);
      if ([...roleSelect.options].some((o) => o.value === s.role)) roleSelect.value = s.role;
      if (dueInput) dueInput.value = s.due || '';
      showMode();
    },
  };
}

// ---------------------------------------------------------------------------------------
// /forms/:formId
// ---------------------------------------------------------------------------------------

async function loadTemplate(key, version) {
  try {
    return await api('GET', `/api/form-templates/${enc(key)}${version ? `?version=${enc(version)}` : ''}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 403)) return null;
    throw err;
  }
}

/** A message for the next form screen (after sending, answering, correcting). */
let flash = null;

async function formScreen(view, params, query) {
  const formId = params.formId;
  const version = query.version && /^\d+$/.test(query.version) ? query.version : null;
  mount(view, loadingBlock());
  const form = await api('GET', `/api/forms/${enc(formId)}${version ? `?version=${version}` : ''}`);
  const template = await loadTemplate(form.template.key, form.template.version);
  const {content} = await roomShell(view, form.room_id, 'forms');
  const notice = flash && flash.formId === form.id ? flash.text : null;
  flash = null;
  renderForm(content, form, template, notice);
}

function renderForm(content, form, template, notice) {
  const def = template ? templateDefinitionOf(template) : null;
  const me_ = userId();
  const mine = form.recipients.find((r) => r.user_id === me_);
  const isCurrent = form.version === form.current_version;
  const isSender = form.sender.user_id === me_;
  const canAct = isCurrent && form.status === 'open' && mine && !['answered', 'acknowledged'].includes(mine.status);
  const acknowledgeable = def ? def.acknowledgeable !== false : true;
  const host = h('div', {class: 'fm-errors', 'aria-live': 'assertive'});
  const printHref = `/api/forms/${enc(form.id)}/print${isCurrent ? '' : `?version=${form.version}`}`;

  const actions = [];
  if (canAct) {
    actions.push(h('a', {class: 'btn btn-primary', 'data-test': 'form-answer', href: href(`/forms/${form.id}/answer`)}, t('forms.answer')));
    if (acknowledgeable) {
      const ack = h(
        'button',
        {
          type: 'button',
          class: 'btn',
          'data-test': 'form-ack',
          on: {
            click: () =>
              withBusy(ack, t('forms.sending'), async () => {
                try {
                  const updated = await api('POST', `/api/forms/${enc(form.id)}/acknowledge`);
                  renderForm(content, updated, template, t('forms.ackDone'));
                } catch (err) {
                  clear(host);
                  showError(host, err);
                }
              }),
          },
        },
        t('forms.ack'),
      );
      actions.push(ack);
    }
  }
  if (isSender && isCurrent) {
    actions.push(h('a', {class: 'btn', 'data-test': 'form-correct', href: href(`/forms/${form.id}/correct`)}, t('forms.correct')));
  }
  actions.push(h('a', {class: 'btn', 'data-test': 'form-print', href: printHref, target: '_blank', rel: 'noopener'}, t('forms.print')));

  const versions = [];
  for (let n = 1; n <= form.current_version; n += 1) versions.push(n);

  mount(
    content,
    h(
      'div',
      {class: 'fm-page fm-detail', 'data-form-id': form.id, 'data-status': form.status, 'data-version': form.version},
      h('div', {class: 'fm-toolbar'}, h('a', {class: 'btn', href: href(`/rooms/${form.room_id}/forms`)}, t('forms.backToList'))),
      host,
      notice ? h('p', {class: 'banner banner-ok', role: 'status'}, notice) : null,
      !isCurrent
        ? h(
            'p',
            {class: 'banner banner-warning', role: 'status'},
            t('forms.oldVersion', {n: form.version}),
            ' ',
            h('a', {href: href(`/forms/${form.id}`)}, t('forms.toLatest')),
          )
        : null,
      h(
        'header',
        {class: 'fm-detail-head'},
        h(
          'h2',
          {class: 'fm-h'},
          form.reply_to ? h('span', {class: 'badge badge-reply'}, t('forms.isReply')) : null,
          templateTitle(form.template),
        ),
        h(
          'div',
          {class: 'fm-badges'},
          statusBadge(form.status),
          form.overdue ? overdueBadge() : null,
          h('span', {class: 'badge'}, isCurrent ? t('forms.version', {n: form.version}) : t('forms.versionOf', {n: form.version, current: form.current_version})),
        ),
        h(
          'dl',
          {class: 'fm-meta fm-meta-detail'},
          h('div', null, h('dt', null, t('forms.sender')), h('dd', null, personText(form.sender))),
          h('div', null, h('dt', null, t('forms.sentAt')), h('dd', null, formatDateTime(form.sent_at))),
          h('div', null, h('dt', null, t('forms.to')), h('dd', null, addresseeText(form.to, form.recipients))),
          h('div', null, h('dt', null, t('forms.due')), h('dd', null, dueBlock(form))),
          h('div', null, h('dt', null, t('forms.visibility')), h('dd', null, t(`forms.vis.${form.visibility}`))),
          form.version > 1 ? h('div', null, h('dt', null, t('forms.correctedAt')), h('dd', null, formatDateTime(form.version_at))) : null,
        ),
        form.correction_reason
          ? h('div', {class: 'fm-correction'}, h('strong', null, t('forms.correctionReason')), h('p', {class: 'fv-text'}, form.correction_reason))
          : null,
        form.reply_to
          ? h('p', {class: 'fm-link-line'}, t('forms.replyTo'), ' ', h('a', {href: href(`/forms/${form.reply_to}`), 'data-test': 'form-reply-to'}, t('forms.openRequest')))
          : null,
        versions.length > 1
          ? h(
              'nav',
              {class: 'fm-versions', 'aria-label': t('forms.versions')},
              h('span', {class: 'fm-versions-label'}, t('forms.versions')),
              versions.map((n) =>
                h(
                  'a',
                  {
                    class: `chip${n === form.version ? ' chip-on' : ''}`,
                    href: href(n === form.current_version ? `/forms/${form.id}` : `/forms/${form.id}?version=${n}`),
                    'aria-current': n === form.version ? 'page' : null,
                    'data-test': 'form-version',
                    'data-version': n,
                  },
                  t('forms.version', {n}),
                ),
              ),
            )
          : null,
      ),
      mine ? h('p', {class: 'fm-mine'}, t('forms.youAre', {status: t(`forms.rstatus.${mine.status}`)})) : null,
      mine && !canAct && form.status === 'completed' && !['answered', 'acknowledged'].includes(mine.status)
        ? h('p', {class: 'banner banner-info'}, t('forms.completedByOther'))
        : null,
      h('div', {class: 'fm-actions'}, actions),
      h(
        'section',
        {class: 'fm-recipients-block'},
        h('h3', null, t('forms.recipients')),
        h(
          'div',
          {class: 'table-wrap'},
          h(
          'table',
          {class: 'table'},
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              h('th', {scope: 'col'}, t('forms.to')),
              h('th', {scope: 'col'}, t('forms.status')),
              h('th', {scope: 'col'}, t('forms.openedAt')),
              h('th', {scope: 'col'}, t('forms.doneAt')),
            ),
          ),
          h(
            'tbody',
            null,
            form.recipients.map((r) =>
              h(
                'tr',
                {'data-test': 'form-recipient', 'data-user-id': r.user_id, 'data-status': r.status},
                h('td', null, personText(r)),
                h('td', null, recipientBadge(r.status)),
                h('td', null, r.opened_at ? formatDateTime(r.opened_at) : '—'),
                h(
                  'td',
                  null,
                  r.done_at ? formatDateTime(r.done_at) : '—',
                  r.answer_form_id ? h('a', {class: 'fm-answer-link', href: href(`/forms/${r.answer_form_id}`)}, t('forms.openAnswer')) : null,
                ),
              ),
            ),
          ),
          ),
        ),
        (form.replies || []).length
          ? h(
              'p',
              {class: 'fm-link-line'},
              t('forms.replies'),
              ': ',
              form.replies.map((id, i) => h('a', {href: href(`/forms/${id}`), class: 'fm-reply-link', 'data-test': 'form-reply'}, t('forms.openReply', {n: i + 1}))),
            )
          : null,
      ),
      h('article', {class: 'fm-paper fm-paper-read'}, h('h3', {class: 'fm-paper-title'}, templateTitle(form.template)), readonlyForm(def, form.data, form.room_id)),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// /forms/:formId/answer
// ---------------------------------------------------------------------------------------

async function answerScreen(view, params) {
  const formId = params.formId;
  mount(view, loadingBlock());
  const form = await api('GET', `/api/forms/${enc(formId)}`);
  const requestTemplate = await loadTemplate(form.template.key, form.template.version);
  const answerKey = requestTemplate?.answer_template || 'reply';
  const [answerTemplate, members] = await Promise.all([
    api('GET', `/api/form-templates/${enc(answerKey)}`),
    api('GET', `/api/rooms/${enc(form.room_id)}/members`).catch(() => []),
  ]);
  const {content} = await roomShell(view, form.room_id, 'forms');
  const title = templateTitle(form.template);
  const back = h('a', {class: 'btn', href: href(`/forms/${form.id}`)}, t('forms.backToForm'));
  const mine = form.recipients.find((r) => r.user_id === userId());
  if (!mine || ['answered', 'acknowledged'].includes(mine.status) || form.status !== 'open') {
    mount(content, h('div', {class: 'fm-page'}, h('div', {class: 'fm-toolbar'}, back), h('p', {class: 'banner banner-warning', role: 'alert'}, t('forms.answer.notYours'))));
    return;
  }
  const def = templateDefinitionOf(answerTemplate);
  const draftKey = `answer:${form.id}`;
  const saved = takeDraft(draftKey);
  const ctx = {roomId: form.room_id, members: Array.isArray(members) ? members : [], uploads: 0, clientId: saved?.clientId || crypto.randomUUID()};
  // Prefill the day of the answer.
  const initial = {};
  for (const section of def.sections) {
    for (const field of section.fields) {
      if (field.type === 'date' && /^(answered|replied)_on$/.test(field.id)) {
        initial[section.id] = {...(initial[section.id] || {}), [field.id]: todayInJapan()};
      }
    }
  }
  const editor = formEditor({
    def,
    ctx,
    initial,
    submitLabel: t('forms.answer.submit'),
    cancelHref: href(`/forms/${form.id}`),
    draftKey,
    onSubmit: async (data) => {
      await api('POST', `/api/forms/${enc(form.id)}/answer`, {client_id: ctx.clientId, data});
      dropDraft(draftKey);
      flash = {formId: form.id, text: t('forms.answered')};
      navigate(`/forms/${form.id}`);
    },
  });
  mount(
    content,
    h(
      'div',
      {class: 'fm-page'},
      h('div', {class: 'fm-toolbar'}, h('h2', {class: 'fm-h'}, t('forms.answer.title', {title})), h('div', {class: 'fm-toolbar-actions'}, back)),
      h('p', {class: 'lead'}, t('forms.answer.lead', {title, sender: personText(form.sender)})),
      h(
        'details',
        {class: 'fm-request'},
        h('summary', null, t('forms.answer.showRequest')),
        readonlyForm(requestTemplate, form.data, form.room_id),
      ),
      h('div', {class: 'fm-paper'}, h('h3', {class: 'fm-paper-title'}, pick(def, 'title')), editor.el),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// /forms/:formId/correct
// ---------------------------------------------------------------------------------------

async function correctScreen(view, params) {
  const formId = params.formId;
  mount(view, loadingBlock());
  const form = await api('GET', `/api/forms/${enc(formId)}`);
  const [template, members] = await Promise.all([
    api('GET', `/api/form-templates/${enc(form.template.key)}?version=${form.template.version}`),
    api('GET', `/api/rooms/${enc(form.room_id)}/members`).catch(() => []),
  ]);
  const {content} = await roomShell(view, form.room_id, 'forms');
  const title = templateTitle(form.template);
  const back = h('a', {class: 'btn', href: href(`/forms/${form.id}`)}, t('forms.backToForm'));
  if (form.sender.user_id !== userId()) {
    mount(content, h('div', {class: 'fm-page'}, h('div', {class: 'fm-toolbar'}, back), h('p', {class: 'banner banner-warning', role: 'alert'}, t('forms.correct.notSender'))));
    return;
  }
  const def = templateDefinitionOf(template);
  const draftKey = `correct:${form.id}:${form.current_version}`;
  const ctx = {roomId: form.room_id, members: Array.isArray(members) ? members : [], uploads: 0, clientId: null};
  const reasonId = uid('reason');
  const reason = h('textarea', {id: reasonId, class: 'input', rows: 3, maxlength: 500, 'aria-required': 'true', 'data-test': 'form-correct-reason'});
  const reasonBlock = h(
    'fieldset',
    {class: 'fm-section'},
    h('legend', {class: 'fm-section-title'}, t('forms.correct.reason')),
    h(
      'div',
      {class: 'field ff', 'data-slot': 'reason'},
      h('label', {class: 'field-label', for: reasonId}, t('forms.correct.reason'), requiredMark()),
      h('div', {class: 'slot-errs'}),
      reason,
    ),
  );
  const editor = formEditor({
    def,
    ctx,
    initial: form.data,
    before: [],
    after: [reasonBlock],
    submitLabel: t('forms.correct.submit'),
    submitTest: 'form-correct-submit',
    cancelHref: href(`/forms/${form.id}`),
    draftKey,
    extraSnapshot: () => reason.value,
    extraRestore: (v) => {
      reason.value = v || '';
    },
    onSubmit: async (data) => {
      try {
        const corrected = await api('POST', `/api/forms/${enc(form.id)}/corrections`, {base_version: form.current_version, reason: reason.value.trim(), data});
        flash = {formId: form.id, text: t('forms.corrected', {n: corrected.version})};
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          throw new ApiError(409, {
            code: err.code,
            message_ja: `${err.message_ja} ${tIn('ja', 'forms.correct.stale')}`,
            message_en: `${err.message_en} ${tIn('en', 'forms.correct.stale')}`,
          });
        }
        throw err;
      }
      dropDraft(draftKey);
      navigate(`/forms/${form.id}`);
    },
  });
  mount(
    content,
    h(
      'div',
      {class: 'fm-page'},
      h('div', {class: 'fm-toolbar'}, h('h2', {class: 'fm-h'}, t('forms.correct.title', {title})), h('div', {class: 'fm-toolbar-actions'}, back)),
      h('p', {class: 'lead'}, t('forms.correct.lead', {n: form.current_version + 1})),
      h('div', {class: 'fm-paper'}, h('h3', {class: 'fm-paper-title'}, pick(def, 'title')), editor.el),
    ),
  );
}

// ---------------------------------------------------------------------------------------

export function register() {
  addStrings(STRINGS);
  route('/rooms/:roomId/forms', roomFormsScreen);
  route('/rooms/:roomId/forms/new', newFormScreen);
  route('/inbox', inboxScreen);
  route('/forms/:formId', formScreen);
  route('/forms/:formId/answer', answerScreen);
  route('/forms/:formId/correct', correctScreen);
  if (live && typeof live.onEvent === 'function') live.onEvent(formEventArrived);
}
