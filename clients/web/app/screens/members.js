// The room's care team and consent records: '/rooms/:roomId/members' (room tab 'members').
//
// - Members (GET /api/rooms/{id}/members): name, role, organisation, state, who invited.
//   Professionals invite through the directory (GET /api/directory?q=) and revoke members or
//   invitations; every accepted member may leave.
// - Consent records (GET/POST /api/rooms/{id}/consents, POST …/withdraw): professionals record
//   a consent while none is in force; every accepted member, family and patient included, may
//   withdraw the one in force.
//
// The form helpers it shares with audit.js and admin.js (makeForm(), confirmDialog(), …) live
// in core/ui.js.

import { h, clear, mount, uid } from '../core/dom.js';
import { t, addStrings, formatDateTime, formatDate, roleName, todayInJapan } from '../core/i18n.js';
import { api } from '../core/api.js';
import { route, navigate } from '../core/router.js';
import { userId, isProfessional } from '../core/session.js';
import { roomShell, showError, loading } from '../core/shell.js';
import { makeForm, confirmDialog, busy, errorBlock, flashNode, isDate } from '../core/ui.js';

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

const STRINGS = {
  ja: {
    'members.title': 'ケアチーム',
    'members.loading_failed': 'メンバーを読み込めませんでした。',
    'members.active': '参加中のメンバー（{count}人）',
    'members.invited': '招待中（{count}人）',
    'members.past': '過去のメンバー・招待（{count}件）',
    'members.none_invited': '返事を待っている招待はありません。',
    'members.state.invited': '招待中',
    'members.state.accepted': '参加中',
    'members.state.declined': '辞退',
    'members.state.revoked': '取り消し',
    'members.state.left': '退出',
    'members.you': 'あなた',
    'members.no_org': '所属なし',
    'members.creator': '部屋の作成者',
    'members.invited_by': '{name}さんが招待（{at}）',
    'members.invited_at': '招待日時 {at}',
    'members.responded_at': '返事 {at}',
    'members.revoke': '外す',
    'members.revoke_invitation': '招待を取り消す',
    'members.revoke_title': '{name}さんを部屋から外しますか？',
    'members.revoke_body': '{name}さんはこの部屋の記録を見られなくなります。必要になれば、あとで招待し直せます。',
    'members.revoke_invite_title': '{name}さんへの招待を取り消しますか？',
    'members.revoke_invite_body': '{name}さんはこの招待を承諾できなくなります。必要になれば、あとで招待し直せます。',
    'members.revoke_confirm': '外す',
    'members.revoke_invite_confirm': '招待を取り消す',
    'members.revoked': '{name}さんを外しました。',
    'members.invite_revoked': '{name}さんへの招待を取り消しました。',
    'members.leave': 'この部屋から退出する',
    'members.leave_title': 'この部屋から退出しますか？',
    'members.leave_body': '退出すると、この患者さんの記録を見られなくなります。戻るには、ほかのメンバーから招待し直してもらう必要があります。',
    'members.leave_confirm': '退出する',
    'members.invite_title': 'メンバーを招待',
    'members.invite_help': '医療・介護の関係者、ご家族、ご本人を、名前またはログイン名で検索して招待します。',
    'members.invite_search': '名前またはログイン名',
    'members.invite_searching': '検索中…',
    'members.invite_none': '「{q}」に一致する人はいません。',
    'members.invite_many': '最初の20件を表示しています。名前をもう少し詳しく入力してください。',
    'members.invite_pick': '招待する人を検索して選んでください。',
    'members.invite_selected': '招待する人: {name}',
    'members.invite_submit': '招待する',
    'members.invite_submit_name': '{name}さんを招待する',
    'members.invite_already_accepted': '参加中',
    'members.invite_already_invited': '招待中',
    'members.invited_ok': '{name}さんを招待しました。相手が承諾すると参加中になります。',
    'members.results': '検索結果',

    'consents.title': '情報共有の同意',
    'consents.none': '同意の記録はまだありません。同意が記録されるまで、この部屋には記録を投稿できません。',
    'consents.state.in_force': '有効',
    'consents.state.withdrawn': '撤回済み',
    'consents.given_by.patient': '本人',
    'consents.given_by.family': '家族',
    'consents.given_by.legal_representative': '法定代理人・成年後見人',
    'consents.giver_line': '{name}（{relation}）の同意',
    'consents.obtained_on': '同意を得た日',
    'consents.scope': '同意の範囲',
    'consents.document': '同意書の保管場所',
    'consents.recorded': '記録',
    'consents.recorded_by': '{name}（{at}）',
    'consents.withdrawn': '撤回',
    'consents.withdrawal_reason': '撤回の理由',
    'consents.withdraw': '同意を撤回する',
    'consents.withdraw_title': '同意を撤回しますか？',
    'consents.withdraw_warning': '撤回すると、新しい同意が記録されるまで、この部屋には記録を投稿できなくなります。撤回は取り消せません。',
    'consents.withdraw_reason': '撤回の理由',
    'consents.withdraw_submit': '撤回する',
    'consents.withdrawn_ok': '同意を撤回しました。',
    'consents.record_title': '同意を記録する',
    'consents.record_help': '本人またはご家族から得た情報共有の同意（同意書など）を記録します。',
    'consents.in_force_note': '現在、同意は有効です。新しい同意を記録するには、先に現在の同意を撤回してください。',
    'consents.family_note': '同意の記録は、ケアチームの専門職が行います。',
    'consents.given_by': '同意した人の続柄',
    'consents.giver_name': '同意した人の氏名',
    'consents.obtained_on_hint': '2000年以降、今日まで',
    'consents.scope_default': '医療・介護関係者間での情報共有',
    'consents.document_hint': '例: 事業所のファイル、電子カルテ内の書類名',
    'consents.record_submit': '同意を記録する',
    'consents.recorded_ok': '同意を記録しました。',
  },
  en: {
    'members.title': 'Care team',
    'members.loading_failed': 'The members could not be loaded.',
    'members.active': 'Members ({count})',
    'members.invited': 'Invited ({count})',
    'members.past': 'Former members and invitations ({count})',
    'members.none_invited': 'No invitation is waiting for an answer.',
    'members.state.invited': 'Invited',
    'members.state.accepted': 'Member',
    'members.state.declined': 'Declined',
    'members.state.revoked': 'Revoked',
    'members.state.left': 'Left',
    'members.you': 'You',
    'members.no_org': 'No organisation',
    'members.creator': 'Opened the room',
    'members.invited_by': 'Invited by {name} ({at})',
    'members.invited_at': 'Invited {at}',
    'members.responded_at': 'Answered {at}',
    'members.revoke': 'Remove',
    'members.revoke_invitation': 'Cancel invitation',
    'members.revoke_title': 'Remove {name} from the room?',
    'members.revoke_body': '{name} will no longer see this room. You can invite them again later if needed.',
    'members.revoke_invite_title': 'Cancel the invitation of {name}?',
    'members.revoke_invite_body': '{name} can no longer accept this invitation. You can invite them again later if needed.',
    'members.revoke_confirm': 'Remove',
    'members.revoke_invite_confirm': 'Cancel invitation',
    'members.revoked': '{name} was removed.',
    'members.invite_revoked': 'The invitation of {name} was cancelled.',
    'members.leave': 'Leave this room',
    'members.leave_title': 'Leave this room?',
    'members.leave_body': 'You will no longer see this patient\'s records. To come back, another member must invite you again.',
    'members.leave_confirm': 'Leave',
    'members.invite_title': 'Invite a member',
    'members.invite_help': 'Find care professionals, family members or the patient by name or login name.',
    'members.invite_search': 'Name or login name',
    'members.invite_searching': 'Searching…',
    'members.invite_none': 'Nobody matches "{q}".',
    'members.invite_many': 'Showing the first 20; type more of the name to narrow the search.',
    'members.invite_pick': 'Search for the person to invite and choose them.',
    'members.invite_selected': 'Inviting: {name}',
    'members.invite_submit': 'Invite',
    'members.invite_submit_name': 'Invite {name}',
    'members.invite_already_accepted': 'Member',
    'members.invite_already_invited': 'Invited',
    'members.invited_ok': '{name} was invited. They become a member once they accept.',
    'members.results': 'Search results',

    'consents.title': 'Consent to sharing',
    'consents.none': 'No consent has been recorded yet. Nothing can be posted in this room until one is.',
    'consents.state.in_force': 'In force',
    'consents.state.withdrawn': 'Withdrawn',
    'consents.given_by.patient': 'Patient',
    'consents.given_by.family': 'Family',
    'consents.given_by.legal_representative': 'Legal representative / guardian',
    'consents.giver_line': 'Consent of {name} ({relation})',
    'consents.obtained_on': 'Obtained on',
    'consents.scope': 'Scope',
    'consents.document': 'Signed form kept at',
    'consents.recorded': 'Recorded',
    'consents.recorded_by': '{name} ({at})',
    'consents.withdrawn': 'Withdrawn',
    'consents.withdrawal_reason': 'Reason for withdrawal',
    'consents.withdraw': 'Withdraw consent',
    'consents.withdraw_title': 'Withdraw the consent?',
    'consents.withdraw_warning': 'Once withdrawn, nothing can be posted in this room until a new consent is recorded. A withdrawal cannot be undone.',
    'consents.withdraw_reason': 'Reason for withdrawal',
    'consents.withdraw_submit': 'Withdraw',
    'consents.withdrawn_ok': 'The consent was withdrawn.',
    'consents.record_title': 'Record a consent',
    'consents.record_help': 'Record the consent to sharing obtained from the patient or the family (e.g. a signed form).',
    'consents.in_force_note': 'A consent is in force. To record a new one, first withdraw the current one.',
    'consents.family_note': 'Consents are recorded by the care professionals of the team.',
    'consents.given_by': 'Relationship of the person consenting',
    'consents.giver_name': 'Name of the person consenting',
    'consents.obtained_on_hint': 'From 2000 up to today',
    'consents.scope_default': 'Sharing of information among the medical and care professionals',
    'consents.document_hint': 'e.g. the office file, or the document name in the medical record',
    'consents.record_submit': 'Record the consent',
    'consents.recorded_ok': 'The consent was recorded.',
  },
};

// ---------------------------------------------------------------------------------------------
// The screen
// ---------------------------------------------------------------------------------------------

const PROFESSIONAL_ROLES = new Set([
  'physician',
  'dentist',
  'pharmacist',
  'nurse',
  'therapist',
  'dietitian',
  'dental_hygienist',
  'care_manager',
  'care_worker',
  'municipal_staff',
]);

const CONSENT_GIVERS = ['patient', 'family', 'legal_representative'];

// A notice carried over a full re-render of the tab (after a consent change, so that the room
// header shows the new consent state too).
let carriedNotice = null;

function roomApi(roomId, rest = '') {
  return `/api/rooms/${encodeURIComponent(roomId)}${rest}`;
}

/** The consent in force: the latest record (by recorded_at) when it is not withdrawn. */
function consentInForce(consents) {
  if (!consents.length) return null;
  const latest = consents.reduce((a, b) => (a.recorded_at >= b.recorded_at ? a : b));
  return latest.withdrawn_at ? null : latest;
}

async function screen(view, params) {
  const roomId = params.roomId;
  const {content} = await roomShell(view, roomId, 'members');
  const myId = userId();
  const professional = isProfessional();

  const state = {members: [], consents: []};
  const root = h('div', {class: 'members-screen console'});
  mount(content, root);
  mount(root, loading());

  const nameOf = (id) => {
    const m = state.members.find((x) => x.user_id === id);
    return m ? m.display_name : t('console.unknown_user');
  };

  /** Loads members and consents and draws them, with `notice` on top. */
  async function load(notice) {
    let members;
    let consents;
    try {
      [members, consents] = await Promise.all([
        api('GET', roomApi(roomId, '/members')),
        api('GET', roomApi(roomId, '/consents')),
      ]);
    } catch (err) {
      if (!root.isConnected) return;
      mount(root, errorBlock(err, () => {
        mount(root, loading());
        load();
      }));
      return;
    }
    state.members = members || [];
    state.consents = consents || [];
    mount(root, flashNode(notice), membersSection(), consentsSection());
  }

  /** After a consent change: draw the whole tab again (the room header shows consent). */
  function rerender(notice) {
    carriedNotice = notice;
    navigate(`/rooms/${roomId}/members`);
  }

  /** An error of an action on the list: a banner at the top of the screen. */
  function actionError(err) {
    showError(root, err);
    root.scrollIntoView({block: 'start'});
  }

  // --- members --------------------------------------------------------------------------

  function membersSection() {
    const members = state.members;
    const order = (a, b) =>
      Number(PROFESSIONAL_ROLES.has(b.role)) - Number(PROFESSIONAL_ROLES.has(a.role)) ||
      a.display_name.localeCompare(b.display_name, 'ja');
    const active = members.filter((m) => m.state === 'accepted').sort(order);
    const invited = members.filter((m) => m.state === 'invited');
    const past = members.filter((m) => m.state !== 'accepted' && m.state !== 'invited');
    const mine = members.find((m) => m.user_id === myId && m.state === 'accepted');

    return h(
      'section',
      {class: 'console-section', 'aria-labelledby': 'members-title'},
      h('h2', {id: 'members-title', class: 'section-title'}, t('members.title')),
      h('h3', {class: 'subsection-title'}, t('members.active', {count: active.length})),
      h('ul', {class: 'member-list', 'data-test': 'member-list'}, active.map(memberItem)),
      invited.length
        ? [
            h('h3', {class: 'subsection-title'}, t('members.invited', {count: invited.length})),
            h('ul', {class: 'member-list'}, invited.map(memberItem)),
          ]
        : null,
      professional ? inviteBox() : null,
      past.length
        ? h(
            'details',
            {class: 'console-details'},
            h('summary', null, t('members.past', {count: past.length})),
            h('ul', {class: 'member-list member-list-past'}, past.map(memberItem)),
          )
        : null,
      mine
        ? h(
            'div',
            {class: 'member-leave'},
            h(
              'button',
              {class: 'btn btn-danger-outline', type: 'button', 'data-test': 'member-leave', on: {click: (ev) => leave(ev.currentTarget)}},
              t('members.leave'),
            ),
          )
        : null,
    );
  }

  function memberItem(m) {
    const isMe = m.user_id === myId;
    const inviter = m.invited_by
      ? t('members.invited_by', {name: nameOf(m.invited_by), at: formatDateTime(m.invited_at)})
      : t('members.creator');
    const answered = m.responded_at && m.invited_by ? t('members.responded_at', {at: formatDateTime(m.responded_at)}) : null;
    const canRevoke = professional && !isMe && (m.state === 'invited' || m.state === 'accepted');
    return h(
      'li',
      {class: `member-item member-${m.state}`, 'data-test': 'member-item', 'data-user-id': m.user_id, 'data-state': m.state},
      h(
        'div',
        {class: 'member-main'},
        h(
          'p',
          {class: 'member-name'},
          h('span', {'data-test': 'member-name'}, m.display_name),
          isMe ? h('span', {class: 'badge badge-self'}, t('members.you')) : null,
        ),
        h(
          'p',
          {class: 'member-meta'},
          h('span', {class: 'member-role', 'data-test': 'member-role'}, roleName(m.role)),
          h('span', {class: 'member-org'}, m.organisation_name || t('members.no_org')),
        ),
        h('p', {class: 'member-invited'}, inviter, answered ? ` · ${answered}` : null),
      ),
      h(
        'div',
        {class: 'member-side'},
        h('span', {class: `badge badge-member-${m.state}`, 'data-test': 'member-state'}, t(`members.state.${m.state}`)),
        canRevoke
          ? h(
              'button',
              {class: 'btn btn-danger-outline', type: 'button', 'data-test': 'member-revoke', on: {click: (ev) => revoke(m, ev.currentTarget)}},
              m.state === 'invited' ? t('members.revoke_invitation') : t('members.revoke'),
            )
          : null,
      ),
    );
  }

  async function revoke(m, button) {
    const invitation = m.state === 'invited';
    const ok = await confirmDialog({
      title: t(invitation ? 'members.revoke_invite_title' : 'members.revoke_title', {name: m.display_name}),
      body: t(invitation ? 'members.revoke_invite_body' : 'members.revoke_body', {name: m.display_name}),
      confirmLabel: t(invitation ? 'members.revoke_invite_confirm' : 'members.revoke_confirm'),
    });
    if (!ok) return;
    try {
      await busy(button, () => api('DELETE', roomApi(roomId, `/members/${encodeURIComponent(m.user_id)}`)));
    } catch (err) {
      actionError(err);
      return;
    }
    await load(t(invitation ? 'members.invite_revoked' : 'members.revoked', {name: m.display_name}));
  }

  async function leave(button) {
    const ok = await confirmDialog({
      title: t('members.leave_title'),
      body: t('members.leave_body'),
      confirmLabel: t('members.leave_confirm'),
    });
    if (!ok) return;
    try {
      await busy(button, () => api('DELETE', roomApi(roomId, '/membership')));
    } catch (err) {
      actionError(err);
      return;
    }
    navigate('/rooms');
  }

  // --- invitation -----------------------------------------------------------------------

  function inviteBox() {
    const f = makeForm();
    const search = h('input', {
      type: 'search',
      class: 'input',
      autocomplete: 'off',
      maxlength: '100',
      enterkeyhint: 'search',
      'data-test': 'member-invite-search',
    });
    const status = h('p', {class: 'invite-status', role: 'status', 'aria-live': 'polite'});
    const results = h('ul', {class: 'invite-results', 'aria-label': t('members.results')});
    const submit = h(
      'button',
      {class: 'btn btn-primary', type: 'submit', 'data-test': 'member-invite-submit', disabled: true},
      t('members.invite_submit'),
    );
    const chosenNote = h('p', {class: 'invite-chosen', 'aria-live': 'polite'}, t('members.invite_pick'));
    let chosen = null;
    let seq = 0;
    let timer = null;
    const standing = new Map(
      state.members.filter((m) => m.state === 'accepted' || m.state === 'invited').map((m) => [m.user_id, m.state]),
    );

    function choose(entry, button) {
      chosen = entry;
      for (const b of results.querySelectorAll('button')) b.setAttribute('aria-pressed', 'false');
      if (button) button.setAttribute('aria-pressed', 'true');
      submit.disabled = !entry;
      submit.textContent = entry ? t('members.invite_submit_name', {name: entry.display_name}) : t('members.invite_submit');
      chosenNote.textContent = entry ? t('members.invite_selected', {name: entry.display_name}) : t('members.invite_pick');
    }

    async function runSearch() {
      const q = search.value.trim();
      const mySeq = ++seq;
      f.clear();
      choose(null);
      if (!q) {
        clear(results);
        status.textContent = '';
        return;
      }
      status.textContent = t('members.invite_searching');
      let found;
      try {
        found = (await api('GET', `/api/directory?q=${encodeURIComponent(q)}`)) || [];
      } catch (err) {
        if (mySeq !== seq) return;
        status.textContent = '';
        clear(results);
        f.apply(err);
        return;
      }
      if (mySeq !== seq) return;
      if (!found.length) status.textContent = t('members.invite_none', {q});
      else status.textContent = found.length >= 20 ? t('members.invite_many') : '';
      mount(
        results,
        found.map((entry) => {
          const already = standing.get(entry.user_id);
          return h(
            'li',
            null,
            h(
              'button',
              {
                type: 'button',
                class: 'invite-result',
                'data-test': 'member-invite-result',
                'data-user-id': entry.user_id,
                'aria-pressed': 'false',
                disabled: Boolean(already),
                on: {click: (ev) => choose(entry, ev.currentTarget)},
              },
              h('span', {class: 'invite-result-name'}, entry.display_name),
              h('span', {class: 'invite-result-meta'}, roleName(entry.role), ' · ', entry.organisation_name || t('members.no_org')),
              already
                ? h('span', {class: 'badge'}, t(already === 'accepted' ? 'members.invite_already_accepted' : 'members.invite_already_invited'))
                : null,
            ),
          );
        }),
      );
    }

    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(runSearch, 300);
    });
    search.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        clearTimeout(timer);
        runSearch();
      }
    });

    async function onSubmit(ev) {
      ev.preventDefault();
      if (!chosen) return;
      f.clear();
      const entry = chosen;
      try {
        await busy(submit, () => api('POST', roomApi(roomId, '/members'), {user_id: entry.user_id}));
      } catch (err) {
        f.apply(err);
        submit.disabled = !chosen;
        return;
      }
      await load(t('members.invited_ok', {name: entry.display_name}));
    }

    return h(
      'div',
      {class: 'console-panel invite-box'},
      h('h3', {class: 'subsection-title'}, t('members.invite_title')),
      f.form(
        {class: 'invite-form', on: {submit: onSubmit}},
        // The server names the search text 'q' and the invitee 'user_id' in its field errors.
        f.field('q', t('members.invite_search'), search, {hint: t('members.invite_help')}),
        status,
        results,
        h('div', {class: 'field', 'data-field': 'user_id'}, chosenNote),
        h('div', {class: 'form-actions'}, submit),
      ),
    );
  }

  // --- consents -------------------------------------------------------------------------

  function consentsSection() {
    const consents = [...state.consents].sort((a, b) => (a.recorded_at < b.recorded_at ? 1 : -1));
    const inForce = consentInForce(state.consents);
    let footer = null;
    if (professional) footer = inForce ? h('p', {class: 'console-note'}, t('consents.in_force_note')) : recordForm();
    else if (!inForce) footer = h('p', {class: 'console-note'}, t('consents.family_note'));
    return h(
      'section',
      {class: 'console-section', 'aria-labelledby': 'consents-title'},
      h('h2', {id: 'consents-title', class: 'section-title'}, t('consents.title')),
      consents.length
        ? h('ul', {class: 'consent-list'}, consents.map((c) => consentItem(c, Boolean(inForce && inForce.id === c.id))))
        : h('p', {class: 'console-empty', 'data-test': 'consents-empty'}, t('consents.none')),
      footer,
    );
  }

  function consentItem(c, inForce) {
    const stateName = c.withdrawn_at ? 'withdrawn' : 'in_force';
    const rows = [
      [t('consents.obtained_on'), formatDate(c.obtained_on)],
      [t('consents.scope'), c.scope],
      c.document_reference ? [t('consents.document'), c.document_reference] : null,
      [t('consents.recorded'), t('consents.recorded_by', {name: nameOf(c.recorded_by), at: formatDateTime(c.recorded_at)})],
      c.withdrawn_at
        ? [t('consents.withdrawn'), t('consents.recorded_by', {name: nameOf(c.withdrawn_by), at: formatDateTime(c.withdrawn_at)})]
        : null,
      c.withdrawal_reason ? [t('consents.withdrawal_reason'), c.withdrawal_reason] : null,
    ].filter(Boolean);
    const item = h(
      'li',
      {class: `consent-item consent-${stateName}`, 'data-test': 'consent-item', 'data-consent-id': c.id, 'data-state': stateName},
      h(
        'div',
        {class: 'consent-head'},
        h('span', {class: `badge badge-consent-${stateName}`, 'data-test': 'consent-state'}, t(`consents.state.${stateName}`)),
        h('span', {class: 'consent-giver'}, t('consents.giver_line', {name: c.giver_name, relation: t(`consents.given_by.${c.given_by}`)})),
      ),
      h('dl', {class: 'console-dl'}, rows.map(([k, v]) => h('div', {class: 'dl-row'}, h('dt', null, k), h('dd', null, v)))),
    );
    if (inForce) {
      const slot = h('div', {class: 'consent-withdraw-slot'});
      const open = h(
        'button',
        {
          class: 'btn btn-danger-outline',
          type: 'button',
          'data-test': 'consent-withdraw',
          'aria-expanded': 'false',
          on: {
            click: () => {
              open.hidden = true;
              open.setAttribute('aria-expanded', 'true');
              mount(
                slot,
                withdrawForm(c, () => {
                  clear(slot);
                  open.hidden = false;
                  open.setAttribute('aria-expanded', 'false');
                  open.focus();
                }),
              );
            },
          },
        },
        t('consents.withdraw'),
      );
      item.appendChild(h('div', {class: 'consent-actions'}, open, slot));
    }
    return item;
  }

  /** Withdrawal asks for a reason under a warning: that step is the confirmation. */
  function withdrawForm(c, cancel) {
    const f = makeForm();
    const reason = h('textarea', {class: 'input', rows: '3', maxlength: '500', 'data-test': 'consent-withdraw-reason'});
    const submit = h('button', {class: 'btn btn-danger', type: 'submit', 'data-test': 'consent-withdraw-submit'}, t('consents.withdraw_submit'));
    const titleId = uid('withdraw-title');
    async function onSubmit(ev) {
      ev.preventDefault();
      f.clear();
      const text = reason.value.trim();
      if (!text) f.local('reason', t('console.required'));
      else if (text.length > 500) f.local('reason', t('console.too_long', {max: 500}));
      if (f.focusFirstError()) return;
      try {
        await busy(submit, () => api('POST', roomApi(roomId, `/consents/${encodeURIComponent(c.id)}/withdraw`), {reason: text}));
      } catch (err) {
        f.apply(err);
        return;
      }
      rerender(t('consents.withdrawn_ok'));
    }
    const form = f.form(
      {class: 'console-panel withdraw-form', 'aria-labelledby': titleId, on: {submit: onSubmit}},
      h('h3', {class: 'subsection-title', id: titleId}, t('consents.withdraw_title')),
      h('p', {class: 'console-warning'}, t('consents.withdraw_warning')),
      f.field('reason', t('consents.withdraw_reason'), reason, {required: true}),
      h(
        'div',
        {class: 'form-actions'},
        h('button', {class: 'btn', type: 'button', 'data-test': 'consent-withdraw-cancel', on: {click: cancel}}, t('common.cancel')),
        submit,
      ),
    );
    setTimeout(() => reason.focus(), 0);
    return form;
  }

  function recordForm() {
    const f = makeForm();
    const today = todayInJapan();
    const givenBy = h(
      'select',
      {class: 'input', 'data-test': 'consent-given-by', value: 'patient'},
      CONSENT_GIVERS.map((g) => h('option', {value: g}, t(`consents.given_by.${g}`))),
    );
    const giverName = h('input', {type: 'text', class: 'input', maxlength: '100', autocomplete: 'off', 'data-test': 'consent-giver-name'});
    const obtainedOn = h('input', {type: 'date', class: 'input', min: '2000-01-01', max: today, value: today, 'data-test': 'consent-obtained-on'});
    const scope = h('textarea', {class: 'input', rows: '2', maxlength: '500', 'data-test': 'consent-scope', value: t('consents.scope_default')});
    const documentRef = h('input', {type: 'text', class: 'input', maxlength: '200', 'data-test': 'consent-document'});
    const submit = h('button', {class: 'btn btn-primary', type: 'submit', 'data-test': 'consent-record'}, t('consents.record_submit'));

    async function onSubmit(ev) {
      ev.preventDefault();
      f.clear();
      const body = {
        given_by: givenBy.value,
        giver_name: giverName.value.trim(),
        obtained_on: obtainedOn.value.trim(),
        scope: scope.value.trim(),
      };
      const doc = documentRef.value.trim();
      if (doc) body.document_reference = doc;
      if (!body.giver_name) f.local('giver_name', t('console.required'));
      if (!body.obtained_on) f.local('obtained_on', t('console.required'));
      else if (!isDate(body.obtained_on)) f.local('obtained_on', t('console.invalid_date'));
      else if (body.obtained_on > todayInJapan()) f.local('obtained_on', t('console.future_date'));
      if (!body.scope) f.local('scope', t('console.required'));
      if (f.focusFirstError()) return;
      try {
        await busy(submit, () => api('POST', roomApi(roomId, '/consents'), body));
      } catch (err) {
        f.apply(err);
        return;
      }
      rerender(t('consents.recorded_ok'));
    }

    return f.form(
      {class: 'console-panel consent-form', 'aria-labelledby': 'consent-record-title', on: {submit: onSubmit}},
      h('h3', {class: 'subsection-title', id: 'consent-record-title'}, t('consents.record_title')),
      h('p', {class: 'console-note'}, t('consents.record_help')),
      h(
        'div',
        {class: 'field-grid'},
        f.field('given_by', t('consents.given_by'), givenBy, {required: true}),
        f.field('giver_name', t('consents.giver_name'), giverName, {required: true}),
        f.field('obtained_on', t('consents.obtained_on'), obtainedOn, {required: true, hint: t('consents.obtained_on_hint')}),
      ),
      f.field('scope', t('consents.scope'), scope, {required: true}),
      f.field('document_reference', `${t('consents.document')} ${t('console.optional_mark')}`, documentRef, {hint: t('consents.document_hint')}),
      h('div', {class: 'form-actions'}, submit),
    );
  }

  const notice = carriedNotice;
  carriedNotice = null;
  await load(notice);
}

export function register() {
  addStrings(STRINGS);
  route('/rooms/:roomId/members', screen);
}
