// Login, the pending steps of a session (password change, TOTP enrolment, operating policy)
// and the invitation screen ('/join').

import { h, mount, add } from '../core/dom.js';
import { t, addStrings } from '../core/i18n.js';
import { api } from '../core/api.js';
import { route, href } from '../core/router.js';
import { showError, clearErrors, field, addFieldError, loading } from '../core/shell.js';
import * as session from '../core/session.js';

addStrings({
  ja: {
    'login.title': 'ログイン',
    'login.lead': '在宅医療・介護の連携のための安全な連絡帳です。',
    'login.username': 'ログイン名',
    'login.password': 'パスワード',
    'login.totp': '確認コード（6桁）',
    'login.totp_hint': '認証アプリに表示されている6桁の数字を入力してください。',
    'login.recovery': 'リカバリーコード',
    'login.recovery_hint': '2段階認証の登録時に保存したコード（例: 8APD-D24P-A92K）。各コードは1回だけ使えます。',
    'login.use_recovery': '認証アプリが使えない場合（リカバリーコード）',
    'login.use_totp': '認証アプリの確認コードを使う',
    'login.submit': 'ログイン',
    'login.submitting': '確認しています…',
    'login.totp_needed': 'パスワードを確認しました。認証アプリの確認コードを入力してください。',
    'login.locked_wait': 'あと {seconds} 秒お待ちください。',
    'login.locked_over': 'もう一度ログインできます。',
    'login.join_link': '招待コードをお持ちの方（アカウント作成）',
    'login.show_password': '表示',
    'login.hide_password': '隠す',
    'login.show_password_label': 'パスワードを表示する',
    'login.hide_password_label': 'パスワードを隠す',
    'login.required': '入力してください。',
    'pw.title': 'パスワードの変更',
    'pw.lead': '管理者が発行した仮パスワードでログインしました。ご自分だけが知るパスワードに変更してください。',
    'pw.current': '現在のパスワード（仮パスワード）',
    'pw.new': '新しいパスワード',
    'pw.new_hint': '8文字以上。2段階認証を使わない家族・本人のアカウントは15文字以上。推測されやすいものは使えません。',
    'pw.confirm': '新しいパスワード（確認）',
    'pw.mismatch': '確認用のパスワードが一致しません。',
    'pw.submit': 'パスワードを変更',
    'totp.title': '2段階認証の登録',
    'totp.lead': 'スマートフォンの認証アプリ（Google Authenticator、Microsoft Authenticator など）で次のQRコードを読み取ってください。',
    'totp.qr_alt': '認証アプリに登録するQRコード',
    'totp.secret_label': 'QRコードを読み取れない場合は、このキーを手入力してください:',
    'totp.code': 'アプリに表示された6桁の確認コード',
    'totp.submit': '登録を完了',
    'totp.recovery_title': 'リカバリーコード',
    'totp.recovery_lead': '認証アプリが使えなくなったときに、これらのコードでログインできます。各コードは1回だけ使えます。この画面は二度と表示されません。印刷するか安全な場所に書き写してください。',
    'totp.copy': 'コードをコピー',
    'totp.copied': 'コピーしました。',
    'totp.done': '保存しました',
    'policy.title': '運用方針への同意',
    'policy.lead': 'ご利用の前に、次の運用方針をお読みいただき、同意してください。',
    'policy.previous': '以前に同意いただいた後、運用方針が改訂されました。改訂後の内容をお読みください。',
    'policy.accept': '上記の運用方針に同意する',
    'join.title': '招待を受けてアカウントを作成',
    'join.lead': '管理者から受け取った招待コードを入力し、ログイン名とパスワードを決めてください。',
    'join.code': '招待コード',
    'join.code_hint': '例: F3RE-5MHA-43J3-B77S',
    'join.username': 'ログイン名',
    'join.username_hint': '半角英小文字・数字と . _ - の3〜64文字。英数字で始めてください。',
    'join.display_name': '表示名（氏名）',
    'join.display_name_hint': '他のメンバーに表示されます。例: 佐藤 花子',
    'join.password': 'パスワード',
    'join.password_hint': '8文字以上（家族・本人の招待では15文字以上の場合があります）。',
    'join.confirm': 'パスワード（確認）',
    'join.submit': 'アカウントを作成',
    'join.back': 'ログイン画面へ戻る',
    'steps.progress': '手順 {n} / {total}',
  },
  en: {
    'login.title': 'Log in',
    'login.lead': 'A secure shared notebook for home medical and long-term care.',
    'login.username': 'Username',
    'login.password': 'Password',
    'login.totp': 'Verification code (6 digits)',
    'login.totp_hint': 'Enter the 6-digit number shown in your authenticator app.',
    'login.recovery': 'Recovery code',
    'login.recovery_hint': 'One of the codes saved when you set up two-step verification (e.g. 8APD-D24P-A92K). Each works once.',
    'login.use_recovery': 'Cannot use the app? Use a recovery code',
    'login.use_totp': 'Use the code from the authenticator app',
    'login.submit': 'Log in',
    'login.submitting': 'Checking…',
    'login.totp_needed': 'Password accepted. Enter the code from your authenticator app.',
    'login.locked_wait': 'Please wait {seconds} more seconds.',
    'login.locked_over': 'You may try again now.',
    'login.join_link': 'Have an invitation code? Create your account',
    'login.show_password': 'Show',
    'login.hide_password': 'Hide',
    'login.show_password_label': 'Show the password',
    'login.hide_password_label': 'Hide the password',
    'login.required': 'Please fill this in.',
    'pw.title': 'Change your password',
    'pw.lead': 'You logged in with a password issued by an administrator. Choose one only you know.',
    'pw.current': 'Current (temporary) password',
    'pw.new': 'New password',
    'pw.new_hint': 'At least 8 characters; 15 for family and patient accounts without two-step verification. Common passwords are refused.',
    'pw.confirm': 'New password (again)',
    'pw.mismatch': 'The two passwords differ.',
    'pw.submit': 'Change password',
    'totp.title': 'Set up two-step verification',
    'totp.lead': 'Scan this QR code with an authenticator app on your phone (Google Authenticator, Microsoft Authenticator, …).',
    'totp.qr_alt': 'QR code for the authenticator app',
    'totp.secret_label': 'If you cannot scan it, type this key into the app:',
    'totp.code': 'The 6-digit code shown in the app',
    'totp.submit': 'Finish setup',
    'totp.recovery_title': 'Recovery codes',
    'totp.recovery_lead': 'If you lose the authenticator app, these codes let you log in; each works once. This screen is never shown again: print them or copy them somewhere safe.',
    'totp.copy': 'Copy the codes',
    'totp.copied': 'Copied.',
    'totp.done': 'I saved them',
    'policy.title': 'Operating policy',
    'policy.lead': 'Before you start, please read the operating policy and accept it.',
    'policy.previous': 'The policy has changed since you last accepted it. Please read the new version.',
    'policy.accept': 'I accept this operating policy',
    'join.title': 'Create your account from an invitation',
    'join.lead': 'Enter the invitation code you received, then choose a username and a password.',
    'join.code': 'Invitation code',
    'join.code_hint': 'e.g. F3RE-5MHA-43J3-B77S',
    'join.username': 'Username',
    'join.username_hint': '3–64 of a–z, 0–9 and . _ -, starting with a letter or digit.',
    'join.display_name': 'Display name (full name)',
    'join.display_name_hint': 'Shown to the other members, e.g. Hanako Sato',
    'join.password': 'Password',
    'join.password_hint': 'At least 8 characters (15 for some family and patient invitations).',
    'join.confirm': 'Password (again)',
    'join.submit': 'Create account',
    'join.back': 'Back to login',
    'steps.progress': 'Step {n} of {total}',
  },
});

// ---------------------------------------------------------------------------------------------
// Helpers

function input(props) {
  return h('input', {class: 'input', ...props});
}

/** A password input with a show/hide button; answers {wrap, input}. */
export function passwordField(props) {
  const el = input({type: 'password', autocapitalize: 'off', spellcheck: 'false', ...props});
  const toggle = h('button', {
    class: 'btn btn-inline',
    type: 'button',
    'aria-label': t('login.show_password_label'),
    'aria-pressed': 'false',
    on: {
      click: () => {
        const show = el.type === 'password';
        el.type = show ? 'text' : 'password';
        toggle.textContent = t(show ? 'login.hide_password' : 'login.show_password');
        toggle.setAttribute('aria-label', t(show ? 'login.hide_password_label' : 'login.show_password_label'));
        toggle.setAttribute('aria-pressed', show ? 'true' : 'false');
      },
    },
  }, t('login.show_password'));
  return {wrap: h('div', {class: 'input-with-button'}, el, toggle), input: el};
}

/** A password field wrapper: field() does not know the extra button, so label the input. */
function pwField({label, path, hint, props, required = true}) {
  const {wrap, input: el} = passwordField(props);
  const f = field({label, input: el, path, hint, required});
  // Put the input+button wrapper where the bare input was.
  f.replaceChild(wrap, el);
  wrap.insertBefore(el, wrap.firstChild);
  return {field: f, input: el};
}

function busy(button, on, textKey) {
  if (on) {
    button.dataset.label = button.textContent;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    if (textKey) button.textContent = t(textKey);
  } else {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    if (button.dataset.label) button.textContent = button.dataset.label;
  }
}

function requireFilled(container, pairs) {
  let ok = true;
  for (const [wrapper, el, path] of pairs) {
    if (!el.value.trim()) {
      addFieldError(wrapper, path, t('login.required'));
      if (ok) el.focus();
      ok = false;
    }
  }
  return ok;
}


// ---------------------------------------------------------------------------------------------
// Login

/**
 * The login screen. onSuccess(answer) gets the POST /api/web/login answer
 * ({session_id, expires_in, pending}); the cookies are set.
 */
export function renderLogin(view, {onSuccess, notice} = {}) {
  let lockTimer = null;
  let mode = 'password'; // 'password' | 'totp' | 'recovery'

  const username = input({type: 'text', name: 'username', autocomplete: 'username', autocapitalize: 'off', spellcheck: 'false', 'data-test': 'login-username'});
  const pw = pwField({label: t('login.password'), path: 'password', props: {name: 'password', autocomplete: 'current-password', 'data-test': 'login-password'}});
  const usernameField = field({label: t('login.username'), input: username, path: 'username', required: true});
  const totp = input({type: 'text', name: 'totp_code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '8', pattern: '[0-9 ]*', 'data-test': 'login-totp'});
  const totpField = field({label: t('login.totp'), input: totp, path: 'totp_code', hint: t('login.totp_hint'), required: true});
  const recovery = input({type: 'text', name: 'recovery_code', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', 'data-test': 'login-recovery'});
  const recoveryField = field({label: t('login.recovery'), input: recovery, path: 'recovery_code', hint: t('login.recovery_hint'), required: true});
  const switchButton = h('button', {class: 'btn btn-link', type: 'button', 'data-test': 'login-use-recovery', on: {click: () => setMode(mode === 'recovery' ? 'totp' : 'recovery')}});
  const secondFactor = h('div', {class: 'stack', hidden: true}, totpField, recoveryField, switchButton);
  const info = h('p', {class: 'banner banner-info', role: 'status', hidden: true}, t('login.totp_needed'));
  const wait = h('p', {class: 'muted', role: 'status', 'aria-live': 'polite'});
  const submit = h('button', {class: 'btn btn-primary btn-block', type: 'submit', 'data-test': 'login-submit'}, t('login.submit'));

  function setMode(next) {
    mode = next;
    secondFactor.hidden = mode === 'password';
    totpField.hidden = mode !== 'totp';
    recoveryField.hidden = mode !== 'recovery';
    info.hidden = mode === 'password';
    switchButton.textContent = t(mode === 'recovery' ? 'login.use_totp' : 'login.use_recovery');
    if (mode === 'totp') totp.focus();
    if (mode === 'recovery') recovery.focus();
  }

  function startLockCountdown(seconds) {
    clearInterval(lockTimer);
    let left = Math.max(1, Math.ceil(seconds));
    submit.disabled = true;
    wait.textContent = t('login.locked_wait', {seconds: left});
    lockTimer = setInterval(() => {
      left -= 1;
      if (!form.isConnected) {
        clearInterval(lockTimer);
        return;
      }
      if (left <= 0) {
        clearInterval(lockTimer);
        submit.disabled = false;
        wait.textContent = t('login.locked_over');
      } else {
        wait.textContent = t('login.locked_wait', {seconds: left});
      }
    }, 1000);
  }

  const form = h(
    'form',
    {
      class: 'stack',
      novalidate: true,
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          clearErrors(box);
          if (!submit.disabled) wait.textContent = '';
          const checks = [
            [usernameField, username, 'username'],
            [pw.field, pw.input, 'password'],
          ];
          if (mode === 'totp') checks.push([totpField, totp, 'totp_code']);
          if (mode === 'recovery') checks.push([recoveryField, recovery, 'recovery_code']);
          if (!requireFilled(box, checks)) return;
          const body = {username: username.value.trim(), password: pw.input.value};
          if (mode === 'totp') body.totp_code = totp.value.replace(/\s+/g, '');
          if (mode === 'recovery') body.recovery_code = recovery.value.trim();
          busy(submit, true, 'login.submitting');
          try {
            const answer = await api('POST', '/api/web/login', body, {quiet: true, noRefresh: true});
            clearInterval(lockTimer);
            if (onSuccess) await onSuccess(answer);
          } catch (err) {
            busy(submit, false);
            if (err.code === 'totp_required') {
              setMode(mode === 'password' ? 'totp' : mode);
              return;
            }
            showError(box, err);
            if (err.code === 'totp_invalid') {
              totp.value = '';
              recovery.value = '';
              (mode === 'recovery' ? recovery : totp).focus();
            } else if (err.code === 'authentication_failed') {
              pw.input.value = '';
              totp.value = '';
              setMode('password');
              pw.input.focus();
            }
            if (err.code === 'account_locked' && err.retry_after_seconds) {
              startLockCountdown(err.retry_after_seconds);
            }
          }
        },
      },
    },
    usernameField,
    pw.field,
    info,
    secondFactor,
    wait,
    submit,
  );

  const box = h(
    'section',
    {class: 'card auth-card stack'},
    h('h1', null, t('login.title')),
    h('p', {class: 'muted'}, t('login.lead')),
    notice ? h('p', {class: 'banner banner-warning', role: 'status'}, notice) : null,
    form,
    h('p', {class: 'auth-links'}, h('a', {href: href('/join'), 'data-test': 'login-join'}, t('login.join_link'))),
  );
  mount(view, h('div', {class: 'auth-wrap'}, box));
  setMode('password');
  username.focus();
}

// ---------------------------------------------------------------------------------------------
// Pending steps

const STEP_ORDER = ['change_password', 'enrol_totp', 'accept_policy'];

/**
 * Shows the session's pending steps one after the other (as GET /api/auth/me lists them),
 * then calls onDone(). view: the element to draw into.
 */
export async function runPending(view, onDone, progressState) {
  const steps = session.pending().filter((s) => STEP_ORDER.includes(s));
  if (!steps.length) {
    await onDone();
    return;
  }
  const counter = progressState || {done: 0, total: steps.length};
  counter.total = Math.max(counter.total, counter.done + steps.length);
  const total = counter.total;
  const step = steps[0];
  const next = async () => {
    mount(view, loading());
    try {
      await session.loadMe();
    } catch (err) {
      mount(view);
      showError(view, err);
      return;
    }
    counter.done += 1;
    await runPending(view, onDone, counter);
  };
  const progress = total > 1 ? h('p', {class: 'muted step-progress'}, t('steps.progress', {n: counter.done + 1, total})) : null;
  if (step === 'change_password') renderPasswordChange(view, next, progress);
  else if (step === 'enrol_totp') await renderTotp(view, next, progress);
  else if (step === 'accept_policy') await renderPolicy(view, next, progress);
}

function renderPasswordChange(view, next, progress) {
  const current = pwField({label: t('pw.current'), path: 'current_password', props: {autocomplete: 'current-password', 'data-test': 'password-current'}});
  const fresh = pwField({label: t('pw.new'), path: 'new_password', hint: t('pw.new_hint'), props: {autocomplete: 'new-password', 'data-test': 'password-new'}});
  const again = pwField({label: t('pw.confirm'), path: 'new_password_confirm', props: {autocomplete: 'new-password', 'data-test': 'password-confirm'}});
  const submit = h('button', {class: 'btn btn-primary btn-block', type: 'submit', 'data-test': 'password-submit'}, t('pw.submit'));
  const box = h(
    'section',
    {class: 'card auth-card stack'},
    progress,
    h('h1', null, t('pw.title')),
    h('p', null, t('pw.lead')),
    h(
      'form',
      {
        class: 'stack',
        novalidate: true,
        on: {
          submit: async (ev) => {
            ev.preventDefault();
            clearErrors(box);
            const ok = requireFilled(box, [
              [current.field, current.input, 'current_password'],
              [fresh.field, fresh.input, 'new_password'],
            ]);
            if (!ok) return;
            if (again.input.value !== fresh.input.value) {
              addFieldError(again.field, 'new_password_confirm', t('pw.mismatch'));
              again.input.focus();
              return;
            }
            busy(submit, true);
            try {
              await api('POST', '/api/web/password', {current_password: current.input.value, new_password: fresh.input.value}, {quiet: true});
              await next();
            } catch (err) {
              busy(submit, false);
              showError(box, err);
            }
          },
        },
      },
      current.field,
      fresh.field,
      again.field,
      submit,
    ),
  );
  mount(view, h('div', {class: 'auth-wrap'}, box));
  current.input.focus();
}

/** Runs `load()` with a loading line in `box`; on failure shows the error and a retry button
 * (which calls `retry`) and answers null. */
async function loadInto(box, load, retry) {
  const spinner = box.appendChild(loading());
  try {
    return await load();
  } catch (err) {
    spinner.remove();
    showError(box, err);
    box.appendChild(h('button', {class: 'btn', type: 'button', on: {click: retry}}, t('common.retry')));
    return null;
  } finally {
    spinner.remove();
  }
}

async function renderTotp(view, next, progress) {
  const box = h('section', {class: 'card auth-card stack'}, progress, h('h1', null, t('totp.title')));
  mount(view, h('div', {class: 'auth-wrap'}, box));
  const enrolment = await loadInto(box, () => api('POST', '/api/auth/totp/enrol', undefined, {quiet: true}), () => renderTotp(view, next, progress));
  if (!enrolment) return;
  const qrUrl = enrolment.qr_svg ? URL.createObjectURL(new Blob([enrolment.qr_svg], {type: 'image/svg+xml'})) : null;
  const secret = String(enrolment.secret_base32 || '');
  const grouped = secret.replace(/(.{4})/g, '$1 ').trim();
  const code = input({type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '8', 'data-test': 'totp-code'});
  const codeField = field({label: t('totp.code'), input: code, path: 'code', required: true});
  const submit = h('button', {class: 'btn btn-primary btn-block', type: 'submit', 'data-test': 'totp-submit'}, t('totp.submit'));
  add(box, 
    h('p', null, t('totp.lead')),
    qrUrl ? h('div', {class: 'qr-box'}, h('img', {class: 'qr', src: qrUrl, alt: t('totp.qr_alt'), width: '240', height: '240', 'data-test': 'totp-qr'})) : null,
    h('p', {class: 'muted'}, t('totp.secret_label')),
    h('p', {class: 'secret', 'data-test': 'totp-secret', 'data-secret': secret, translate: 'no'}, grouped),
    h(
      'form',
      {
        class: 'stack',
        novalidate: true,
        on: {
          submit: async (ev) => {
            ev.preventDefault();
            clearErrors(box);
            if (!requireFilled(box, [[codeField, code, 'code']])) return;
            busy(submit, true);
            try {
              const answer = await api('POST', '/api/auth/totp/confirm', {code: code.value.replace(/\s+/g, '')}, {quiet: true});
              if (qrUrl) URL.revokeObjectURL(qrUrl);
              renderRecoveryCodes(view, answer.recovery_codes || answer.codes || [], next);
            } catch (err) {
              busy(submit, false);
              showError(box, err);
              code.value = '';
              code.focus();
            }
          },
        },
      },
      codeField,
      submit,
    ),
  );
}

function renderRecoveryCodes(view, codes, next) {
  const copied = h('p', {class: 'muted', role: 'status', 'aria-live': 'polite'});
  const canCopy = Boolean(navigator.clipboard && window.isSecureContext);
  const box = h(
    'section',
    {class: 'card auth-card stack'},
    h('h1', null, t('totp.recovery_title')),
    h('p', {class: 'banner banner-warning'}, t('totp.recovery_lead')),
    h('ol', {class: 'recovery-codes', 'data-test': 'totp-recovery', translate: 'no'}, codes.map((c) => h('li', null, c))),
    h(
      'div',
      {class: 'row'},
      canCopy
        ? h('button', {
            class: 'btn',
            type: 'button',
            on: {
              click: async () => {
                try {
                  await navigator.clipboard.writeText(codes.join('\n'));
                  copied.textContent = t('totp.copied');
                } catch {
                  copied.textContent = '';
                }
              },
            },
          }, t('totp.copy'))
        : null,
      h('button', {class: 'btn btn-primary', type: 'button', 'data-test': 'totp-done', on: {click: () => next()}}, t('totp.done')),
    ),
    copied,
  );
  mount(view, h('div', {class: 'auth-wrap'}, box));
}

async function renderPolicy(view, next, progress) {
  const box = h('section', {class: 'card auth-card auth-card-wide stack'}, progress, h('h1', null, t('policy.title')));
  mount(view, h('div', {class: 'auth-wrap'}, box));
  const policy = await loadInto(box, () => api('GET', '/api/policy', undefined, {quiet: true}), () => renderPolicy(view, next, progress));
  if (!policy) return;
  const title = policy.title;
  const body = policy.text;
  const accept = h('button', {
    class: 'btn btn-primary btn-block',
    type: 'button',
    'data-test': 'policy-accept',
    on: {
      click: async () => {
        clearErrors(box);
        busy(accept, true);
        try {
          await api('POST', '/api/policy/accept', {version: policy.version}, {quiet: true});
          await next();
        } catch (err) {
          busy(accept, false);
          if (err.status === 409) {
            // The policy changed while it was being read: show the new text.
            await renderPolicy(view, next, progress);
            const again = view.querySelector('.auth-card');
            if (again) showError(again, err);
            return;
          }
          showError(box, err);
        }
      },
    },
  }, t('policy.accept'));
  add(box, 
    h('p', null, t('policy.lead')),
    policy.accepted_version && policy.accepted_version !== policy.version ? h('p', {class: 'banner banner-warning'}, t('policy.previous')) : null,
    title ? h('h2', {class: 'policy-title'}, title) : null,
    h('div', {class: 'policy-text', 'data-test': 'policy-text', tabindex: '0', role: 'document', lang: 'ja'}, body || ''),
    accept,
  );
}

// ---------------------------------------------------------------------------------------------
// Accepting an invitation ('/join'), public

let joinDone = null;

/** main.js tells the join screen what to do once the account exists (like a login). */
export function onJoined(fn) {
  joinDone = fn;
}

export function renderJoin(view, query = {}) {
  const code = input({type: 'text', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', value: query.code || '', 'data-test': 'join-code'});
  const username = input({type: 'text', autocomplete: 'username', autocapitalize: 'off', spellcheck: 'false', 'data-test': 'join-username'});
  const displayName = input({type: 'text', autocomplete: 'name', 'data-test': 'join-display-name'});
  const codeField = field({label: t('join.code'), input: code, path: 'code', hint: t('join.code_hint'), required: true});
  const usernameField = field({label: t('join.username'), input: username, path: 'username', hint: t('join.username_hint'), required: true});
  const nameField = field({label: t('join.display_name'), input: displayName, path: 'display_name', hint: t('join.display_name_hint'), required: true});
  const pw = pwField({label: t('join.password'), path: 'password', hint: t('join.password_hint'), props: {autocomplete: 'new-password', 'data-test': 'join-password'}});
  const again = pwField({label: t('join.confirm'), path: 'password_confirm', props: {autocomplete: 'new-password', 'data-test': 'join-confirm'}});
  const submit = h('button', {class: 'btn btn-primary btn-block', type: 'submit', 'data-test': 'join-submit'}, t('join.submit'));
  const box = h(
    'section',
    {class: 'card auth-card stack'},
    h('h1', null, t('join.title')),
    h('p', null, t('join.lead')),
    h(
      'form',
      {
        class: 'stack',
        novalidate: true,
        on: {
          submit: async (ev) => {
            ev.preventDefault();
            clearErrors(box);
            const ok = requireFilled(box, [
              [codeField, code, 'code'],
              [usernameField, username, 'username'],
              [nameField, displayName, 'display_name'],
              [pw.field, pw.input, 'password'],
            ]);
            if (!ok) return;
            if (again.input.value !== pw.input.value) {
              addFieldError(again.field, 'password_confirm', t('pw.mismatch'));
              again.input.focus();
              return;
            }
            busy(submit, true);
            try {
              const answer = await api('POST', '/api/web/accept-invitation', {
                code: code.value.trim(),
                username: username.value.trim(),
                display_name: displayName.value.trim(),
                password: pw.input.value,
              }, {quiet: true, noRefresh: true});
              if (joinDone) await joinDone(answer);
            } catch (err) {
              busy(submit, false);
              showError(box, err);
            }
          },
        },
      },
      codeField,
      usernameField,
      nameField,
      pw.field,
      again.field,
      submit,
    ),
    h('p', {class: 'auth-links'}, h('a', {href: href('/login')}, t('join.back'))),
  );
  mount(view, h('div', {class: 'auth-wrap'}, box));
  (code.value ? username : code).focus();
}

export function register() {
  route('/join', async (view, params, query) => {
    renderJoin(view, query);
  }, {public: true});
}
