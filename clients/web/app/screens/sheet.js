// The emergency information sheet (救急医療情報): what an ambulance crew needs at the door.
//
// Route: /rooms/:roomId/sheet (room tab 'sheet'). Read for an emergency: resuscitation
// (DNAR) and allergies first, then contacts in calling order, conditions, medications, care
// level, ACP wishes and notes; the version, who wrote it and when, who confirmed it. A banner
// (data-test="sheet-stale") when it needs re-confirmation (要再確認).
//
// Care professionals of the room confirm the current version (sheet-confirm) and edit it
// (sheet-edit -> sheet-save, PUT with base_version). A stale base (409: someone else saved
// first) keeps what the user typed and shows the newest version next to it.
// The emergency service reads this sheet only (no room frame: it is not a member).

import { h, clear, mount, uid } from '../core/dom.js';
import { t, tIn, addStrings, lang, formatDateTime, formatDate } from '../core/i18n.js';
import { api, ApiError } from '../core/api.js';
import { route } from '../core/router.js';
import { userId, isProfessional, isEmergencyService } from '../core/session.js';
import { roomShell, showError, loading, empty } from '../core/shell.js';
import {
  listEditor,
  medicationColumns,
  medicationValues,
  medicationTable,
  showFormErrors,
  clearFieldErrors,
  personText,
  withBusy,
  failedBlock,
  takeDraft,
  keepDraft,
  dropDraft,
} from './forms.js';

const enc = encodeURIComponent;

/** The parts of a sheet (protocol::sheet::SHEET_PARTS), in reading order. */
const PARTS = [
  'dnar',
  'dnar_note',
  'allergies',
  'no_known_allergies',
  'contacts',
  'conditions',
  'medications',
  'care_level',
  'acp_wishes',
  'notes',
];

const CARE_LEVELS = [
  'not_certified',
  'applied',
  'support_1',
  'support_2',
  'care_1',
  'care_2',
  'care_3',
  'care_4',
  'care_5',
];

const DNAR = ['unknown', 'attempt_resuscitation', 'do_not_attempt_resuscitation'];
const SEVERITIES = ['mild', 'moderate', 'severe'];

addStrings({
  ja: {
    'sheet.title': '救急医療情報',
    'sheet.lead': '救急搬送のときに救急隊・搬送先に伝える情報です。',
    'sheet.kana': 'フリガナ',
    'sheet.dob': '生年月日',
    'sheet.dobValue': '{date}（{age}歳）',
    'sheet.version': '第{n}版',
    'sheet.updatedBy': '更新: {who}',
    'sheet.updatedAt': '更新日時',
    'sheet.reason': '変更の理由',
    'sheet.noneYet': '救急医療情報はまだ作成されていません。',
    'sheet.noneYetAction': '「作成する」から、アレルギー・服薬・連絡先・蘇生処置の希望などを記録してください。',
    'sheet.stale.missing': '要作成: 救急医療情報がまだありません。',
    'sheet.stale.old': '要再確認: {days}日以内に内容を確認した人がいません。内容が今も正しいか確認し、「内容を確認しました」を押してください（必要なら編集してください）。',
    'sheet.stale.lastConfirmed': '最後の確認: {date}',
    'sheet.stale.oldReader': '要再確認: {days}日以内にケアチームが内容を確認していません。情報が古い可能性があります。',
    'sheet.confirm': '内容を確認しました（第{n}版）',
    'sheet.confirmed': '確認しました。',
    'sheet.confirmedByMe': 'あなたは第{n}版を {date} に確認済みです。',
    'sheet.notConfirmedByMe': 'あなたはこの版をまだ確認していません。',
    'sheet.edit': '編集する',
    'sheet.create': '作成する',
    'sheet.save': '保存する',
    'sheet.saving': '保存中…',
    'sheet.saved': '保存しました（第{n}版）。',
    'sheet.cancel': '編集をやめる',
    'sheet.print': '印刷用の表示',
    'sheet.history': '変更履歴',
    'sheet.historyHide': '変更履歴を閉じる',
    'sheet.historyEmpty': '変更履歴はありません。',
    'sheet.changed': '変更した項目: {parts}',
    'sheet.showVersion': '第{n}版の内容を表示',
    'sheet.confirmations': 'この版を確認した人',
    'sheet.noConfirmations': 'まだ誰も確認していません。',
    'sheet.pending': '未確認のメンバー',
    'sheet.nobodyPending': 'ケアチームの全員が確認済みです。',
    'sheet.none': '記録なし',
    'sheet.part.dnar': '蘇生処置（DNAR）',
    'sheet.part.dnar_note': 'DNARの記録（書類の保管場所・合意日）',
    'sheet.part.allergies': 'アレルギー',
    'sheet.part.no_known_allergies': 'アレルギーなし',
    'sheet.part.contacts': '緊急連絡先（連絡する順）',
    'sheet.part.conditions': '病名・既往歴',
    'sheet.part.medications': '服薬',
    'sheet.part.care_level': '要介護度',
    'sheet.part.acp_wishes': '本人の意向（ACP）',
    'sheet.part.notes': '特記事項（在宅酸素・医療機器など）',
    'sheet.dnar.unknown': '未確認',
    'sheet.dnar.attempt_resuscitation': '蘇生処置を希望する',
    'sheet.dnar.do_not_attempt_resuscitation': 'DNAR（蘇生処置を希望しない）',
    'sheet.care.not_certified': '非該当',
    'sheet.care.applied': '申請中',
    'sheet.care.support_1': '要支援1',
    'sheet.care.support_2': '要支援2',
    'sheet.care.care_1': '要介護1',
    'sheet.care.care_2': '要介護2',
    'sheet.care.care_3': '要介護3',
    'sheet.care.care_4': '要介護4',
    'sheet.care.care_5': '要介護5',
    'sheet.care.unset': '未記録',
    'sheet.sev.mild': '軽度',
    'sheet.sev.moderate': '中等度',
    'sheet.sev.severe': '重度（アナフィラキシー）',
    'sheet.sev.unknown': '重症度不明',
    'sheet.allergy.nka': 'アレルギーなし（確認済み）',
    'sheet.allergy.notRecorded': '未記録（アレルギーの有無が確認されていません）',
    'sheet.allergy.substance': '原因（薬剤・食物など）',
    'sheet.allergy.reaction': '症状',
    'sheet.allergy.severity': '重症度',
    'sheet.allergy.item': 'アレルギー {n}',
    'sheet.allergy.add': 'アレルギーを追加',
    'sheet.allergy.nkaLabel': 'アレルギーなし（確認済み）',
    'sheet.allergy.nkaHint': 'アレルギーがないことを確認した場合だけ選んでください。アレルギーを記載する場合は選ばないでください。',
    'sheet.condition.name': '病名',
    'sheet.condition.since': '時期（例: 2019年）',
    'sheet.condition.note': 'メモ',
    'sheet.condition.item': '病名 {n}',
    'sheet.condition.add': '病名を追加',
    'sheet.med.item': '薬 {n}',
    'sheet.med.add': '薬を追加',
    'sheet.contact.name': '氏名・名称',
    'sheet.contact.relationship': '続柄・関係（例: 長女、主治医）',
    'sheet.contact.phone': '電話番号',
    'sheet.contact.note': 'メモ（例: 夜間はこちら）',
    'sheet.contact.item': '連絡先 {n}',
    'sheet.contact.add': '連絡先を追加',
    'sheet.contact.call': '電話をかける',
    'sheet.severity.unset': '不明',
    'sheet.careLevel.choose': '未記録',
    'sheet.reasonLabel': '変更の理由（任意）',
    'sheet.reasonHint': '例: 退院に伴い服薬を更新',
    'sheet.editTitle': '救急医療情報の編集（第{n}版をもとに編集）',
    'sheet.createTitle': '救急医療情報の作成',
    'sheet.conflict': '他の人が先に救急医療情報を保存しました（第{n}版）。あなたの入力は残っています。下に表示した最新の版を確認してから、もう一度「保存する」を押してください。',
    'sheet.conflictNewest': '最新の版（第{n}版）の内容',
    'sheet.conflictTaken': '他の人が変更した次の項目は、あなたの入力に取り込みました: {parts}。',
    'sheet.conflictBoth': '次の項目はあなたと他の人の両方が変更しています。あなたの入力を残していますので、最新の版と見比べてください: {parts}。',
    'sheet.changedByBoth': 'この項目は他の人も変更しています。上に表示した最新の版と見比べてから保存してください。',
    'sheet.theirValue': '（最新の版:「{value}」）',
    'sheet.unknownError': 'エラーが発生しました。',
    'sheet.draftRestored': '編集途中の内容を復元しました。',
    'sheet.emergencyNote': '救急隊として閲覧しています。閲覧は記録されます。',
  },
  en: {
    'sheet.title': 'Emergency information sheet',
    'sheet.lead': 'What the ambulance crew and the receiving hospital need to know.',
    'sheet.kana': 'Kana',
    'sheet.dob': 'Date of birth',
    'sheet.dobValue': '{date} (age {age})',
    'sheet.version': 'Version {n}',
    'sheet.updatedBy': 'Updated by {who}',
    'sheet.updatedAt': 'Updated',
    'sheet.reason': 'Reason for the change',
    'sheet.noneYet': 'No emergency sheet has been written yet.',
    'sheet.noneYetAction': 'Use "Create" to record allergies, medication, contacts and resuscitation wishes.',
    'sheet.stale.missing': 'To do: there is no emergency sheet yet.',
    'sheet.stale.old': 'Needs re-confirmation: nobody has confirmed this sheet within {days} days. Check that it is still right and press "Confirmed" (edit it if needed).',
    'sheet.stale.lastConfirmed': 'Last confirmed: {date}',
    'sheet.stale.oldReader': 'Needs re-confirmation: the care team has not confirmed this sheet within {days} days. It may be out of date.',
    'sheet.confirm': 'Confirmed: content is right (version {n})',
    'sheet.confirmed': 'Confirmed.',
    'sheet.confirmedByMe': 'You confirmed version {n} on {date}.',
    'sheet.notConfirmedByMe': 'You have not confirmed this version yet.',
    'sheet.edit': 'Edit',
    'sheet.create': 'Create',
    'sheet.save': 'Save',
    'sheet.saving': 'Saving…',
    'sheet.saved': 'Saved (version {n}).',
    'sheet.cancel': 'Stop editing',
    'sheet.print': 'Print view',
    'sheet.history': 'History',
    'sheet.historyHide': 'Hide history',
    'sheet.historyEmpty': 'No history yet.',
    'sheet.changed': 'Changed: {parts}',
    'sheet.showVersion': 'Show version {n}',
    'sheet.confirmations': 'Confirmed this version',
    'sheet.noConfirmations': 'Nobody has confirmed it yet.',
    'sheet.pending': 'Not confirmed yet',
    'sheet.nobodyPending': 'Everyone in the care team has confirmed.',
    'sheet.none': 'Not recorded',
    'sheet.part.dnar': 'Resuscitation (DNAR)',
    'sheet.part.dnar_note': 'DNAR record (where the document is, when agreed)',
    'sheet.part.allergies': 'Allergies',
    'sheet.part.no_known_allergies': 'No known allergies',
    'sheet.part.contacts': 'Contacts (in calling order)',
    'sheet.part.conditions': 'Conditions and history',
    'sheet.part.medications': 'Medication',
    'sheet.part.care_level': 'Care level',
    'sheet.part.acp_wishes': 'Wishes for end-of-life care (ACP)',
    'sheet.part.notes': 'Notes (home oxygen, devices …)',
    'sheet.dnar.unknown': 'Not recorded',
    'sheet.dnar.attempt_resuscitation': 'Attempt resuscitation',
    'sheet.dnar.do_not_attempt_resuscitation': 'Do not attempt resuscitation (DNAR)',
    'sheet.care.not_certified': 'Not certified',
    'sheet.care.applied': 'Applied for',
    'sheet.care.support_1': 'Support level 1',
    'sheet.care.support_2': 'Support level 2',
    'sheet.care.care_1': 'Care level 1',
    'sheet.care.care_2': 'Care level 2',
    'sheet.care.care_3': 'Care level 3',
    'sheet.care.care_4': 'Care level 4',
    'sheet.care.care_5': 'Care level 5',
    'sheet.care.unset': 'Not recorded',
    'sheet.sev.mild': 'Mild',
    'sheet.sev.moderate': 'Moderate',
    'sheet.sev.severe': 'Severe (anaphylaxis)',
    'sheet.sev.unknown': 'Severity unknown',
    'sheet.allergy.nka': 'No known allergies (confirmed)',
    'sheet.allergy.notRecorded': 'Not recorded (nobody has checked for allergies)',
    'sheet.allergy.substance': 'Substance (drug, food …)',
    'sheet.allergy.reaction': 'Reaction',
    'sheet.allergy.severity': 'Severity',
    'sheet.allergy.item': 'Allergy {n}',
    'sheet.allergy.add': 'Add an allergy',
    'sheet.allergy.nkaLabel': 'No known allergies (confirmed)',
    'sheet.allergy.nkaHint': 'Only when it has been checked that there are none. Leave it off when listing allergies.',
    'sheet.condition.name': 'Condition',
    'sheet.condition.since': 'Since (e.g. 2019)',
    'sheet.condition.note': 'Note',
    'sheet.condition.item': 'Condition {n}',
    'sheet.condition.add': 'Add a condition',
    'sheet.med.item': 'Medication {n}',
    'sheet.med.add': 'Add a medication',
    'sheet.contact.name': 'Name',
    'sheet.contact.relationship': 'Relationship (e.g. daughter, physician)',
    'sheet.contact.phone': 'Phone',
    'sheet.contact.note': 'Note (e.g. at night)',
    'sheet.contact.item': 'Contact {n}',
    'sheet.contact.add': 'Add a contact',
    'sheet.contact.call': 'Call',
    'sheet.severity.unset': 'Unknown',
    'sheet.careLevel.choose': 'Not recorded',
    'sheet.reasonLabel': 'Reason for the change (optional)',
    'sheet.reasonHint': 'e.g. medication updated after discharge',
    'sheet.editTitle': 'Edit the emergency sheet (based on version {n})',
    'sheet.createTitle': 'Create the emergency sheet',
    'sheet.conflict': 'Someone else saved the sheet first (version {n}). Your input is still here. Check the newest version shown below, then press Save again.',
    'sheet.conflictNewest': 'The newest version ({n})',
    'sheet.conflictTaken': 'Their changes to these parts have been taken into your input: {parts}.',
    'sheet.conflictBoth': 'You and they both changed these parts; your input is kept, compare it with the newest version: {parts}.',
    'sheet.changedByBoth': 'Someone else changed this too. Compare it with the newest version above before saving.',
    'sheet.theirValue': ' (newest version: "{value}")',
    'sheet.unknownError': 'Something went wrong.',
    'sheet.draftRestored': 'Your unsaved changes have been restored.',
    'sheet.emergencyNote': 'You are reading as the emergency service. Every read is recorded.',
  },
});

// ---------------------------------------------------------------------------------------

function ageOf(dob) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dob || '');
  if (!m) return '';
  const today = new Intl.DateTimeFormat('en-CA', {timeZone: 'Asia/Tokyo'}).format(new Date());
  const [ty, tm, td] = today.split('-').map(Number);
  let years = ty - Number(m[1]);
  if (tm < Number(m[2]) || (tm === Number(m[2]) && td < Number(m[3]))) years -= 1;
  return years;
}

function partLabel(part) {
  return t(`sheet.part.${part}`);
}

function listSep() {
  return lang() === 'ja' ? '、' : ', ';
}

function noneText() {
  return h('p', {class: 'sh-none'}, t('sheet.none'));
}

function textBlock(value) {
  return value && String(value).trim() ? h('p', {class: 'sh-text'}, value) : noneText();
}

function telHref(phone) {
  return `tel:${String(phone).replace(/[^\d+]/g, '')}`;
}

/** The content of a sheet, laid out for reading in an emergency. */
function sheetContent(s, {compact = false} = {}) {
  const c = s || {};
  const dnar = c.dnar || 'unknown';
  const severe = (c.allergies || []).some((a) => a.severity === 'severe');

  const dnarBox = h(
    'section',
    {class: `sh-box sh-dnar sh-dnar-${dnar}`, 'data-part': 'dnar', 'aria-labelledby': compact ? null : 'sh-h-dnar'},
    h('h3', {id: compact ? null : 'sh-h-dnar'}, partLabel('dnar')),
    h('p', {class: 'sh-dnar-status', 'data-dnar': dnar}, t(`sheet.dnar.${dnar}`)),
    c.dnar_note ? h('p', {class: 'sh-text sh-dnar-note'}, c.dnar_note) : null,
  );

  let allergyBody;
  if ((c.allergies || []).length) {
    allergyBody = h(
      'ul',
      {class: 'sh-allergies'},
      c.allergies.map((a) =>
        h(
          'li',
          {class: `sh-allergy sh-sev-${a.severity || 'unknown'}`},
          h('span', {class: 'sh-allergy-name'}, a.substance),
          a.reaction ? h('span', {class: 'sh-allergy-reaction'}, a.reaction) : null,
          h(
            'span',
            {class: `badge ${a.severity === 'severe' ? 'badge-urgent' : a.severity === 'moderate' ? 'badge-warning' : 'badge-muted'}`},
            t(`sheet.sev.${a.severity || 'unknown'}`),
          ),
        ),
      ),
    );
  } else if (c.no_known_allergies) {
    allergyBody = h('p', {class: 'sh-nka'}, t('sheet.allergy.nka'));
  } else {
    allergyBody = h('p', {class: 'sh-warn'}, t('sheet.allergy.notRecorded'));
  }
  const allergyBox = h(
    'section',
    {class: `sh-box sh-allergy-box${(c.allergies || []).length ? ' has-allergies' : ''}${severe ? ' has-severe' : ''}`, 'data-part': 'allergies'},
    h('h3', null, partLabel('allergies')),
    allergyBody,
  );

  const contactsBox = h(
    'section',
    {class: 'sh-box sh-contacts-box', 'data-part': 'contacts'},
    h('h3', null, partLabel('contacts')),
    (c.contacts || []).length
      ? h(
          'ol',
          {class: 'sh-contacts'},
          c.contacts.map((ct) =>
            h(
              'li',
              {class: 'sh-contact'},
              h('span', {class: 'sh-contact-name'}, ct.name),
              h('span', {class: 'sh-contact-rel'}, ct.relationship),
              h('a', {class: 'sh-phone', href: telHref(ct.phone), 'aria-label': `${t('sheet.contact.call')}: ${ct.name} ${ct.phone}`}, ct.phone),
              ct.note ? h('span', {class: 'sh-contact-note'}, ct.note) : null,
            ),
          ),
        )
      : noneText(),
  );

  const conditionsBox = h(
    'section',
    {class: 'sh-box', 'data-part': 'conditions'},
    h('h3', null, partLabel('conditions')),
    (c.conditions || []).length
      ? h(
          'ul',
          {class: 'sh-conditions'},
          c.conditions.map((d) =>
            h(
              'li',
              null,
              h('span', {class: 'sh-condition-name'}, d.name),
              d.since ? h('span', {class: 'sh-condition-since'}, d.since) : null,
              d.note ? h('span', {class: 'sh-condition-note'}, d.note) : null,
            ),
          ),
        )
      : noneText(),
  );

  const medsBox = h(
    'section',
    {class: 'sh-box sh-wide', 'data-part': 'medications'},
    h('h3', null, partLabel('medications')),
    (c.medications || []).length ? h('div', {class: 'table-wrap'}, medicationTable(c.medications)) : noneText(),
  );

  const careBox = h(
    'section',
    {class: 'sh-box', 'data-part': 'care_level'},
    h('h3', null, partLabel('care_level')),
    h('p', {class: 'sh-care'}, c.care_level ? t(`sheet.care.${c.care_level}`) : t('sheet.care.unset')),
  );

  const acpBox = h('section', {class: 'sh-box', 'data-part': 'acp_wishes'}, h('h3', null, partLabel('acp_wishes')), textBlock(c.acp_wishes));
  const notesBox = h('section', {class: 'sh-box sh-wide', 'data-part': 'notes'}, h('h3', null, partLabel('notes')), textBlock(c.notes));

  return h(
    'div',
    {class: `sh-grid${compact ? ' sh-compact' : ''}`},
    dnarBox,
    allergyBox,
    contactsBox,
    conditionsBox,
    medsBox,
    careBox,
    acpBox,
    notesBox,
  );
}

// ---------------------------------------------------------------------------------------
// The editor
// ---------------------------------------------------------------------------------------

function trimmed(v) {
  const s = String(v ?? '').trim();
  return s || undefined;
}

function sheetEditor(initial, {onCancel, onSave, draftKey, restored, baseVersion, baseContent}) {
  const c = initial || {};
  const host = h('div', {class: 'fm-errors', 'aria-live': 'assertive'});
  const conflictHost = h('div', {class: 'sh-conflict'});

  // Allergies
  const nkaId = uid('nka');
  const nkaHint = uid('help');
  const nka = h('input', {type: 'checkbox', id: nkaId, checked: Boolean(c.no_known_allergies), 'aria-describedby': nkaHint, 'data-test': 'sheet-nka'});
  const allergies = listEditor({
    basePath: 'sheet.allergies',
    columns: [
      {key: 'substance', label: () => t('sheet.allergy.substance'), max: 200, required: true, wide: true},
      {key: 'reaction', label: () => t('sheet.allergy.reaction'), max: 200},
      {
        key: 'severity',
        label: () => t('sheet.allergy.severity'),
        type: 'select',
        options: () => [{value: '', label: t('sheet.severity.unset')}, ...SEVERITIES.map((v) => ({value: v, label: t(`sheet.sev.${v}`)}))],
      },
    ],
    rows: (c.allergies || []).map((a) => ({substance: a.substance ?? '', reaction: a.reaction ?? '', severity: a.severity ?? ''})),
    addLabel: t('sheet.allergy.add'),
    itemLabel: (n) => t('sheet.allergy.item', {n}),
    max: 50,
  });

  const conditions = listEditor({
    basePath: 'sheet.conditions',
    columns: [
      {key: 'name', label: () => t('sheet.condition.name'), max: 200, required: true, wide: true},
      {key: 'since', label: () => t('sheet.condition.since'), max: 50},
      {key: 'note', label: () => t('sheet.condition.note'), max: 500, wide: true},
    ],
    rows: (c.conditions || []).map((d) => ({name: d.name ?? '', since: d.since ?? '', note: d.note ?? ''})),
    addLabel: t('sheet.condition.add'),
    itemLabel: (n) => t('sheet.condition.item', {n}),
    max: 50,
  });

  const medications = listEditor({
    basePath: 'sheet.medications',
    columns: medicationColumns(),
    rows: (c.medications || []).map((m) => ({name: m.name ?? '', dose: m.dose ?? '', route: m.route ?? '', frequency: m.frequency ?? '', start: m.start ?? ''})),
    addLabel: t('sheet.med.add'),
    itemLabel: (n) => t('sheet.med.item', {n}),
    max: 100,
  });

  const contacts = listEditor({
    basePath: 'sheet.contacts',
    columns: [
      {key: 'name', label: () => t('sheet.contact.name'), max: 100, required: true},
      {key: 'relationship', label: () => t('sheet.contact.relationship'), max: 100, required: true},
      {key: 'phone', label: () => t('sheet.contact.phone'), type: 'tel', max: 30, required: true},
      {key: 'note', label: () => t('sheet.contact.note'), max: 200},
    ],
    rows: (c.contacts || []).map((x) => ({name: x.name ?? '', relationship: x.relationship ?? '', phone: x.phone ?? '', note: x.note ?? ''})),
    addLabel: t('sheet.contact.add'),
    itemLabel: (n) => t('sheet.contact.item', {n}),
    max: 20,
    reorder: true,
  });

  const careId = uid('care');
  const care = h(
    'select',
    {id: careId, class: 'input', 'data-test': 'sheet-care-level'},
    h('option', {value: ''}, t('sheet.careLevel.choose')),
    CARE_LEVELS.map((v) => h('option', {value: v}, t(`sheet.care.${v}`))),
  );
  care.value = c.care_level || '';

  const dnarName = uid('dnar');
  const dnarInputs = DNAR.map((v) => {
    const id = uid('opt');
    const input = h('input', {type: 'radio', name: dnarName, id, value: v, checked: (c.dnar || 'unknown') === v, 'data-test': `sheet-dnar-${v}`});
    return {input, el: h('label', {class: `check opt sh-dnar-opt sh-dnar-${v}`, for: id}, input, h('span', null, t(`sheet.dnar.${v}`)))};
  });

  const area = (value, max, rows, test) => {
    const el = h('textarea', {id: uid('ta'), class: 'input', rows, maxlength: max, 'data-test': test});
    el.value = value ?? '';
    return el;
  };
  const dnarNote = area(c.dnar_note, 500, 2, 'sheet-dnar-note');
  const acp = area(c.acp_wishes, 4000, 4, 'sheet-acp');
  const notes = area(c.notes, 2000, 3, 'sheet-notes');
  const reasonId = uid('reason');
  const reasonHint = uid('help');
  const reason = h('input', {type: 'text', id: reasonId, class: 'input', maxlength: 500, autocomplete: 'off', 'aria-describedby': reasonHint, 'data-test': 'sheet-reason'});

  const textField = (slot, label, input, hiddenLabel = false) =>
    h(
      'div',
      {class: 'field ff', 'data-slot': slot},
      h('label', {class: hiddenLabel ? 'field-label sr-only' : 'field-label', for: input.id}, label),
      h('div', {class: 'slot-errs'}),
      input,
    );

  const section = (title, slot, ...children) =>
    h('fieldset', {class: 'fm-section', 'data-slot': slot}, h('legend', {class: 'fm-section-title'}, title), h('div', {class: 'slot-errs'}), children);

  const save = h('button', {type: 'submit', class: 'btn btn-primary btn-large', 'data-test': 'sheet-save'}, t('sheet.save'));
  const form = h(
    'form',
    {class: 'fm-form sh-form', novalidate: true, autocomplete: 'off', 'data-slot': 'sheet'},
    host,
    h('div', {class: 'slot-errs'}),
    conflictHost,
    section(
      partLabel('dnar'),
      'sheet.dnar',
      h('div', {class: 'opts', role: 'radiogroup', 'aria-label': partLabel('dnar')}, dnarInputs.map((x) => x.el)),
      textField('sheet.dnar_note', partLabel('dnar_note'), dnarNote),
    ),
    section(
      partLabel('allergies'),
      'sheet.allergies',
      h(
        'div',
        {class: 'field ff', 'data-slot': 'sheet.no_known_allergies'},
        h('div', {class: 'slot-errs'}),
        h('label', {class: 'check opt', for: nkaId}, nka, h('span', null, t('sheet.allergy.nkaLabel'))),
        h('p', {class: 'field-hint', id: nkaHint}, t('sheet.allergy.nkaHint')),
      ),
      allergies.el,
    ),
    section(partLabel('contacts'), 'sheet.contacts', contacts.el),
    section(partLabel('conditions'), 'sheet.conditions', conditions.el),
    section(partLabel('medications'), 'sheet.medications', medications.el),
    section(partLabel('care_level'), 'sheet.care_level', h('div', {class: 'field ff', 'data-slot': 'sheet.care_level'}, h('label', {class: 'field-label sr-only', for: careId}, partLabel('care_level')), care)),
    section(partLabel('acp_wishes'), 'sheet.acp_wishes', textField('sheet.acp_wishes', partLabel('acp_wishes'), acp, true)),
    section(partLabel('notes'), 'sheet.notes', textField('sheet.notes', partLabel('notes'), notes, true)),
    section(
      t('sheet.reason'),
      'reason',
      h(
        'div',
        {class: 'field ff'},
        h('label', {class: 'field-label', for: reasonId}, t('sheet.reasonLabel')),
        h('p', {class: 'field-hint', id: reasonHint}, t('sheet.reasonHint')),
        reason,
      ),
    ),
    h(
      'div',
      {class: 'fm-submitbar'},
      h('button', {type: 'button', class: 'btn', 'data-test': 'sheet-cancel', on: {click: () => onCancel()}}, t('sheet.cancel')),
      save,
    ),
  );

  function snapshot() {
    return {
      no_known_allergies: nka.checked,
      allergies: allergies.rows(),
      conditions: conditions.rows(),
      medications: medications.rows(),
      contacts: contacts.rows(),
      care_level: care.value,
      dnar: dnarInputs.find((x) => x.input.checked)?.input.value || 'unknown',
      dnar_note: dnarNote.value,
      acp_wishes: acp.value,
      notes: notes.value,
      reason: reason.value,
    };
  }

  function restore(s) {
    if (!s) return;
    nka.checked = Boolean(s.no_known_allergies);
    allergies.set(s.allergies);
    conditions.set(s.conditions);
    medications.set(s.medications);
    contacts.set(s.contacts);
    care.value = s.care_level || '';
    for (const x of dnarInputs) x.input.checked = x.input.value === s.dnar;
    dnarNote.value = s.dnar_note || '';
    acp.value = s.acp_wishes || '';
    notes.value = s.notes || '';
    reason.value = s.reason || '';
  }

  function collect() {
    allergies.prune();
    conditions.prune();
    medications.prune();
    contacts.prune();
    const sheet = {
      allergies: allergies.rows().map((a) => {
        const o = {substance: String(a.substance ?? '').trim()};
        if (trimmed(a.reaction)) o.reaction = trimmed(a.reaction);
        if (a.severity) o.severity = a.severity;
        return o;
      }),
      no_known_allergies: nka.checked,
      conditions: conditions.rows().map((d) => {
        const o = {name: String(d.name ?? '').trim()};
        if (trimmed(d.since)) o.since = trimmed(d.since);
        if (trimmed(d.note)) o.note = trimmed(d.note);
        return o;
      }),
      medications: medicationValues(medications.rows()),
      contacts: contacts.rows().map((x) => {
        const o = {name: String(x.name ?? '').trim(), relationship: String(x.relationship ?? '').trim(), phone: String(x.phone ?? '').normalize('NFKC').trim()};
        if (trimmed(x.note)) o.note = trimmed(x.note);
        return o;
      }),
      dnar: dnarInputs.find((x) => x.input.checked)?.input.value || 'unknown',
    };
    if (care.value) sheet.care_level = care.value;
    if (trimmed(acp.value)) sheet.acp_wishes = acp.value.trim();
    if (trimmed(dnarNote.value)) sheet.dnar_note = dnarNote.value.trim();
    if (trimmed(notes.value)) sheet.notes = notes.value.trim();
    return {sheet, reason: trimmed(reason.value)};
  }

  if (restored) {
    restore(restored);
    host.append(h('p', {class: 'banner banner-info', role: 'status'}, t('sheet.draftRestored')));
  }
  const keep = () => keepDraft(draftKey, {form: snapshot(), baseVersion: baseVersion(), baseContent: baseContent()});
  form.addEventListener('input', keep);
  form.addEventListener('change', keep);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    withBusy(save, t('sheet.saving'), async () => {
      const body = collect();
      try {
        await onSave(body, {form, host, conflictHost});
      } catch (err) {
        if (err instanceof ApiError) showFormErrors(form, host, err);
        else {
          console.error(err);
          showFormErrors(form, host, new ApiError(0, {code: 'client', message_ja: tIn('ja', 'sheet.unknownError'), message_en: tIn('en', 'sheet.unknownError')}));
        }
      }
    });
  });

  return {
    el: form,
    host,
    conflictHost,
    /** Replaces the content (keeps the reason typed). */
    setContent: (content) => restore({...content, reason: reason.value}),
  };
}

// ---------------------------------------------------------------------------------------
// Merging after a conflict
// ---------------------------------------------------------------------------------------

/** A part's value in a comparable form (absent lists, flags and texts as their empty value). */
function canon(part, value) {
  let v = value;
  if (v === undefined || v === null) {
    if (['allergies', 'conditions', 'medications', 'contacts'].includes(part)) v = [];
    else if (part === 'no_known_allergies') v = false;
    else if (part === 'dnar') v = 'unknown';
    else v = '';
  }
  const sorted = (x) => {
    if (Array.isArray(x)) return x.map(sorted);
    if (x && typeof x === 'object') {
      return Object.fromEntries(
        Object.keys(x)
          .filter((k) => x[k] !== undefined && x[k] !== null && x[k] !== '')
          .sort()
          .map((k) => [k, sorted(x[k])]),
      );
    }
    return x;
  };
  return JSON.stringify(sorted(v));
}

/** Three-way merge of sheet contents by part: {content, taken: [...], both: [...]}. */
function mergeParts(base, mine, theirs) {
  const content = {};
  const taken = [];
  const both = [];
  for (const part of PARTS) {
    const b = canon(part, base[part]);
    const m = canon(part, mine[part]);
    const th = canon(part, theirs[part]);
    if (m === th || th === b) {
      content[part] = mine[part];
    } else if (m === b) {
      content[part] = theirs[part];
      taken.push(part);
    } else {
      content[part] = mine[part];
      both.push(part);
    }
  }
  return {content, taken, both};
}

function partsIn(code, parts) {
  return parts.map((p) => tIn(code, `sheet.part.${p}`)).join(code === 'ja' ? '、' : ', ');
}

// ---------------------------------------------------------------------------------------
// The screen
// ---------------------------------------------------------------------------------------

async function sheetScreen(view, params) {
  const roomId = params.roomId;
  const emergency = isEmergencyService();
  let content;
  if (emergency) {
    content = h('div', {class: 'room-content'});
    mount(view, content);
  } else {
    ({content} = await roomShell(view, roomId, 'sheet'));
  }
  const professional = isProfessional();
  const draftKey = `sheet:${roomId}`;
  const state = {sheet: null, history: null, historyOpen: false, notice: null, editing: false};

  async function load(then) {
    mount(content, loading());
    try {
      state.sheet = await api('GET', `/api/rooms/${enc(roomId)}/sheet`);
    } catch (err) {
      failedBlock(content, err, () => load(then));
      return;
    }
    if (then) then();
    else if (professional && takeDraft(draftKey)) openEditor();
    else renderView();
  }

  function identity(s) {
    return h(
      'div',
      {class: 'sh-identity'},
      h('h2', {class: 'sh-patient'}, s.patient_name),
      h(
        'dl',
        {class: 'sh-identity-meta'},
        h('div', null, h('dt', null, t('sheet.kana')), h('dd', null, s.patient_name_kana)),
        h('div', null, h('dt', null, t('sheet.dob')), h('dd', null, t('sheet.dobValue', {date: formatDate(s.date_of_birth), age: ageOf(s.date_of_birth)}))),
      ),
    );
  }

  function staleBanner(s) {
    if (!s.status?.needs_confirmation) return null;
    const missing = !s.current || s.status.version === 0;
    return h(
      'div',
      {class: 'banner banner-warning sh-stale', role: 'status', 'data-test': 'sheet-stale'},
      h(
        'p',
        {class: 'sh-stale-title'},
        missing
          ? t('sheet.stale.missing')
          : t(professional ? 'sheet.stale.old' : 'sheet.stale.oldReader', {days: s.status.confirm_within_days}),
      ),
      !missing && s.status.last_confirmed_at
        ? h('p', null, t('sheet.stale.lastConfirmed', {date: formatDateTime(s.status.last_confirmed_at)}))
        : null,
    );
  }

  function renderView() {
    state.editing = false;
    const s = state.sheet;
    // The room header shows the staleness it read when the room loaded: keep it in step.
    if (!s.status?.needs_confirmation) view.querySelector('[data-test="room-sheet-stale"]')?.remove();
    const cur = s.current;
    const host = h('div', {class: 'fm-errors', 'aria-live': 'assertive'});
    const actions = [];
    const mine = (s.confirmations || []).find((c) => c.user_id === userId());
    if (professional && cur) {
      const confirm = h(
        'button',
        {
          type: 'button',
          class: `btn ${s.status.needs_confirmation || !mine ? 'btn-primary' : ''}`,
          'data-test': 'sheet-confirm',
          on: {
            click: () =>
              withBusy(confirm, t('sheet.saving'), async () => {
                try {
                  state.sheet = await api('POST', `/api/rooms/${enc(roomId)}/sheet/confirm`, {version: cur.version});
                  state.notice = t('sheet.confirmed');
                  state.history = null;
                  renderView();
                } catch (err) {
                  clear(host);
                  showError(host, err);
                  if (err instanceof ApiError && err.status === 409) {
                    // A newer version exists: show it (the banner stays).
                    try {
                      state.sheet = await api('GET', `/api/rooms/${enc(roomId)}/sheet`);
                      const keepErr = err;
                      renderView();
                      const again = content.querySelector('.fm-errors');
                      if (again) showError(again, keepErr);
                    } catch {
                      // keep the screen as it is
                    }
                  }
                }
              }),
          },
        },
        t('sheet.confirm', {n: cur.version}),
      );
      actions.push(confirm);
    }
    if (professional) {
      actions.push(
        h('button', {type: 'button', class: 'btn', 'data-test': 'sheet-edit', on: {click: () => openEditor()}}, cur ? t('sheet.edit') : t('sheet.create')),
      );
    }
    if (!emergency && cur) {
      actions.push(
        h(
          'button',
          {
            type: 'button',
            class: 'btn',
            'data-test': 'sheet-history',
            'aria-expanded': state.historyOpen ? 'true' : 'false',
            on: {
              click: () => {
                state.historyOpen = !state.historyOpen;
                renderView();
              },
            },
          },
          state.historyOpen ? t('sheet.historyHide') : t('sheet.history'),
        ),
      );
    }
    if (cur) {
      actions.push(
        h('a', {class: 'btn', 'data-test': 'sheet-print', href: `/api/rooms/${enc(roomId)}/sheet/print`, target: '_blank', rel: 'noopener'}, t('sheet.print')),
      );
    }

    const historyHost = h('section', {class: 'sh-history', 'aria-label': t('sheet.history')});
    const notice = state.notice;
    state.notice = null;

    mount(
      content,
      h(
        'div',
        {class: 'fm-page sh-page', 'data-version': s.status?.version ?? 0},
        h('div', {class: 'fm-toolbar'}, h('h2', {class: 'fm-h'}, t('sheet.title')), h('div', {class: 'fm-toolbar-actions'}, actions)),
        host,
        emergency ? h('p', {class: 'banner banner-info'}, t('sheet.emergencyNote')) : null,
        notice ? h('p', {class: 'banner banner-ok', role: 'status'}, notice) : null,
        staleBanner(s),
        h(
          'article',
          {class: 'fm-paper sh-paper'},
          identity(s),
          cur
            ? h(
                'p',
                {class: 'sh-version-line'},
                h('span', {class: 'badge badge-accent'}, t('sheet.version', {n: cur.version})),
                ' ',
                t('sheet.updatedBy', {who: personText(cur.changed_by)}),
                ' · ',
                formatDateTime(cur.changed_at),
                cur.reason ? h('span', {class: 'sh-reason'}, ` · ${t('sheet.reason')}: ${cur.reason}`) : null,
              )
            : null,
          cur
            ? sheetContent(cur.sheet)
            : h('div', {class: 'empty'}, h('p', null, t('sheet.noneYet')), professional ? h('p', null, t('sheet.noneYetAction')) : null),
        ),
        cur && !emergency ? confirmationsBlock(s, mine) : null,
        state.historyOpen ? historyHost : null,
      ),
    );
    if (state.historyOpen) renderHistory(historyHost);
  }

  function confirmationsBlock(s, mine) {
    const cur = s.current;
    return h(
      'section',
      {class: 'sh-confirmations card'},
      h('h3', null, t('sheet.confirmations'), ' ', h('span', {class: 'badge'}, t('sheet.version', {n: cur.version}))),
      professional
        ? h(
            'p',
            {class: mine ? 'muted' : 'sh-warn'},
            mine ? t('sheet.confirmedByMe', {n: cur.version, date: formatDateTime(mine.confirmed_at)}) : t('sheet.notConfirmedByMe'),
          )
        : null,
      (s.confirmations || []).length
        ? h(
            'ul',
            {class: 'list-plain sh-confirm-list'},
            s.confirmations.map((c) =>
              h('li', {'data-test': 'sheet-confirmation', 'data-user-id': c.user_id}, h('span', null, personText(c)), h('span', {class: 'muted'}, formatDateTime(c.confirmed_at))),
            ),
          )
        : h('p', {class: 'muted'}, t('sheet.noConfirmations')),
      h('h4', null, t('sheet.pending')),
      (s.pending || []).length
        ? h(
            'ul',
            {class: 'list-plain sh-pending-list'},
            s.pending.map((p) => h('li', {'data-user-id': p.user_id}, personText(p))),
          )
        : h('p', {class: 'muted'}, t('sheet.nobodyPending')),
    );
  }

  async function renderHistory(hostEl) {
    mount(hostEl, h('h3', null, t('sheet.history')), loading());
    try {
      if (!state.history) {
        const answer = await api('GET', `/api/rooms/${enc(roomId)}/sheet/versions`);
        state.history = answer?.versions || [];
      }
    } catch (err) {
      failedBlock(hostEl, err, () => renderHistory(hostEl));
      return;
    }
    const versions = state.history;
    mount(
      hostEl,
      h('h3', null, t('sheet.history')),
      versions.length
        ? h(
            'ol',
            {class: 'list-plain sh-versions'},
            versions.map((v) =>
              h(
                'li',
                {class: 'sh-version card', 'data-test': 'sheet-version', 'data-version': v.version},
                h(
                  'div',
                  {class: 'row-between'},
                  h('strong', null, t('sheet.version', {n: v.version})),
                  h('span', {class: 'muted'}, `${formatDateTime(v.changed_at)} · ${personText(v.changed_by)}`),
                ),
                h(
                  'p',
                  {class: 'sh-changed'},
                  t('sheet.changed', {parts: (v.changed || []).map(partLabel).join(listSep()) || '—'}),
                ),
                v.reason ? h('p', null, `${t('sheet.reason')}: ${v.reason}`) : null,
                h('details', null, h('summary', null, t('sheet.showVersion', {n: v.version})), sheetContent(v.sheet, {compact: true})),
              ),
            ),
          )
        : empty(t('sheet.historyEmpty')),
    );
  }

  function openEditor() {
    state.editing = true;
    const s = state.sheet;
    let baseVersion = s.status?.version ?? s.current?.version ?? 0;
    let baseContent = s.current?.sheet || null;
    const saved = takeDraft(draftKey);
    if (saved && saved.baseVersion !== undefined) {
      baseVersion = saved.baseVersion;
      baseContent = saved.baseContent ?? baseContent;
    }
    const title = h('h2', {class: 'fm-h'}, baseVersion ? t('sheet.editTitle', {n: baseVersion}) : t('sheet.createTitle'));
    const editor = sheetEditor(s.current?.sheet, {
      draftKey,
      restored: saved?.form,
      baseVersion: () => baseVersion,
      baseContent: () => baseContent,
      onCancel: () => {
        dropDraft(draftKey);
        renderView();
        content.querySelector('[data-test="sheet-edit"]')?.focus();
      },
      onSave: async (body, {form, host, conflictHost}) => {
        try {
          state.sheet = await api('PUT', `/api/rooms/${enc(roomId)}/sheet`, {base_version: baseVersion, ...body});
        } catch (err) {
          const stale = err instanceof ApiError && err.status === 409 && err.fields.some((f) => f.field === 'base_version');
          if (!stale) throw err;
          // Someone else saved first: keep the input, show the newest version next to it.
          let newest = null;
          try {
            newest = await api('GET', `/api/rooms/${enc(roomId)}/sheet`);
          } catch {
            newest = null;
          }
          clearFieldErrors(form);
          clear(host);
          let both = [];
          let taken = [];
          if (newest) {
            // Three-way merge by part: what the other person changed and this user did not
            // is taken over; what both changed keeps this user's input and is flagged.
            const theirs = newest.current?.sheet || {};
            const merged = mergeParts(baseContent || {}, body.sheet, theirs);
            both = merged.both;
            taken = merged.taken;
            editor.setContent(merged.content);
            state.sheet = newest;
            baseVersion = newest.status?.version ?? newest.current?.version ?? baseVersion;
            baseContent = theirs;
            keepDraft(draftKey, {form: null, baseVersion, baseContent});
            form.dispatchEvent(new Event('change'));
            title.textContent = t('sheet.editTitle', {n: baseVersion});
            mount(
              conflictHost,
              h(
                'details',
                {class: 'sh-conflict-newest', open: true},
                h('summary', null, t('sheet.conflictNewest', {n: baseVersion})),
                newest.current ? sheetContent(newest.current.sheet, {compact: true}) : null,
              ),
            );
          }
          const ja = [tIn('ja', 'sheet.conflict', {n: baseVersion})];
          const en = [tIn('en', 'sheet.conflict', {n: baseVersion})];
          if (taken.length) {
            ja.push(tIn('ja', 'sheet.conflictTaken', {parts: partsIn('ja', taken)}));
            en.push(tIn('en', 'sheet.conflictTaken', {parts: partsIn('en', taken)}));
          }
          if (both.length) {
            ja.push(tIn('ja', 'sheet.conflictBoth', {parts: partsIn('ja', both)}));
            en.push(tIn('en', 'sheet.conflictBoth', {parts: partsIn('en', both)}));
          }
          const conflictErr = new ApiError(409, {
            code: err.code,
            message_ja: ja.join(' '),
            message_en: en.join(' '),
            fields: both.map((part) => {
              const theirs = newest?.current?.sheet?.[part];
              const simple = ['care_level', 'dnar', 'dnar_note', 'acp_wishes', 'notes'].includes(part);
              const value = (code) => {
                if (theirs === undefined || theirs === null || theirs === '') return tIn(code, 'sheet.none');
                if (part === 'care_level') return tIn(code, `sheet.care.${theirs}`);
                if (part === 'dnar') return tIn(code, `sheet.dnar.${theirs}`);
                return String(theirs);
              };
              return {
                field: `sheet.${part}`,
                code: 'changed_by_both',
                message_ja: tIn('ja', 'sheet.changedByBoth') + (simple ? tIn('ja', 'sheet.theirValue', {value: value('ja')}) : ''),
                message_en: tIn('en', 'sheet.changedByBoth') + (simple ? tIn('en', 'sheet.theirValue', {value: value('en')}) : ''),
              };
            }),
          });
          showFormErrors(form, host, conflictErr);
          if (!both.length) {
            host.scrollIntoView({block: 'start', behavior: 'smooth'});
          }
          return;
        }
        dropDraft(draftKey);
        state.history = null;
        state.notice = t('sheet.saved', {n: state.sheet.status?.version ?? state.sheet.current?.version});
        renderView();
        window.scrollTo({top: 0, behavior: 'smooth'});
      },
    });
    mount(
      content,
      h(
        'div',
        {class: 'fm-page sh-page sh-editing'},
        h('div', {class: 'fm-toolbar'}, title),
        staleBanner(s),
        h('div', {class: 'fm-paper'}, identity(s), editor.el),
      ),
    );
    const first = editor.el.querySelector('input, select, textarea');
    if (first) first.focus({preventScroll: true});
  }

  await load();
}

export function register() {
  route('/rooms/:roomId/sheet', sheetScreen);
}
