// The room list ('/rooms'): invitations to answer, rooms with unread counts, urgent badges and
// forms waiting, and the form that opens a new patient room (care professionals).
// The list polls (see renderRooms): it never subscribes to rooms over the WebSocket.

import { h, mount, clear } from '../core/dom.js';
import { t, addStrings, todayInJapan } from '../core/i18n.js';
import { api } from '../core/api.js';
import { route, navigate, href, onLeave } from '../core/router.js';
import { showError, clearErrors, field, addFieldError, loading, empty, consentBadge, roomPath } from '../core/shell.js';
import * as session from '../core/session.js';

addStrings({
  ja: {
    'rooms.title': '患者一覧',
    'rooms.title_family': 'つながっている患者',
    'rooms.create': '新しい患者ルーム',
    'rooms.invitations': '招待が届いています',
    'rooms.invited_hint': '参加すると、この患者のケアチームの記録を読み書きできます。',
    'rooms.accept': '参加する',
    'rooms.decline': '辞退する',
    'rooms.accepted': '{name} さんのルームに参加しました。',
    'rooms.declined': '{name} さんのルームへの招待を辞退しました。',
    'rooms.list': '参加中の患者ルーム',
    'rooms.empty_pro': 'まだ参加している患者ルームはありません。「新しい患者ルーム」から作成するか、招待を待ってください。',
    'rooms.empty_family': '参加している患者ルームはまだありません。ケアチームから招待されると、ここに表示されます。',
    'rooms.unread': '未読',
    'rooms.unread_family': '新しい連絡',
    'rooms.urgent': '急変',
    'rooms.forms_waiting': '対応待ちの書式',
    'rooms.unread_label': '未読 {n} 件',
    'rooms.urgent_label': '未読の急変連絡 {n} 件',
    'rooms.forms_label': '対応待ちの書式 {n} 件',
    'rooms.filter': '患者名で絞り込み',
    'rooms.filter_none': '該当する患者ルームはありません。',
    'rooms.inbox_failed': '書式の件数を読み込めませんでした。',
    'rooms.refreshing': '更新中…',
    'create.title': '新しい患者ルームを作成',
    'create.lead': '患者ごとに1つのルームを作ります。作成後、本人またはご家族の同意を記録し、ケアチームのメンバーを招待してください。',
    'create.name': '氏名',
    'create.name_kana': 'フリガナ',
    'create.name_kana_hint': '全角カタカナ（例: ヤマダ タロウ）',
    'create.dob': '生年月日',
    'create.address': '住所',
    'create.insurers': '保険者番号・被保険者番号',
    'create.insurers_hint': '最大10件。半角英数字とハイフン。',
    'create.insurer_kind': '種別',
    'create.insurer_number': '番号',
    'create.kind.medical': '医療保険',
    'create.kind.long_term_care': '介護保険',
    'create.kind.other': 'その他',
    'create.add_insurer': '番号を追加',
    'create.remove_insurer': '削除',
    'create.remove_insurer_label': '{n} 件目の番号を削除',
    'create.submit': 'ルームを作成',
    'create.required': '入力してください。',
    'create.future': '未来の日付は入力できません。',
  },
  en: {
    'rooms.title': 'Patients',
    'rooms.title_family': 'Your patient rooms',
    'rooms.create': 'New patient room',
    'rooms.invitations': 'Invitations',
    'rooms.invited_hint': 'Joining lets you read and write in this patient’s care-team notes.',
    'rooms.accept': 'Join',
    'rooms.decline': 'Decline',
    'rooms.accepted': 'You joined the room of {name}.',
    'rooms.declined': 'You declined the invitation to the room of {name}.',
    'rooms.list': 'Your patient rooms',
    'rooms.empty_pro': 'You are not in any patient room yet. Open one with “New patient room”, or wait for an invitation.',
    'rooms.empty_family': 'You are not in any patient room yet. It appears here once the care team invites you.',
    'rooms.unread': 'Unread',
    'rooms.unread_family': 'New messages',
    'rooms.urgent': 'Urgent',
    'rooms.forms_waiting': 'Forms waiting',
    'rooms.unread_label': '{n} unread',
    'rooms.urgent_label': '{n} unread urgent',
    'rooms.forms_label': '{n} forms waiting for you',
    'rooms.filter': 'Filter by patient name',
    'rooms.filter_none': 'No patient room matches.',
    'rooms.inbox_failed': 'Could not load the form counts.',
    'rooms.refreshing': 'Updating…',
    'create.title': 'Open a new patient room',
    'create.lead': 'One room per patient. Afterwards, record the consent of the patient or family and invite the care team.',
    'create.name': 'Full name',
    'create.name_kana': 'Name in katakana (フリガナ)',
    'create.name_kana_hint': 'Full-width katakana, e.g. ヤマダ タロウ',
    'create.dob': 'Date of birth',
    'create.address': 'Address',
    'create.insurers': 'Insurance numbers',
    'create.insurers_hint': 'Up to 10. Letters, digits and hyphens.',
    'create.insurer_kind': 'Kind',
    'create.insurer_number': 'Number',
    'create.kind.medical': 'Medical insurance',
    'create.kind.long_term_care': 'Long-term care insurance',
    'create.kind.other': 'Other',
    'create.add_insurer': 'Add a number',
    'create.remove_insurer': 'Remove',
    'create.remove_insurer_label': 'Remove number {n}',
    'create.submit': 'Open the room',
    'create.required': 'Please fill this in.',
    'create.future': 'The date cannot be in the future.',
  },
});

const MAX_INSURERS = 10;
const POLL_MS = 30000; // room list refresh while visible
const MIN_REFRESH_MS = 5000; // focus/visibility refreshes closer than this are skipped

function countEl(kind, n, test) {
  const labelKey = {unread: 'rooms.unread_label', urgent: 'rooms.urgent_label', forms: 'rooms.forms_label'}[kind];
  const family = session.isFamily();
  const textKey = {unread: family ? 'rooms.unread_family' : 'rooms.unread', urgent: 'rooms.urgent', forms: 'rooms.forms_waiting'}[kind];
  // Read as it shows ("未読 3"): the word and the number are both text of the link.
  return h(
    'span',
    {class: `count count-${kind}${n > 0 ? ' is-active' : ''}`, title: t(labelKey, {n})},
    h('span', null, t(textKey)),
    h('span', {class: 'count-num', 'data-test': test}, String(n)),
  );
}

function roomItem(room, formsWaiting) {
  const urgent = room.urgent_unread || 0;
  return h(
    'li',
    null,
    h(
      'a',
      {
        class: `room-item${urgent > 0 ? ' has-urgent' : ''}`,
        href: href(roomPath(room.id)),
        'data-test': 'room-item',
        'data-room-id': room.id,
        'data-state': room.my_state,
      },
      h(
        'span',
        {class: 'room-main'},
        h('span', {class: 'room-name', 'data-test': 'room-name'}, room.patient_name),
        h('span', {class: 'row'}, consentBadge(room.consent)),
      ),
      h(
        'span',
        {class: 'room-counts'},
        urgent > 0 ? countEl('urgent', urgent, 'room-urgent') : null,
        // The family look leaves out a zero: only news is shown.
        session.isFamily() && !room.unread ? null : countEl('unread', room.unread || 0, 'room-unread'),
        formsWaiting > 0 ? countEl('forms', formsWaiting, 'room-forms-waiting') : null,
      ),
    ),
  );
}

async function renderRooms(view) {
  const professional = session.isProfessional();
  const family = session.isFamily();
  const status = h('div', {class: 'stack-sm', role: 'status', 'aria-live': 'polite'});
  const listBox = h('div', {class: 'stack'});
  const createBox = h('div');
  let filterText = '';
  let lastData = null;

  const header = h(
    'div',
    {class: 'page-header'},
    h('h1', null, t(family ? 'rooms.title_family' : 'rooms.title')),
    professional
      ? h('button', {
          class: 'btn btn-primary',
          type: 'button',
          'data-test': 'room-create',
          'aria-expanded': 'false',
          on: {
            click: (ev) => {
              const open = !createBox.firstChild;
              ev.currentTarget.setAttribute('aria-expanded', open ? 'true' : 'false');
              if (open) renderCreateForm(createBox, () => {
                clear(createBox);
                ev.target.setAttribute('aria-expanded', 'false');
              });
              else clear(createBox);
            },
          },
        }, '+ ', t('rooms.create'))
      : null,
  );
  mount(view, header, status, createBox, listBox);
  mount(listBox, loading());

  async function load() {
    const [roomsResult, inboxResult] = await Promise.allSettled([
      api('GET', '/api/rooms'),
      api('GET', '/api/forms/inbox'),
    ]);
    if (roomsResult.status === 'rejected') throw roomsResult.reason;
    const waiting = new Map();
    let inboxFailed = false;
    if (inboxResult.status === 'fulfilled') {
      for (const form of inboxResult.value?.forms || []) {
        waiting.set(form.room_id, (waiting.get(form.room_id) || 0) + 1);
      }
    } else {
      inboxFailed = true;
    }
    return {rooms: roomsResult.value || [], waiting, inboxFailed};
  }

  // A redraw (typing in the filter, a background refresh) keeps the keyboard focus where it was.
  function focusSpot() {
    const active = document.activeElement;
    if (!active || !listBox.contains(active)) return null;
    if (active.id === 'rooms-filter') return {filter: true, start: active.selectionStart, end: active.selectionEnd};
    const item = active.closest('[data-room-id]');
    return item ? {room: item.getAttribute('data-room-id'), test: active.getAttribute('data-test')} : null;
  }
  function restoreFocus(spot) {
    if (!spot) return;
    if (spot.filter) {
      const input = listBox.querySelector('#rooms-filter');
      if (input) {
        input.focus();
        input.setSelectionRange(spot.start, spot.end);
      }
      return;
    }
    const item = listBox.querySelector(`[data-room-id="${CSS.escape(spot.room)}"]`);
    if (!item) return;
    const inner = spot.test && item.getAttribute('data-test') !== spot.test ? item.querySelector(`[data-test="${CSS.escape(spot.test)}"]`) : null;
    (inner || item).focus();
  }

  function draw(data) {
    lastData = data;
    const spot = focusSpot();
    const invited = data.rooms.filter((r) => r.my_state === 'invited');
    const accepted = data.rooms.filter((r) => r.my_state === 'accepted');
    // Urgent first, then unread, otherwise the server's order (newest first).
    const rank = (r) => (r.urgent_unread > 0 ? 0 : r.unread > 0 ? 1 : 2);
    const ordered = accepted.map((r, i) => [r, i]).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([r]) => r);
    const needle = filterText.trim().toLowerCase();
    const shown = needle ? ordered.filter((r) => r.patient_name.toLowerCase().includes(needle)) : ordered;
    const filter =
      accepted.length > 5
        ? h('div', {class: 'field narrow-filter'},
            h('label', {for: 'rooms-filter'}, t('rooms.filter')),
            h('input', {
              id: 'rooms-filter',
              type: 'search',
              value: filterText,
              autocomplete: 'off',
              'data-test': 'room-filter',
              on: {
                input: (ev) => {
                  filterText = ev.target.value;
                  draw(lastData);
                },
              },
            }))
        : null;
    mount(
      listBox,
      invited.length
        ? h(
            'section',
            {class: 'stack-sm', 'aria-labelledby': 'rooms-invited-h'},
            h('h2', {id: 'rooms-invited-h'}, t('rooms.invitations')),
            h('p', {class: 'muted'}, t('rooms.invited_hint')),
            h('ul', {class: 'room-list'}, invited.map((room) => h('li', null, inviteItem(room)))),
          )
        : null,
      h(
        'section',
        {class: 'stack-sm', 'aria-labelledby': 'rooms-list-h'},
        invited.length ? h('h2', {id: 'rooms-list-h'}, t('rooms.list')) : h('h2', {id: 'rooms-list-h', class: 'sr-only'}, t('rooms.list')),
        data.inboxFailed ? h('p', {class: 'banner banner-warning'}, t('rooms.inbox_failed')) : null,
        filter,
        accepted.length === 0
          ? empty(t(professional ? 'rooms.empty_pro' : 'rooms.empty_family'))
          : shown.length === 0
            ? empty(t('rooms.filter_none'))
            : h('ul', {class: 'room-list'}, shown.map((room) => roomItem(room, data.waiting.get(room.id) || 0))),
      ),
    );
    restoreFocus(spot);
  }

  function inviteItem(room) {
    const accept = h('button', {class: 'btn btn-primary', type: 'button', 'data-test': 'room-accept', on: {click: () => answer(true)}}, t('rooms.accept'));
    const decline = h('button', {class: 'btn', type: 'button', 'data-test': 'room-decline', on: {click: () => answer(false)}}, t('rooms.decline'));
    const item = h(
      'div',
      {class: 'invite-item', 'data-test': 'room-item', 'data-room-id': room.id, 'data-state': 'invited'},
      h('span', {class: 'room-name', 'data-test': 'room-name'}, room.patient_name),
      accept,
      decline,
    );
    async function answer(yes) {
      clearErrors(item);
      accept.disabled = true;
      decline.disabled = true;
      answering += 1; // no background redraw while the answer is on its way
      try {
        await api('PUT', `/api/rooms/${encodeURIComponent(room.id)}/membership`, {accept: yes});
      } catch (err) {
        answering -= 1;
        accept.disabled = false;
        decline.disabled = false;
        showError(item, err);
        return;
      }
      answering -= 1;
      mount(status, h('p', {class: 'banner banner-ok'}, t(yes ? 'rooms.accepted' : 'rooms.declined', {name: room.patient_name})));
      await refresh();
    }
    return item;
  }

  // Counts are polled, not pushed: a WebSocket subscription is a read of the room's timeline
  // (one `timeline.read` audit record each), so the list never subscribes. It asks
  // GET /api/rooms (one `room.list` record) and GET /api/forms/inbox on opening, every 30 s
  // while the page is visible, when the device comes back online and when the window gets the
  // focus back. Only the timeline screen subscribes, to the one room it shows.
  let refreshTimer = null;
  let answering = 0;
  let refreshing = false;
  let refreshAgain = false;
  let lastLoad = 0;
  async function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    lastLoad = Date.now();
    try {
      const data = await load();
      if (!view.isConnected) return;
      clearErrors(listBox);
      draw(data);
    } catch (err) {
      if (view.isConnected) showError(listBox, err);
    } finally {
      refreshing = false;
      if (refreshAgain && view.isConnected) {
        refreshAgain = false;
        refresh();
      }
    }
  }
  /** A refresh soon (focus, visibility and 'online' often come together: one request). */
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      if (!view.isConnected || document.visibilityState !== 'visible' || answering) return;
      // Back from a short glance elsewhere: the list is still fresh.
      if (Date.now() - lastLoad < MIN_REFRESH_MS) return;
      refresh();
    }, 400);
  }
  const poll = setInterval(() => {
    if (document.visibilityState === 'visible' && navigator.onLine && !answering) refresh();
  }, POLL_MS);
  const onVisible = () => {
    if (document.visibilityState === 'visible') scheduleRefresh();
  };
  const onOnline = () => {
    lastLoad = 0; // whatever came while offline is news
    scheduleRefresh();
  };
  document.addEventListener('visibilitychange', onVisible);
  window.addEventListener('focus', scheduleRefresh);
  window.addEventListener('online', onOnline);
  onLeave(() => {
    clearInterval(poll);
    clearTimeout(refreshTimer);
    document.removeEventListener('visibilitychange', onVisible);
    window.removeEventListener('focus', scheduleRefresh);
    window.removeEventListener('online', onOnline);
  });

  let data;
  lastLoad = Date.now();
  try {
    data = await load();
  } catch (err) {
    clear(listBox);
    showError(listBox, err);
    listBox.appendChild(h('button', {class: 'btn', type: 'button', on: {click: () => refresh()}}, t('common.retry')));
    return;
  }
  draw(data);
}

// ---------------------------------------------------------------------------------------------
// Room creation

function renderCreateForm(container, close) {
  const today = todayInJapan();
  const name = h('input', {type: 'text', autocomplete: 'off', maxlength: '100', 'data-test': 'create-name'});
  const kana = h('input', {type: 'text', autocomplete: 'off', maxlength: '100', 'data-test': 'create-kana'});
  const dob = h('input', {type: 'date', max: today, min: '1880-01-01', 'data-test': 'create-dob'});
  const address = h('input', {type: 'text', autocomplete: 'off', maxlength: '300', 'data-test': 'create-address'});
  const nameField = field({label: t('create.name'), input: name, path: 'patient.name', required: true});
  const kanaField = field({label: t('create.name_kana'), input: kana, path: 'patient.name_kana', hint: t('create.name_kana_hint'), required: true});
  const dobField = field({label: t('create.dob'), input: dob, path: 'patient.date_of_birth', required: true});
  const addressField = field({label: t('create.address'), input: address, path: 'patient.address'});
  const insurers = []; // [{kind, number}]
  const insurerBox = h('div', {class: 'stack-sm'});
  const addButton = h('button', {class: 'btn btn-small', type: 'button', 'data-test': 'create-add-insurer', on: {click: () => {
    syncInsurers();
    insurers.push({kind: 'long_term_care', number: ''});
    drawInsurers();
    const inputs = insurerBox.querySelectorAll('input');
    if (inputs.length) inputs[inputs.length - 1].focus();
  }}}, '+ ', t('create.add_insurer'));

  function syncInsurers() {
    insurerBox.querySelectorAll('.insurer-row').forEach((row, i) => {
      insurers[i].kind = row.querySelector('select').value;
      insurers[i].number = row.querySelector('input').value;
    });
  }

  function drawInsurers() {
    mount(
      insurerBox,
      insurers.map((ins, i) => {
        const kind = h(
          'select',
          {value: ins.kind, 'data-test': 'create-insurer-kind'},
          ['medical', 'long_term_care', 'other'].map((k) => h('option', {value: k}, t(`create.kind.${k}`))),
        );
        const number = h('input', {type: 'text', value: ins.number, autocomplete: 'off', inputmode: 'text', maxlength: '40', 'data-test': 'create-insurer-number'});
        return h(
          'div',
          {class: 'insurer-row'},
          field({label: t('create.insurer_kind'), input: kind, path: `patient.insurer_numbers[${i}].kind`}),
          field({label: t('create.insurer_number'), input: number, path: `patient.insurer_numbers[${i}].number`}),
          h('button', {
            class: 'btn btn-small',
            type: 'button',
            'aria-label': t('create.remove_insurer_label', {n: i + 1}),
            on: {click: () => {
              syncInsurers();
              insurers.splice(i, 1);
              drawInsurers();
              addButton.focus();
            }},
          }, t('create.remove_insurer')),
        );
      }),
    );
    addButton.hidden = insurers.length >= MAX_INSURERS;
  }

  const submit = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'create-submit'}, t('create.submit'));
  const card = h(
    'section',
    {class: 'card stack', 'aria-labelledby': 'create-h'},
    h('h2', {id: 'create-h'}, t('create.title')),
    h('p', {class: 'muted'}, t('create.lead')),
    h(
      'form',
      {
        class: 'stack',
        novalidate: true,
        on: {
          submit: async (ev) => {
            ev.preventDefault();
            syncInsurers();
            clearErrors(card);
            let ok = true;
            for (const [wrapper, input, path] of [[nameField, name, 'patient.name'], [kanaField, kana, 'patient.name_kana'], [dobField, dob, 'patient.date_of_birth']]) {
              if (!input.value.trim()) {
                addFieldError(wrapper, path, t('create.required'));
                if (ok) input.focus();
                ok = false;
              }
            }
            if (dob.value && dob.value > today) {
              addFieldError(dobField, 'patient.date_of_birth', t('create.future'));
              if (ok) dob.focus();
              ok = false;
            }
            if (!ok) return;
            const patient = {
              name: name.value.trim(),
              name_kana: kana.value.trim(),
              date_of_birth: dob.value,
              insurer_numbers: insurers.filter((x) => x.number.trim()).map((x) => ({kind: x.kind, number: x.number.trim()})),
            };
            if (address.value.trim()) patient.address = address.value.trim();
            submit.disabled = true;
            try {
              const room = await api('POST', '/api/rooms', {patient});
              navigate(roomPath(room.id));
            } catch (err) {
              submit.disabled = false;
              showError(card, err);
            }
          },
        },
      },
      h('div', {class: 'grid-2'}, nameField, kanaField),
      h('div', {class: 'grid-2'}, dobField, addressField),
      h(
        'fieldset',
        {class: 'stack-sm'},
        h('legend', null, t('create.insurers')),
        h('p', {class: 'field-hint'}, t('create.insurers_hint')),
        insurerBox,
        h('div', null, addButton),
      ),
      h('div', {class: 'row-end'}, h('button', {class: 'btn', type: 'button', on: {click: close}}, t('common.cancel')), submit),
    ),
  );
  mount(container, card);
  drawInsurers();
  name.focus();
}

export function register() {
  route('/rooms', async (view) => {
    if (!session.isProfessional() && !session.isFamily()) {
      navigate('/', {replace: true});
      return;
    }
    await renderRooms(view);
  });
}
