// Strings: Japanese first, English second. Every visible string goes through t().
//
//   addStrings({ja: {hello: 'こんにちは、{name}さん'}, en: {hello: 'Hello, {name}'}});
//   t('hello', {name: '佐藤'})
//
// The language is kept in localStorage as `tsunagu.lang` (the only thing the app keeps there).

const STORAGE_KEY = 'tsunagu.lang';
const strings = {ja: {}, en: {}};
const listeners = new Set();
const warned = new Set();

function initialLang() {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (stored === 'ja' || stored === 'en') return stored;
  } catch {
    // storage unavailable: Japanese
  }
  return 'ja';
}

let current = initialLang();

export function lang() {
  return current;
}

export function setLang(next) {
  if (next !== 'ja' && next !== 'en') return;
  if (next === current) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // ignore
  }
  document.documentElement.lang = next;
  for (const fn of [...listeners]) {
    try {
      fn(next);
    } catch (err) {
      console.error(err);
    }
  }
}

/** Calls fn(lang) after every language change; returns a function that removes it. */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function addStrings(table) {
  for (const code of ['ja', 'en']) {
    if (table && table[code]) Object.assign(strings[code], table[code]);
  }
}

export function has(key) {
  return key in strings[current] || key in strings.ja;
}

export function t(key, vars) {
  let s = strings[current][key];
  if (s === undefined) s = strings.ja[key];
  if (s === undefined) {
    if (!warned.has(key)) {
      warned.add(key);
      console.warn(`i18n: missing string ${key}`);
    }
    s = key;
  }
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
  }
  return s;
}

/** The string `key` in the language `code` ('ja' | 'en'), whatever the current one is. */
export function tIn(code, key, vars) {
  const saved = current;
  current = code === 'en' ? 'en' : 'ja';
  try {
    return t(key, vars);
  } finally {
    current = saved;
  }
}

/** The server's message in the current language (obj.message_ja / obj.message_en). */
export function message(obj) {
  if (!obj) return '';
  if (current === 'en') return obj.message_en || obj.message_ja || obj.message || '';
  return obj.message_ja || obj.message_en || obj.message || '';
}

/** A pair {ja, en} (or obj.xxx_ja / obj.xxx_en by prefix) in the current language. */
export function pick(obj, prefix) {
  if (!obj) return '';
  if (prefix) {
    return current === 'en'
      ? obj[`${prefix}_en`] || obj[`${prefix}_ja`] || ''
      : obj[`${prefix}_ja`] || obj[`${prefix}_en`] || '';
  }
  return current === 'en' ? obj.en || obj.ja || '' : obj.ja || obj.en || '';
}

const TZ = 'Asia/Tokyo';
function locale() {
  return current === 'ja' ? 'ja-JP' : 'en-GB';
}

function toDate(iso) {
  if (iso instanceof Date) return iso;
  if (typeof iso === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(iso)) {
    return new Date(`${iso}T00:00:00+09:00`);
  }
  return new Date(iso);
}

/** `iso` in Japan time with the given Intl parts ('' for nothing, as is if unreadable). */
function formatJapan(iso, parts) {
  if (!iso) return '';
  const d = toDate(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(locale(), {timeZone: TZ, hour12: false, ...parts}).format(d);
}

const DAY = () => ({year: 'numeric', month: current === 'ja' ? '2-digit' : 'short', day: '2-digit'});
const CLOCK = {hour: '2-digit', minute: '2-digit'};

/** 2026/11/21 18:30 (Japan time). */
export function formatDateTime(iso) {
  return formatJapan(iso, {...DAY(), ...CLOCK});
}

/** 2026/11/21 (a plain YYYY-MM-DD date is shown as is, never shifted). */
export function formatDate(iso) {
  return formatJapan(iso, DAY());
}

/** 18:30 (Japan time). */
export function formatTime(iso) {
  return formatJapan(iso, CLOCK);
}

/** Today's date in Japan as YYYY-MM-DD. */
export function todayInJapan() {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: TZ,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(new Date());
  return parts;
}

export function roleName(role) {
  return has(`role.${role}`) ? t(`role.${role}`) : String(role ?? '');
}

export function orgKindName(kind) {
  return has(`orgkind.${kind}`) ? t(`orgkind.${kind}`) : String(kind ?? '');
}

addStrings({
  ja: {
    'role.physician': '医師',
    'role.dentist': '歯科医師',
    'role.pharmacist': '薬剤師',
    'role.nurse': '看護師',
    'role.therapist': 'リハビリ職',
    'role.dietitian': '管理栄養士',
    'role.dental_hygienist': '歯科衛生士',
    'role.care_manager': 'ケアマネジャー',
    'role.care_worker': '介護職',
    'role.municipal_staff': '行政職員',
    'role.family': '家族',
    'role.patient': '本人',
    'role.emergency_service': '救急隊',
    'role.security_officer': 'セキュリティ責任者',
    'role.organisation_admin': '組織管理者',
    'role.system_admin': 'システム管理者',
    'orgkind.clinic': '診療所',
    'orgkind.hospital': '病院',
    'orgkind.dental_clinic': '歯科診療所',
    'orgkind.pharmacy': '薬局',
    'orgkind.visiting_nursing_station': '訪問看護ステーション',
    'orgkind.care_management_office': '居宅介護支援事業所',
    'orgkind.care_service': '介護サービス事業所',
    'orgkind.community_support_centre': '地域包括支援センター',
    'orgkind.municipality': '市区町村',
    'orgkind.emergency_service': '消防・救急',
    'consent.missing': '同意未取得',
    'consent.given': '同意あり',
    'consent.withdrawn': '同意撤回',
    'common.loading': '読み込み中…',
    'common.retry': '再試行',
    'common.save': '保存',
    'common.cancel': 'キャンセル',
    'common.close': '閉じる',
    'common.back': '戻る',
    'common.send': '送信',
    'common.submit': '送信',
    'common.delete': '削除',
    'common.edit': '編集',
    'common.yes': 'はい',
    'common.no': 'いいえ',
    'common.required': '必須',
    'common.optional': '任意',
    'common.none': 'なし',
    'common.error': 'エラーが発生しました。',
    'error.network': 'サーバーに接続できません。通信状態を確認してください。',
    'error.unexpected': '予期しない応答がありました（{status}）。',
    'error.not_found_page': 'このページは見つかりません。',
    'error.to_home': 'ホームへ',
  },
  en: {
    'role.physician': 'Physician',
    'role.dentist': 'Dentist',
    'role.pharmacist': 'Pharmacist',
    'role.nurse': 'Nurse',
    'role.therapist': 'Therapist',
    'role.dietitian': 'Dietitian',
    'role.dental_hygienist': 'Dental hygienist',
    'role.care_manager': 'Care manager',
    'role.care_worker': 'Care worker',
    'role.municipal_staff': 'Municipal staff',
    'role.family': 'Family',
    'role.patient': 'Patient',
    'role.emergency_service': 'Emergency service',
    'role.security_officer': 'Security officer',
    'role.organisation_admin': 'Organisation admin',
    'role.system_admin': 'System admin',
    'orgkind.clinic': 'Clinic',
    'orgkind.hospital': 'Hospital',
    'orgkind.dental_clinic': 'Dental clinic',
    'orgkind.pharmacy': 'Pharmacy',
    'orgkind.visiting_nursing_station': 'Visiting-nursing station',
    'orgkind.care_management_office': 'Care-management office',
    'orgkind.care_service': 'Care service',
    'orgkind.community_support_centre': 'Community support centre',
    'orgkind.municipality': 'Municipality',
    'orgkind.emergency_service': 'Emergency service',
    'consent.missing': 'No consent',
    'consent.given': 'Consent given',
    'consent.withdrawn': 'Consent withdrawn',
    'common.loading': 'Loading…',
    'common.retry': 'Retry',
    'common.save': 'Save',
    'common.cancel': 'Cancel',
    'common.close': 'Close',
    'common.back': 'Back',
    'common.send': 'Send',
    'common.submit': 'Submit',
    'common.delete': 'Delete',
    'common.edit': 'Edit',
    'common.yes': 'Yes',
    'common.no': 'No',
    'common.required': 'Required',
    'common.optional': 'Optional',
    'common.none': 'None',
    'common.error': 'Something went wrong.',
    'error.network': 'Cannot reach the server. Check the connection.',
    'error.unexpected': 'Unexpected answer from the server ({status}).',
    'error.not_found_page': 'This page does not exist.',
    'error.to_home': 'Home',
  },
});
