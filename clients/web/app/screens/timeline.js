// The timeline of a room ('/rooms/:roomId'): the newest 50 events, older pages on demand, live
// events, acknowledgements, corrections with their history, deletions, system events, and the
// composer whose posts go through the outbox (core/outbox.js) so that nothing typed is lost
// offline. The family and the patient get the same screen in the family look, without the
// care-team controls; the server sends them only what is meant for everyone.

import { h, mount, clear, uid } from '../core/dom.js';
import { t, addStrings, formatDateTime, roleName, message, pick } from '../core/i18n.js';
import { api } from '../core/api.js';
import { route, href, onLeave, match } from '../core/router.js';
import { roomShell, roomPath, showError, clearErrors, field, addFieldError, loading, empty } from '../core/shell.js';
import * as session from '../core/session.js';
import { live } from '../core/live.js';
import { addPost, listPosts, discardPost, retryPost, onOutboxChange } from '../core/outbox.js';

addStrings({
  ja: {
    'tl.older': 'さらに前の記録を読み込む',
    'tl.older_loading': '読み込み中…',
    'tl.empty': 'まだ記録はありません。最初の連絡を書いてみましょう。',
    'tl.empty_family': 'まだ記録はありません。',
    'tl.live_off': 'リアルタイム更新に再接続しています。新しい記録は接続が戻ると表示されます。',
    'tl.removed': 'このルームのメンバーではなくなりました。新しい記録は表示されません。',
    'tl.visibility.care_team': 'ケアチームのみ',
    'tl.visibility.everyone': '全員（家族・本人も）',
    'tl.urgent': '急変・至急',
    'tl.edited': '編集済み',
    'tl.edited_note': '第{version}版に訂正（理由: {reason}）',
    'tl.deleted': 'この記録は削除されました。',
    'tl.deleted_reason': '削除の理由: {reason}',
    'tl.deleted_by': '{name} さんが {time} に削除',
    'tl.ack': '見ました',
    'tl.acked': '確認済み',
    'tl.ack_label': 'この記録を見たことを知らせる',
    'tl.acks_show': '確認した人',
    'tl.acks_hide': '閉じる',
    'tl.acks_none': 'まだ誰も「見ました」を押していません。',
    'tl.acks_title': '見ました:',
    'tl.ack_item': '{name}（{role}）{time}',
    'tl.history': '訂正の履歴',
    'tl.history_hide': '履歴を閉じる',
    'tl.version': '第{version}版',
    'tl.version_reason': '理由: {reason}',
    'tl.version_deleted': '削除',
    'tl.edit': '訂正',
    'tl.delete': '削除',
    'tl.edit_title': '記録を訂正',
    'tl.delete_title': '記録を削除',
    'tl.edit_text': '訂正後の内容',
    'tl.edit_reason': '訂正の理由',
    'tl.delete_reason': '削除の理由',
    'tl.edit_reason_hint': '例: 数値の誤記、別の患者の記録など。全員の履歴に残ります。',
    'tl.edit_save': '訂正を保存',
    'tl.delete_confirm': '削除する',
    'tl.required': '入力してください。',
    'tl.unchanged': '内容が変わっていません。',
    'tl.attachment_pdf': 'PDF: {name}',
    'tl.attachment_open': '{name} を開く',
    'tl.photo_alt': '添付写真: {name}',
    'tl.system.room_created': '{name} さんが患者ルームを作成しました',
    'tl.system.member_joined': '{name} さんがルームに参加しました',
    'tl.system.member_left': '{name} さんがルームから退出しました',
    'tl.system.member_revoked': '{name} さんが {target} さんをルームから外しました',
    'tl.system.member_revoked_unknown': '{name} さんがメンバーをルームから外しました',
    'tl.system.consent_recorded': '{name} さんが同意を記録しました',
    'tl.system.consent_withdrawn': '{name} さんが同意の撤回を記録しました',
    'tl.system.form_sent': '{name} さんが書式「{title}」を送信しました',
    'tl.system.form_corrected': '{name} さんが書式を訂正しました（第{version}版）',
    'tl.system.form_answered': '{name} さんが書式に回答しました',
    'tl.system.form_acknowledged': '{name} さんが書式を確認しました',
    'tl.system.sheet_updated': '{name} さんが緊急時情報シートを更新しました（第{version}版）',
    'tl.system.unknown': '{name} さんの操作がありました',
    'tl.system.open_form': '書式を開く',
    'tl.system.open_sheet': 'シートを開く',
    'tl.orphan_edited': '以前の記録が訂正されました（理由: {reason}）',
    'tl.orphan_deleted': '以前の記録が削除されました（理由: {reason}）',
    'tl.compose_label': '記録・連絡を書く',
    'tl.compose_hint_everyone': 'この記録はご家族・本人も読めます。',
    'tl.compose_hint_family': 'ケアチームの全員とご家族が読めます。',
    'tl.compose_visibility': '公開範囲',
    'tl.compose_urgent': '急変・至急として送る',
    'tl.compose_photo': '写真を添付',
    'tl.compose_send': '送信',
    'tl.compose_empty': '内容を入力するか、写真を添付してください。',
    'tl.compose_too_long': '10,000文字以内で入力してください（現在 {n} 文字）。',
    'tl.compose_too_many': '写真は1回に10枚までです。',
    'tl.compose_bad_type': 'JPEG または PNG の写真を選んでください。',
    'tl.compose_remove_photo': '外す',
    'tl.compose_remove_photo_label': '{name} を外す',
    'tl.compose_consent_missing': '同意が記録されていないため、まだ投稿できません。',
    'tl.compose_consent_withdrawn': '同意が撤回されているため、投稿できません。',
    'tl.compose_consent_link': 'メンバー・同意の画面で同意を記録する',
    'tl.pending': '送信待ち',
    'tl.pending_offline': 'オフラインです。接続が戻ると自動的に送信します。',
    'tl.pending_waiting': '送信を待っています。自動的に再送します。',
    'tl.pending_sending': '送信中…',
    'tl.pending_sent': '送信しました。表示を待っています…',
    'tl.failed': '送信できませんでした: {message}',
    'tl.discard': '破棄',
    'tl.retry': 'もう一度送る',
    'tl.me': 'あなた',
    // The family look: plain words, fewer controls.
    'tl.edited_note_family': '書き直されています（理由: {reason}）',
    'tl.acks_show_family': '読んだ人',
    'tl.edit_family': '書き直す',
    'tl.delete_family': '消す',
    'tl.compose_label_family': 'ケアチームへの連絡を書く',
    'tl.system_show': '参加・退出などのお知らせを表示（{n}件）',
    'tl.system_hide': '参加・退出などのお知らせを隠す',
  },
  en: {
    'tl.older': 'Load earlier notes',
    'tl.older_loading': 'Loading…',
    'tl.empty': 'No notes yet. Write the first one.',
    'tl.empty_family': 'No notes yet.',
    'tl.live_off': 'Reconnecting live updates. New notes appear once the connection is back.',
    'tl.removed': 'You are no longer a member of this room. New notes are not shown.',
    'tl.visibility.care_team': 'Care team only',
    'tl.visibility.everyone': 'Everyone (family too)',
    'tl.urgent': 'Urgent',
    'tl.edited': 'Edited',
    'tl.edited_note': 'Corrected to version {version} (reason: {reason})',
    'tl.deleted': 'This note was deleted.',
    'tl.deleted_reason': 'Reason: {reason}',
    'tl.deleted_by': 'Deleted by {name} at {time}',
    'tl.ack': 'Seen',
    'tl.acked': 'Seen ✓',
    'tl.ack_label': 'Let the others know you have seen this note',
    'tl.acks_show': 'Who has seen it',
    'tl.acks_hide': 'Close',
    'tl.acks_none': 'Nobody has marked it seen yet.',
    'tl.acks_title': 'Seen by:',
    'tl.ack_item': '{name} ({role}) {time}',
    'tl.history': 'Correction history',
    'tl.history_hide': 'Close the history',
    'tl.version': 'Version {version}',
    'tl.version_reason': 'Reason: {reason}',
    'tl.version_deleted': 'Deleted',
    'tl.edit': 'Correct',
    'tl.delete': 'Delete',
    'tl.edit_title': 'Correct this note',
    'tl.delete_title': 'Delete this note',
    'tl.edit_text': 'Corrected text',
    'tl.edit_reason': 'Reason for the correction',
    'tl.delete_reason': 'Reason for the deletion',
    'tl.edit_reason_hint': 'e.g. a wrong value, the wrong patient. Kept in the history for everyone.',
    'tl.edit_save': 'Save the correction',
    'tl.delete_confirm': 'Delete',
    'tl.required': 'Please fill this in.',
    'tl.unchanged': 'The text has not changed.',
    'tl.attachment_pdf': 'PDF: {name}',
    'tl.attachment_open': 'Open {name}',
    'tl.photo_alt': 'Attached photo: {name}',
    'tl.system.room_created': '{name} opened the patient room',
    'tl.system.member_joined': '{name} joined the room',
    'tl.system.member_left': '{name} left the room',
    'tl.system.member_revoked': '{name} removed {target} from the room',
    'tl.system.member_revoked_unknown': '{name} removed a member from the room',
    'tl.system.consent_recorded': '{name} recorded the consent',
    'tl.system.consent_withdrawn': '{name} recorded a withdrawal of consent',
    'tl.system.form_sent': '{name} sent the form “{title}”',
    'tl.system.form_corrected': '{name} corrected a form (version {version})',
    'tl.system.form_answered': '{name} answered a form',
    'tl.system.form_acknowledged': '{name} acknowledged a form',
    'tl.system.sheet_updated': '{name} updated the emergency sheet (version {version})',
    'tl.system.unknown': 'An action by {name}',
    'tl.system.open_form': 'Open the form',
    'tl.system.open_sheet': 'Open the sheet',
    'tl.orphan_edited': 'An earlier note was corrected (reason: {reason})',
    'tl.orphan_deleted': 'An earlier note was deleted (reason: {reason})',
    'tl.compose_label': 'Write a note',
    'tl.compose_hint_everyone': 'The family and the patient can read this note.',
    'tl.compose_hint_family': 'The whole care team and the family can read it.',
    'tl.compose_visibility': 'Who can read it',
    'tl.compose_urgent': 'Send as urgent',
    'tl.compose_photo': 'Attach a photo',
    'tl.compose_send': 'Send',
    'tl.compose_empty': 'Write something or attach a photo.',
    'tl.compose_too_long': 'At most 10,000 characters (now {n}).',
    'tl.compose_too_many': 'At most 10 photos at a time.',
    'tl.compose_bad_type': 'Choose a JPEG or PNG photo.',
    'tl.compose_remove_photo': 'Remove',
    'tl.compose_remove_photo_label': 'Remove {name}',
    'tl.compose_consent_missing': 'No consent is recorded yet: posting is not possible.',
    'tl.compose_consent_withdrawn': 'Consent has been withdrawn: posting is not possible.',
    'tl.compose_consent_link': 'Record the consent on the members & consent page',
    'tl.pending': 'Waiting to send',
    'tl.pending_offline': 'Offline. It will be sent when the connection is back.',
    'tl.pending_waiting': 'Waiting to send; it will be retried automatically.',
    'tl.pending_sending': 'Sending…',
    'tl.pending_sent': 'Sent. Waiting for it to appear…',
    'tl.failed': 'Could not be sent: {message}',
    'tl.discard': 'Discard',
    'tl.retry': 'Send again',
    'tl.me': 'You',
    'tl.edited_note_family': 'Rewritten (reason: {reason})',
    'tl.acks_show_family': 'Who has read it',
    'tl.edit_family': 'Rewrite',
    'tl.delete_family': 'Delete',
    'tl.compose_label_family': 'Write to the care team',
    'tl.system_show': 'Show notices of people joining and leaving ({n})',
    'tl.system_hide': 'Hide notices of people joining and leaving',
  },
});

// Drafts of the composer, in memory only (never in browser storage), so that switching tabs
// or the language does not lose what was typed. Emptied at logout.
const drafts = new Map();

export function clearDrafts() {
  drafts.clear();
}

const PAGE = 50;
const MAX_TEXT = 10000;
const MAX_FILES = 10;
// System events the family look folds away by default (who opened the room, joined, left, and
// the consent being recorded): the members tab shows the same.
const MINOR_SYSTEM_EVENTS = new Set(['room_created', 'member_joined', 'member_left', 'member_revoked', 'consent_recorded']);

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function formatBytes(n) {
  if (!n && n !== 0) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

function nearBottom() {
  return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 200;
}

function scrollToBottom() {
  window.scrollTo(0, document.documentElement.scrollHeight);
}

async function renderTimeline(view, roomId) {
  const {content, room} = await roomShell(view, roomId, 'timeline');
  const family = session.isFamily();
  const professional = session.isProfessional();
  const myId = session.userId();
  const consentOk = room.consent === 'given';

  // ------------------------------------------------------------------ state
  const seen = new Set(); // seqs applied
  const entries = new Map(); // entry_id -> entry model
  const laterChanges = new Map(); // entry_id -> [edited/deleted events seen before the post]
  const items = new Map(); // key -> {key, seq, node}
  const order = []; // keys by seq
  const pendingNodes = new Map(); // client_id -> node
  const pendingRecords = new Map(); // client_id -> outbox record
  const sentClientIds = new Set(); // client ids whose event is on screen
  const entryOfClient = new Map(); // client_id -> entry_id (from the POST answer)
  const attachmentNodes = new Map(); // attachment_id -> element (kept across re-renders)
  const objectUrls = new Set();
  const memberNames = new Map();
  let membersLoaded = false;
  let minSeq = Infinity;
  let maxSeq = 0;
  let removed = false;

  // ------------------------------------------------------------------ layout
  const liveStatus = h('p', {class: 'banner banner-info', role: 'status', hidden: true}, t('tl.live_off'));
  const removedBanner = h('p', {class: 'banner banner-warning', role: 'status', hidden: true}, t('tl.removed'));
  const olderButton = h('button', {class: 'btn', type: 'button', 'data-test': 'timeline-older', hidden: true, on: {click: () => loadOlder()}}, t('tl.older'));
  const olderBox = h('div', {class: 'older-wrap stack-sm'}, olderButton);
  const list = h('ol', {id: uid('timeline'), class: 'timeline', 'aria-label': t('room.tab.timeline'), 'aria-live': 'polite', 'aria-relevant': 'additions'});
  // The family look folds away the notices of who joined or left (the members tab lists the
  // care team); one button shows them.
  const systemToggle = family
    ? h('button', {
        class: 'btn btn-link system-toggle',
        type: 'button',
        hidden: true,
        'aria-expanded': 'false',
        'aria-controls': list.id,
        on: {
          click: () => {
            list.classList.toggle('show-minor');
            updateSystemToggle();
          },
        },
      })
    : null;
  const pendingList = h('ol', {class: 'timeline timeline-pending', 'aria-label': t('tl.pending')});
  const emptyBox = h('div');
  const composerBox = h('div');
  // What the "seen" buttons do, said once for screen readers (their name stays the visible word).
  const ackHelp = h('span', {id: uid('ack-help'), class: 'sr-only'}, t('tl.ack_label'));
  mount(content, removedBanner, liveStatus, olderBox, systemToggle, emptyBox, list, pendingList, composerBox, ackHelp);
  const loadingEl = loading();
  list.before(loadingEl);

  // ------------------------------------------------------------------ helpers
  function authorLine(author) {
    const org = author.organisation_name ? ` · ${author.organisation_name}` : '';
    return `${roleName(author.role)}${org}`;
  }

  function updateEmpty() {
    const none = order.length === 0 && pendingNodes.size === 0;
    mount(emptyBox, none ? empty(t(family ? 'tl.empty_family' : 'tl.empty')) : null);
    olderButton.hidden = !(minSeq !== Infinity && minSeq > 1);
    updateSystemToggle();
  }

  function updateSystemToggle() {
    if (!systemToggle) return;
    const n = list.querySelectorAll('.system-minor').length;
    const open = list.classList.contains('show-minor');
    systemToggle.hidden = n === 0;
    systemToggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    systemToggle.textContent = open ? t('tl.system_hide') : t('tl.system_show', {n});
  }

  function attachmentUrl(id) {
    return `/api/rooms/${encodeURIComponent(roomId)}/attachments/${encodeURIComponent(id)}`;
  }

  function attachmentEl(a) {
    if (attachmentNodes.has(a.attachment_id)) return attachmentNodes.get(a.attachment_id);
    const url = attachmentUrl(a.attachment_id);
    let el;
    if (a.media_type && a.media_type.startsWith('image/')) {
      el = h(
        'a',
        {class: 'entry-photo', href: url, target: '_blank', rel: 'noopener', 'aria-label': t('tl.attachment_open', {name: a.file_name})},
        h('img', {src: url, alt: t('tl.photo_alt', {name: a.file_name}), loading: 'lazy', decoding: 'async'}),
      );
    } else {
      el = h(
        'a',
        {class: 'entry-file', href: url, target: '_blank', rel: 'noopener'},
        h('span', {class: 'icon-file', 'aria-hidden': 'true'}),
        t('tl.attachment_pdf', {name: a.file_name}),
        h('span', {class: 'muted small'}, formatBytes(a.byte_size)),
      );
    }
    attachmentNodes.set(a.attachment_id, el);
    return el;
  }

  // ------------------------------------------------------------------ entries
  function entryNode(e) {
    const urgent = e.kind === 'urgent';
    const mine = e.author.user_id === myId;
    const ui = e.ui;
    const badges = h(
      'span',
      {class: 'entry-badges'},
      urgent ? h('span', {class: 'badge badge-urgent'}, t('tl.urgent')) : null,
      family ? null : h('span', {class: e.visibility === 'care_team' ? 'badge badge-accent' : 'badge', 'data-test': 'entry-visibility'}, t(`tl.visibility.${e.visibility}`)),
      e.version > 1 && !e.deleted && !family ? h('span', {class: 'badge badge-muted', 'data-test': 'entry-edited'}, t('tl.edited')) : null,
    );
    const head = h(
      'div',
      {class: 'entry-head'},
      h('span', {class: 'entry-author', 'data-test': 'entry-author'}, e.author.display_name),
      h('span', {class: 'entry-meta'}, authorLine(e.author)),
      h('time', {class: 'entry-meta', datetime: e.created_at}, formatDateTime(e.created_at)),
      badges,
    );
    const body = e.deleted
      ? h(
          'div',
          {class: 'stack-sm'},
          h('p', {class: 'entry-text entry-tombstone', 'data-test': 'entry-text'}, t('tl.deleted')),
          h('p', {class: 'muted small'}, t('tl.deleted_reason', {reason: e.deleteReason || ''}), ' · ', t('tl.deleted_by', {name: e.deletedBy || '', time: formatDateTime(e.deletedAt)})),
        )
      : h(
          'div',
          {class: 'stack-sm'},
          e.text ? h('p', {class: 'entry-text', 'data-test': 'entry-text'}, e.text) : h('p', {class: 'entry-text sr-only', 'data-test': 'entry-text'}, ''),
          e.attachments.length ? h('div', {class: 'entry-attachments'}, e.attachments.map(attachmentEl)) : null,
          e.version > 1
            ? h('p', {class: 'muted small'}, family ? t('tl.edited_note_family', {reason: e.reason || ''}) : t('tl.edited_note', {version: e.version, reason: e.reason || ''}))
            : null,
        );

    const actions = h('div', {class: 'entry-actions'});
    if (!e.deleted && !mine) {
      const acked = ui.acks && ui.acks.some((a) => a.user_id === myId);
      actions.appendChild(
        h('button', {
          class: acked ? 'btn btn-small btn-ack is-acked' : 'btn btn-small btn-ack',
          type: 'button',
          'data-test': 'entry-ack',
          'aria-describedby': ackHelp.id,
          'aria-pressed': acked ? 'true' : 'false',
          disabled: ui.acking || false,
          on: {click: () => acknowledge(e)},
        }, acked ? t('tl.acked') : t('tl.ack')),
      );
    }
    // The family look: fewer buttons. Who has seen a note matters to them on their own notes.
    if (!family || mine) {
      actions.appendChild(
        h('button', {
          class: 'btn btn-small btn-quiet',
          type: 'button',
          'aria-expanded': ui.acksOpen ? 'true' : 'false',
          'data-test': 'entry-acks-toggle',
          on: {click: () => toggleAcks(e)},
        }, ui.acksOpen ? t('tl.acks_hide') : t(family ? 'tl.acks_show_family' : 'tl.acks_show')),
      );
    }
    if (professional && e.version > 1) {
      actions.appendChild(
        h('button', {
          class: 'btn btn-small btn-quiet',
          type: 'button',
          'data-test': 'entry-history',
          'aria-expanded': ui.historyOpen ? 'true' : 'false',
          on: {click: () => toggleHistory(e)},
        }, ui.historyOpen ? t('tl.history_hide') : t('tl.history')),
      );
    }
    if (mine && !e.deleted && consentOk) {
      actions.appendChild(
        h('button', {class: 'btn btn-small btn-quiet', type: 'button', 'data-test': 'entry-edit', 'aria-expanded': ui.editing === 'edit' ? 'true' : 'false', on: {click: () => openEditor(e, 'edit')}}, t(family ? 'tl.edit_family' : 'tl.edit')),
      );
    }
    if (mine && !e.deleted) {
      actions.appendChild(
        h('button', {class: 'btn btn-small btn-quiet', type: 'button', 'data-test': 'entry-delete', 'aria-expanded': ui.editing === 'delete' ? 'true' : 'false', on: {click: () => openEditor(e, 'delete')}}, t(family ? 'tl.delete_family' : 'tl.delete')),
      );
    }

    const acksBox = h('div', {class: 'entry-acks', 'data-test': 'entry-acks', hidden: !ui.acksOpen && !ui.acks});
    if (ui.acksError) {
      acksBox.appendChild(h('p', {class: 'field-error'}, ui.acksError));
    } else if (ui.acks) {
      acksBox.appendChild(
        ui.acks.length === 0
          ? h('p', null, t('tl.acks_none'))
          : h(
              'p',
              null,
              h('strong', null, t('tl.acks_title')),
              ' ',
              ui.acks.map((a, i) => [
                i ? '、' : '',
                h('span', {class: 'ack-name', 'data-user-id': a.user_id}, t('tl.ack_item', {name: a.display_name, role: roleName(a.role), time: formatDateTime(a.acknowledged_at)})),
              ]),
            ),
      );
    } else if (ui.acksOpen) {
      acksBox.appendChild(loading());
    }

    const history = ui.historyOpen
      ? h(
          'div',
          {class: 'entry-history', 'data-test': 'entry-history-list'},
          ui.versionsError
            ? h('p', {class: 'field-error'}, ui.versionsError)
            : ui.versions
              ? ui.versions.map((v) =>
                  h(
                    'div',
                    {class: 'version', 'data-version': v.version},
                    h(
                      'p',
                      {class: 'entry-meta'},
                      h('strong', null, v.deleted ? t('tl.version_deleted') : t('tl.version', {version: v.version})),
                      ' · ',
                      v.author.display_name,
                      ' · ',
                      formatDateTime(v.created_at),
                      v.reason ? ` · ${t('tl.version_reason', {reason: v.reason})}` : '',
                    ),
                    v.text !== null && v.text !== undefined ? h('p', {class: 'version-text'}, v.text) : null,
                  ),
                )
              : loading(),
        )
      : null;

    const editor = ui.editing ? editorNode(e) : null;

    return h(
      'li',
      {
        class: `timeline-entry${e.deleted ? ' is-deleted' : ''}`,
        'data-test': 'timeline-entry',
        'data-entry-id': e.entry_id,
        'data-client-id': e.client_id || null,
        'data-seq': e.seq,
        'data-state': 'sent',
        'data-urgent': urgent ? 'true' : 'false',
        'data-visibility': e.visibility,
      },
      head,
      body,
      actions,
      acksBox,
      history,
      editor,
    );
  }

  function editorNode(e) {
    const ui = e.ui;
    const isEdit = ui.editing === 'edit';
    const draft = ui.draft || {text: e.text, reason: ''};
    ui.draft = draft;
    const text = isEdit
      ? h('textarea', {rows: '4', maxlength: String(MAX_TEXT), value: draft.text, 'data-test': 'edit-text', on: {input: (ev) => { draft.text = ev.target.value; }}})
      : null;
    const reason = h('input', {type: 'text', maxlength: '500', value: draft.reason, 'data-test': 'edit-reason', on: {input: (ev) => { draft.reason = ev.target.value; }}});
    const textField = isEdit ? field({label: t('tl.edit_text'), input: text, path: 'text', required: true}) : null;
    const reasonField = field({label: t(isEdit ? 'tl.edit_reason' : 'tl.delete_reason'), input: reason, path: 'reason', hint: t('tl.edit_reason_hint'), required: true});
    const save = h('button', {class: isEdit ? 'btn btn-primary' : 'btn btn-danger', type: 'submit', 'data-test': isEdit ? 'edit-submit' : 'delete-submit'}, t(isEdit ? 'tl.edit_save' : 'tl.delete_confirm'));
    const form = h(
      'form',
      {
        class: 'entry-edit-form stack-sm',
        novalidate: true,
        on: {
          submit: async (ev) => {
            ev.preventDefault();
            clearErrors(form);
            let ok = true;
            if (isEdit && !draft.text.trim()) {
              addFieldError(textField, 'text', t('tl.required'));
              text.focus();
              ok = false;
            } else if (isEdit && draft.text === e.text) {
              addFieldError(textField, 'text', t('tl.unchanged'));
              text.focus();
              ok = false;
            }
            if (!draft.reason.trim()) {
              addFieldError(reasonField, 'reason', t('tl.required'));
              if (ok) reason.focus();
              ok = false;
            }
            if (!ok) return;
            save.disabled = true;
            try {
              const path = `/api/rooms/${encodeURIComponent(roomId)}/entries/${encodeURIComponent(e.entry_id)}/${isEdit ? 'edit' : 'delete'}`;
              const body = isEdit ? {text: draft.text, reason: draft.reason.trim()} : {reason: draft.reason.trim()};
              const event = await api('POST', path, body);
              ui.editing = null;
              ui.draft = null;
              if (ui.historyOpen) ui.versions = null;
              applyEvents([event]);
              rerender(e);
              if (ui.historyOpen) loadVersions(e);
            } catch (err) {
              save.disabled = false;
              showError(form, err);
            }
          },
        },
      },
      h('h3', null, t(isEdit ? 'tl.edit_title' : 'tl.delete_title')),
      textField,
      reasonField,
      h('div', {class: 'row-end'}, h('button', {class: 'btn', type: 'button', on: {click: () => { ui.editing = null; ui.draft = null; rerender(e); }}}, t('common.cancel')), save),
    );
    setTimeout(() => (isEdit ? text : reason).focus(), 0);
    return form;
  }

  function openEditor(e, kind) {
    e.ui.editing = e.ui.editing === kind ? null : kind;
    e.ui.draft = null;
    rerender(e);
  }

  async function acknowledge(e) {
    e.ui.acking = true;
    rerender(e);
    try {
      const acks = await api('POST', `/api/rooms/${encodeURIComponent(roomId)}/entries/${encodeURIComponent(e.entry_id)}/acks`);
      e.ui.acks = acks || [];
      e.ui.acksOpen = true;
      e.ui.acksError = null;
    } catch (err) {
      e.ui.acksOpen = true;
      e.ui.acksError = message(err) || err.message;
    }
    e.ui.acking = false;
    rerender(e);
  }

  async function toggleAcks(e) {
    e.ui.acksOpen = !e.ui.acksOpen;
    if (!e.ui.acksOpen) {
      e.ui.acks = null;
      e.ui.acksError = null;
      rerender(e);
      return;
    }
    e.ui.acks = null;
    e.ui.acksError = null;
    rerender(e);
    try {
      e.ui.acks = (await api('GET', `/api/rooms/${encodeURIComponent(roomId)}/entries/${encodeURIComponent(e.entry_id)}/acks`)) || [];
    } catch (err) {
      e.ui.acksError = message(err) || err.message;
    }
    rerender(e);
  }

  async function loadVersions(e) {
    try {
      e.ui.versions = (await api('GET', `/api/rooms/${encodeURIComponent(roomId)}/entries/${encodeURIComponent(e.entry_id)}/versions`)) || [];
      e.ui.versionsError = null;
    } catch (err) {
      e.ui.versionsError = message(err) || err.message;
    }
    rerender(e);
  }

  function toggleHistory(e) {
    e.ui.historyOpen = !e.ui.historyOpen;
    e.ui.versions = null;
    e.ui.versionsError = null;
    rerender(e);
    if (e.ui.historyOpen) loadVersions(e);
  }

  // ------------------------------------------------------------------ system lines
  function formLink(formId) {
    for (const path of [`/forms/${formId}`, `/rooms/${roomId}/forms/${formId}`]) {
      if (match(path)) return path;
    }
    return roomPath(roomId, 'forms');
  }

  function systemNode(ev) {
    const s = ev.event || {};
    const name = ev.author.display_name;
    let textValue;
    let link = null;
    switch (s.event) {
      case 'room_created':
      case 'member_joined':
      case 'member_left':
      case 'consent_recorded':
      case 'consent_withdrawn':
      case 'form_answered':
      case 'form_acknowledged':
        textValue = t(`tl.system.${s.event}`, {name});
        break;
      case 'member_revoked': {
        const target = memberNames.get(s.user_id);
        textValue = target ? t('tl.system.member_revoked', {name, target}) : t('tl.system.member_revoked_unknown', {name});
        if (!target) loadMemberNames();
        break;
      }
      case 'form_sent':
        textValue = t('tl.system.form_sent', {name, title: pick(s, 'title')});
        break;
      case 'form_corrected':
        textValue = t('tl.system.form_corrected', {name, version: s.version});
        break;
      case 'sheet_updated':
        textValue = t('tl.system.sheet_updated', {name, version: s.version});
        break;
      default:
        textValue = t('tl.system.unknown', {name});
    }
    if (s.form_id && ['form_sent', 'form_corrected', 'form_answered', 'form_acknowledged'].includes(s.event)) {
      link = h('a', {href: href(formLink(s.event === 'form_answered' && s.answer_form_id ? s.answer_form_id : s.form_id)), 'data-test': 'system-form-link'}, t('tl.system.open_form'));
    }
    if (s.event === 'sheet_updated' && professional) {
      link = h('a', {href: href(roomPath(roomId, 'sheet'))}, t('tl.system.open_sheet'));
    }
    const minor = family && MINOR_SYSTEM_EVENTS.has(s.event);
    return h(
      'li',
      {class: `system-line${minor ? ' system-minor' : ''}`, 'data-test': 'timeline-system', 'data-event': s.event || '', 'data-seq': ev.seq},
      h('span', null, textValue),
      h('time', {class: 'entry-meta', datetime: ev.created_at}, formatDateTime(ev.created_at)),
      link,
    );
  }

  function orphanNode(ev) {
    return h(
      'li',
      {class: 'system-line', 'data-test': 'timeline-system', 'data-event': ev.type, 'data-seq': ev.seq},
      h('span', null, t(ev.type === 'edited' ? 'tl.orphan_edited' : 'tl.orphan_deleted', {reason: ev.reason || ''})),
      h('time', {class: 'entry-meta', datetime: ev.created_at}, formatDateTime(ev.created_at)),
    );
  }

  async function loadMemberNames() {
    if (membersLoaded) return;
    membersLoaded = true;
    try {
      const members = await api('GET', `/api/rooms/${encodeURIComponent(roomId)}/members`);
      for (const m of members || []) memberNames.set(m.user_id, m.display_name);
      for (const key of order) {
        const item = items.get(key);
        if (item.kind === 'system' && item.ev.event?.event === 'member_revoked') replaceItemNode(item, systemNode(item.ev));
      }
    } catch {
      // names stay generic
    }
  }

  // ------------------------------------------------------------------ list maintenance
  function insertItem(key, seq, node, extra) {
    const item = {key, seq, node, ...extra};
    items.set(key, item);
    // Binary search for the position by seq.
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (items.get(order[mid]).seq < seq) lo = mid + 1;
      else hi = mid;
    }
    const nextKey = order[lo];
    order.splice(lo, 0, key);
    if (nextKey) list.insertBefore(node, items.get(nextKey).node);
    else list.appendChild(node);
    return item;
  }

  function removeItem(key) {
    const item = items.get(key);
    if (!item) return;
    item.node.remove();
    items.delete(key);
    const i = order.indexOf(key);
    if (i >= 0) order.splice(i, 1);
  }

  function replaceItemNode(item, node) {
    // Keep the focus where it was (the same button in the new node).
    const active = document.activeElement;
    const focusTest = active && item.node.contains(active) ? active.getAttribute('data-test') : null;
    item.node.replaceWith(node);
    item.node = node;
    if (focusTest) {
      const again = node.querySelector(`[data-test="${focusTest}"]`);
      if (again) again.focus();
    }
  }

  function rerender(e) {
    const item = items.get(`e:${e.entry_id}`);
    if (item) replaceItemNode(item, entryNode(e));
  }

  function applyChange(e, ev) {
    if (ev.type === 'edited') {
      if (ev.version > e.version && !e.deleted) {
        e.version = ev.version;
        e.text = ev.text;
        e.reason = ev.reason;
      }
    } else if (ev.type === 'deleted') {
      e.deleted = true;
      e.deleteReason = ev.reason;
      e.deletedAt = ev.created_at;
      e.deletedBy = ev.author.display_name;
      e.version = Math.max(e.version, ev.version || e.version);
      e.ui.editing = null;
    }
  }

  function removePending(clientId) {
    const node = pendingNodes.get(clientId);
    if (node) {
      node.remove();
      pendingNodes.delete(clientId);
    }
    pendingRecords.delete(clientId);
  }

  function applyEvent(ev) {
    if (!ev || typeof ev.seq !== 'number' || seen.has(ev.seq)) return;
    seen.add(ev.seq);
    minSeq = Math.min(minSeq, ev.seq);
    maxSeq = Math.max(maxSeq, ev.seq);
    if (ev.type === 'posted') {
      const e = {
        entry_id: ev.entry_id,
        seq: ev.seq,
        visibility: ev.visibility,
        author: ev.author,
        created_at: ev.created_at,
        kind: ev.kind,
        text: ev.text,
        client_id: ev.client_id || null,
        attachments: ev.attachments || [],
        version: 1,
        reason: null,
        deleted: false,
        ui: {},
      };
      entries.set(e.entry_id, e);
      for (const change of (laterChanges.get(e.entry_id) || []).sort((a, b) => a.seq - b.seq)) applyChange(e, change);
      laterChanges.delete(e.entry_id);
      removeItem(`o:${e.entry_id}`);
      let clientId = e.client_id;
      if (!clientId) {
        for (const [cid, eid] of entryOfClient) if (eid === e.entry_id) clientId = cid;
      }
      if (clientId) {
        e.client_id = clientId;
        sentClientIds.add(clientId);
        removePending(clientId);
      }
      insertItem(`e:${e.entry_id}`, ev.seq, entryNode(e), {kind: 'entry'});
    } else if (ev.type === 'edited' || ev.type === 'deleted') {
      const e = entries.get(ev.entry_id);
      if (e) {
        applyChange(e, ev);
        rerender(e);
      } else {
        if (!laterChanges.has(ev.entry_id)) laterChanges.set(ev.entry_id, []);
        laterChanges.get(ev.entry_id).push(ev);
        removeItem(`o:${ev.entry_id}`);
        insertItem(`o:${ev.entry_id}`, ev.seq, orphanNode(ev), {kind: 'orphan'});
      }
    } else if (ev.type === 'system') {
      insertItem(`s:${ev.seq}`, ev.seq, systemNode(ev), {kind: 'system', ev});
    }
  }

  function applyEvents(events) {
    for (const ev of [...events].sort((a, b) => a.seq - b.seq)) applyEvent(ev);
    updateEmpty();
  }

  // ------------------------------------------------------------------ loading
  async function fetchPage(after, limit) {
    return api('GET', `/api/rooms/${encodeURIComponent(roomId)}/timeline?after=${after}&limit=${limit}`);
  }

  async function loadOlder() {
    if (!(minSeq > 1) || minSeq === Infinity) return;
    const after = Math.max(0, minSeq - 1 - PAGE);
    const limit = minSeq - 1 - after;
    olderButton.disabled = true;
    olderButton.textContent = t('tl.older_loading');
    clearErrors(olderBox);
    const before = document.documentElement.scrollHeight;
    const y = window.scrollY;
    try {
      const page = await fetchPage(after, limit);
      if (!view.isConnected) return;
      applyEvents(page.events || []);
      window.scrollTo(0, y + (document.documentElement.scrollHeight - before));
    } catch (err) {
      showError(olderBox, err);
    } finally {
      olderButton.disabled = false;
      olderButton.textContent = t('tl.older');
    }
  }

  let fillTimer = null;
  function scheduleGapFill() {
    clearTimeout(fillTimer);
    fillTimer = setTimeout(async () => {
      if (!view.isConnected) return;
      try {
        const page = await fetchPage(maxSeq, 100);
        if (!view.isConnected) return;
        const near = nearBottom();
        applyEvents(page.events || []);
        if (near) scrollToBottom();
        scheduleRead();
      } catch {
        // the live socket brings them later
      }
    }, 2000);
  }

  // Read position.
  let readTimer = null;
  let readSent = 0;
  function scheduleRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(markRead, 1000);
  }
  async function markRead() {
    if (!view.isConnected || document.visibilityState !== 'visible' || removed) return;
    const seq = maxSeq;
    if (seq <= readSent) return;
    try {
      await api('PUT', `/api/rooms/${encodeURIComponent(roomId)}/read`, {seq});
      readSent = seq;
    } catch (err) {
      console.warn('read position', err);
    }
  }

  // ------------------------------------------------------------------ pending posts (outbox)
  function pendingNode(record, status) {
    const urgent = record.kind === 'urgent';
    const failed = record.state === 'failed';
    const me = session.me()?.user;
    const previews = record.files.map((f) => {
      const url = URL.createObjectURL(f.blob);
      objectUrls.add(url);
      return h('span', {class: 'entry-photo'}, h('img', {src: url, alt: t('tl.photo_alt', {name: f.name || ''})}));
    });
    let statusText;
    if (failed) statusText = t('tl.failed', {message: message(record.error) || ''});
    else if (status === 'sending') statusText = t('tl.pending_sending');
    else if (status === 'sent') statusText = t('tl.pending_sent');
    else if (!navigator.onLine) statusText = t('tl.pending_offline');
    else statusText = t('tl.pending_waiting');
    return h(
      'li',
      {
        class: 'timeline-entry',
        'data-test': 'timeline-entry',
        'data-client-id': record.client_id,
        'data-state': failed ? 'failed' : 'pending',
        'data-urgent': urgent ? 'true' : 'false',
        'data-visibility': record.visibility,
      },
      h(
        'div',
        {class: 'entry-head'},
        h('span', {class: 'entry-author'}, me ? me.display_name : t('tl.me')),
        me ? h('span', {class: 'entry-meta'}, roleName(me.role)) : null,
        h('time', {class: 'entry-meta', datetime: record.created_at}, formatDateTime(record.created_at)),
        h(
          'span',
          {class: 'entry-badges'},
          urgent ? h('span', {class: 'badge badge-urgent'}, t('tl.urgent')) : null,
          family ? null : h('span', {class: record.visibility === 'care_team' ? 'badge badge-accent' : 'badge'}, t(`tl.visibility.${record.visibility}`)),
          h('span', {class: failed ? 'badge badge-urgent' : 'badge badge-warning'}, t('tl.pending')),
        ),
      ),
      record.text ? h('p', {class: 'entry-text', 'data-test': 'entry-text'}, record.text) : null,
      previews.length ? h('div', {class: 'entry-attachments'}, previews) : null,
      h('p', {class: failed ? 'field-error' : 'muted small', role: failed ? 'alert' : 'status', 'data-test': failed ? 'entry-failed' : 'entry-pending'}, statusText),
      failed
        ? h(
            'div',
            {class: 'entry-actions'},
            h('button', {class: 'btn btn-small', type: 'button', 'data-test': 'entry-retry', on: {click: () => retryPost(record.client_id)}}, t('tl.retry')),
            h('button', {class: 'btn btn-small btn-danger', type: 'button', 'data-test': 'entry-discard', on: {click: () => discardPost(record.client_id)}}, t('tl.discard')),
          )
        : null,
    );
  }

  function showPending(record, status) {
    if (sentClientIds.has(record.client_id)) return; // its event is on screen already
    pendingRecords.set(record.client_id, record);
    const node = pendingNode(record, status);
    const old = pendingNodes.get(record.client_id);
    if (old) old.replaceWith(node);
    else pendingList.appendChild(node);
    pendingNodes.set(record.client_id, node);
    updateEmpty();
  }

  const offOutbox = onOutboxChange((type, record, extra) => {
    if (record.room_id !== roomId || !view.isConnected) return;
    switch (type) {
      case 'added':
        showPending(record, 'pending');
        scrollToBottom();
        break;
      case 'sending':
      case 'retry':
      case 'failed':
        if (sentClientIds.has(record.client_id)) break;
        showPending(record, type);
        break;
      case 'sent':
        if (extra && extra.entry_id) {
          entryOfClient.set(record.client_id, extra.entry_id);
          if (entries.has(extra.entry_id)) {
            const e = entries.get(extra.entry_id);
            e.client_id = record.client_id;
            sentClientIds.add(record.client_id);
            removePending(record.client_id);
            rerender(e);
            updateEmpty();
            break;
          }
        }
        if (!sentClientIds.has(record.client_id)) {
          showPending(record, 'sent');
          scheduleGapFill();
        }
        break;
      case 'removed':
        removePending(record.client_id);
        updateEmpty();
        break;
      default:
        break;
    }
  });

  // ------------------------------------------------------------------ composer
  function renderComposer() {
    if (!consentOk) {
      mount(
        composerBox,
        h(
          'div',
          {class: 'banner banner-warning stack-sm', 'data-test': 'compose-disabled'},
          h('p', null, t(room.consent === 'withdrawn' ? 'tl.compose_consent_withdrawn' : 'tl.compose_consent_missing')),
          professional ? h('p', null, h('a', {href: href(roomPath(roomId, 'members'))}, t('tl.compose_consent_link'))) : null,
        ),
      );
      return;
    }
    const draftKey = `${myId}:${roomId}`;
    const draft = drafts.get(draftKey) || {text: '', urgent: false, visibility: 'care_team', files: []};
    drafts.set(draftKey, draft);
    let files = draft.files;
    const textarea = h('textarea', {
      rows: '3',
      maxlength: String(MAX_TEXT),
      'data-test': 'compose-text',
      on: {
        input: () => {
          clearErrors(form);
          draft.text = textarea.value;
        },
        keydown: (ev) => {
          // Ctrl+Enter / ⌘+Enter sends (a plain Enter is a new line).
          if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
            ev.preventDefault();
            form.requestSubmit();
          }
        },
      },
    });
    const textField = field({label: t(family ? 'tl.compose_label_family' : 'tl.compose_label'), input: textarea, path: 'text'});
    const urgent = professional
      ? h('input', {type: 'checkbox', 'data-test': 'compose-urgent', id: `urgent-${roomId}`, checked: draft.urgent, on: {change: () => { draft.urgent = urgent.checked; }}})
      : null;
    const visibility = professional
      ? h(
          'select',
          {'data-test': 'compose-visibility', id: `vis-${roomId}`, value: draft.visibility, on: {change: () => { draft.visibility = visibility.value; updateHint(); }}},
          h('option', {value: 'care_team'}, t('tl.visibility.care_team')),
          h('option', {value: 'everyone'}, t('tl.visibility.everyone')),
        )
      : null;
    const hint = h('p', {class: 'field-hint', role: 'status'});
    function updateHint() {
      if (!professional) hint.textContent = t('tl.compose_hint_family');
      else hint.textContent = visibility.value === 'everyone' ? t('tl.compose_hint_everyone') : '';
      hint.hidden = !hint.textContent;
    }
    const photoInput = h('input', {
      type: 'file',
      accept: 'image/*',
      capture: 'environment',
      multiple: true,
      'data-test': 'compose-photo',
      'aria-label': t('tl.compose_photo'),
      on: {
        change: () => {
          clearErrors(form);
          const chosen = [...photoInput.files];
          photoInput.value = '';
          const bad = chosen.filter((f) => f.type && !['image/jpeg', 'image/png'].includes(f.type));
          if (bad.length) {
            showError(form, {message: t('tl.compose_bad_type')});
          }
          const ok = chosen.filter((f) => !bad.includes(f));
          if (files.length + ok.length > MAX_FILES) {
            showError(form, {message: t('tl.compose_too_many')});
          }
          files = files.concat(ok).slice(0, MAX_FILES);
          draft.files = files;
          drawPreviews();
        },
      },
    });
    const photoButton = h('label', {class: 'btn photo-button'}, h('span', {class: 'icon-camera', 'aria-hidden': 'true'}), t('tl.compose_photo'), photoInput);
    const previews = h('div', {class: 'photo-previews'});
    const previewUrls = [];
    function drawPreviews() {
      for (const u of previewUrls.splice(0)) {
        URL.revokeObjectURL(u);
        objectUrls.delete(u);
      }
      mount(
        previews,
        files.map((f, i) => {
          const url = URL.createObjectURL(f);
          previewUrls.push(url);
          objectUrls.add(url);
          return h(
            'div',
            {class: 'photo-preview', 'data-test': 'compose-photo-preview'},
            h('img', {src: url, alt: t('tl.photo_alt', {name: f.name})}),
            h('button', {
              class: 'btn btn-small',
              type: 'button',
              'aria-label': t('tl.compose_remove_photo_label', {name: f.name}),
              on: {click: () => { files.splice(i, 1); draft.files = files; drawPreviews(); }},
            }, t('tl.compose_remove_photo')),
          );
        }),
      );
    }
    const send = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'compose-send'}, t('tl.compose_send'));
    const form = h(
      'form',
      {
        class: 'composer',
        novalidate: true,
        on: {
          submit: async (ev) => {
            ev.preventDefault();
            clearErrors(form);
            const text = textarea.value;
            if (!text.trim() && files.length === 0) {
              addFieldError(textField, 'text', t('tl.compose_empty'));
              textarea.focus();
              return;
            }
            if (text.length > MAX_TEXT) {
              addFieldError(textField, 'text', t('tl.compose_too_long', {n: text.length}));
              textarea.focus();
              return;
            }
            const post = {
              client_id: newClientId(),
              room_id: roomId,
              kind: urgent && urgent.checked ? 'urgent' : 'text',
              visibility: visibility ? visibility.value : 'everyone',
              text: text.trim() ? text : '',
              files: files.slice(),
            };
            send.disabled = true;
            try {
              await addPost(post);
              draft.text = '';
              draft.urgent = false;
              draft.visibility = 'care_team';
              draft.files = [];
              textarea.value = '';
              if (urgent) urgent.checked = false;
              if (visibility) {
                // Back to the narrower audience after every post: nothing reaches the family by habit.
                visibility.value = 'care_team';
                updateHint();
              }
              files = [];
              drawPreviews();
              textarea.focus();
            } catch (err) {
              showError(form, err);
            } finally {
              send.disabled = false;
            }
          },
        },
      },
      textField,
      hint,
      previews,
      h(
        'div',
        {class: 'composer-options'},
        professional ? h('label', {class: 'field-inline urgent-check', for: urgent.id}, urgent, t('tl.compose_urgent')) : null,
        professional ? h('div', {class: 'field'}, h('label', {for: visibility.id}, t('tl.compose_visibility')), visibility) : null,
        photoButton,
        h('span', {class: 'composer-send'}, send),
      ),
    );
    textarea.value = draft.text;
    updateHint();
    drawPreviews();
    mount(composerBox, form);
  }

  // ------------------------------------------------------------------ live
  const offEvent = live.onEvent((rid, ev) => {
    if (rid !== roomId || !view.isConnected) return;
    const near = nearBottom();
    applyEvent(ev);
    updateEmpty();
    if (near) scrollToBottom();
    scheduleRead();
  });
  const offState = live.onState((s) => {
    liveStatus.hidden = s === 'connected' || removed;
  });
  const offFrame = live.onFrame((frame) => {
    if (frame.type === 'error' && frame.room === roomId && frame.code === 'forbidden' && !frame.client_id) {
      removed = true;
      removedBanner.hidden = false;
      liveStatus.hidden = true;
      clear(composerBox);
    }
  });
  const onVisible = () => {
    if (document.visibilityState === 'visible') scheduleRead();
  };
  document.addEventListener('visibilitychange', onVisible);

  onLeave(() => {
    offEvent();
    offState();
    offFrame();
    offOutbox();
    clearTimeout(readTimer);
    clearTimeout(fillTimer);
    document.removeEventListener('visibilitychange', onVisible);
    live.unwatch(roomId);
    for (const u of objectUrls) URL.revokeObjectURL(u);
    objectUrls.clear();
  });

  // ------------------------------------------------------------------ first load
  let first;
  try {
    first = await fetchPage(0, PAGE);
    if (first.head > PAGE && (first.events || []).length) {
      first = await fetchPage(first.head - PAGE, PAGE);
    }
  } catch (err) {
    loadingEl.remove();
    showError(content, err);
    content.appendChild(h('button', {class: 'btn', type: 'button', on: {click: () => renderTimeline(view, roomId)}}, t('common.retry')));
    return;
  }
  if (!view.isConnected) return;
  loadingEl.remove();
  applyEvents(first.events || []);
  renderComposer();
  try {
    for (const record of await listPosts(roomId)) showPending(record, record.state);
  } catch (err) {
    console.warn('outbox', err);
  }
  updateEmpty();
  live.watch(roomId, maxSeq);
  liveStatus.hidden = live.state() === 'connected';
  // The socket may take a moment: do not warn before it had a chance.
  if (!liveStatus.hidden) {
    liveStatus.hidden = true;
    setTimeout(() => {
      if (view.isConnected && !removed) liveStatus.hidden = live.state() === 'connected';
    }, 4000);
  }
  scrollToBottom();
  scheduleRead();
}

export function register() {
  route('/rooms/:roomId', async (view, params) => {
    await renderTimeline(view, params.roomId);
  });
}
