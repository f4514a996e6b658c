// Small UI helpers shared by the console-style screens (members.js, audit.js, admin.js), on the
// conventions of core/shell.js (banners, .field[data-field] wrappers, per-field errors):
//
//   errorBlock(err, retry)      a failed load: the server's message (data-test="error") + retry
//   flashNode(text)             a short confirmation of what just happened (role=status)
//   makeForm()                  a form whose fields take client and server errors
//   confirmDialog({title, body, confirmLabel, danger})  a modal <dialog>; resolves true/false
//   busy(button, fn)            runs fn with the button disabled (aria-busy) meanwhile
//   labelTable(table)           copies column headers into data-label (tables as cards)
//   isDate(value), shiftDate(iso, days)   YYYY-MM-DD checks and arithmetic
//
// The 'console.*' strings below (required/optional marks, date and length errors) are shared
// by the same screens and registered when this module loads. Styles: css/console.css.

import { h, mount, uid } from './dom.js';
import { t, addStrings } from './i18n.js';
import { showError, field, addFieldError, clearErrors } from './shell.js';

addStrings({
  ja: {
    'console.required_mark': '（必須）',
    'console.optional_mark': '（任意）',
    'console.required': '入力してください。',
    'console.invalid_date': '日付を YYYY-MM-DD の形で入力してください。',
    'console.future_date': '今日より後の日付は指定できません。',
    'console.too_long': '{max}文字以内で入力してください。',
    'console.unknown_user': '（不明な利用者）',
  },
  en: {
    'console.required_mark': '(required)',
    'console.optional_mark': '(optional)',
    'console.required': 'Please fill this in.',
    'console.invalid_date': 'Enter a date as YYYY-MM-DD.',
    'console.future_date': 'The date cannot be after today.',
    'console.too_long': 'At most {max} characters.',
    'console.unknown_user': '(unknown user)',
  },
});

/**
 * An error block for a failed load: the server's message in a banner (showError) and a retry
 * button that calls `retry`.
 */
export function errorBlock(err, retry) {
  const box = h('div', {class: 'console-error-block'});
  if (retry) {
    box.appendChild(
      h('button', {class: 'btn', type: 'button', 'data-test': 'retry', on: {click: retry}}, t('common.retry')),
    );
  }
  showError(box, err);
  return box;
}

/** A short confirmation of what just happened (role=status). */
export function flashNode(text) {
  return text ? h('p', {class: 'console-flash', role: 'status', 'data-test': 'flash'}, text) : null;
}

/**
 * A form with labelled fields and errors, on the shell's conventions: each field is a
 * .field[data-field = the server's path]; showError() puts the server's banner at the top of
 * the form and each field error under its field (data-test="field-error").
 *
 *   const f = makeForm();
 *   const form = f.form({class: '…', on: {submit}}, f.field('giver_name', label, input, {required: true}), …);
 *   f.clear(); f.local('giver_name', t('…')); if (f.hasErrors()) …; f.apply(err)
 */
export function makeForm() {
  let formEl = null;
  const self = {
    form(props, ...children) {
      formEl = h('form', {novalidate: true, ...props}, ...children);
      return formEl;
    },
    /** A labelled field; opts: {required, hint, className}. */
    field(path, label, input, opts = {}) {
      return field({label, input, path, hint: opts.hint, required: opts.required, className: opts.className});
    },
    /** Removes the banner and every field error. */
    clear() {
      if (formEl) clearErrors(formEl);
    },
    /** A client-side error on one field. */
    local(path, text) {
      const wrapper = formEl && formEl.querySelector(`.field[data-field="${CSS.escape(path)}"]`);
      if (wrapper) addFieldError(wrapper, path, text);
    },
    hasErrors() {
      return Boolean(formEl && formEl.querySelector('.field-error'));
    },
    /** Focuses the first field with an error; false when there is none. */
    focusFirstError() {
      const input = formEl && formEl.querySelector('.field.has-error input, .field.has-error select, .field.has-error textarea');
      if (input) {
        input.focus();
        return true;
      }
      return false;
    },
    /** Shows an ApiError: the banner and the per-field errors. */
    apply(err) {
      showError(formEl, err);
      self.focusFirstError();
    },
  };
  return self;
}

/**
 * Asks before something that cannot be undone: a modal <dialog> with the question, an
 * explanation and two buttons. Resolves true when confirmed.
 */
export function confirmDialog({title, body, confirmLabel, danger = true}) {
  return new Promise((resolve) => {
    const titleId = uid('confirm-title');
    const bodyId = uid('confirm-body');
    let answered = false;
    const previous = document.activeElement;
    const dialog = h('dialog', {
      class: 'confirm-dialog',
      'data-test': 'confirm-dialog',
      'aria-labelledby': titleId,
      'aria-describedby': body ? bodyId : null,
    });
    const finish = (value) => {
      if (answered) return;
      answered = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      if (previous && previous.isConnected && typeof previous.focus === 'function') previous.focus();
      resolve(value);
    };
    const cancel = h(
      'button',
      {class: 'btn', type: 'button', 'data-test': 'confirm-cancel', on: {click: () => finish(false)}},
      t('common.cancel'),
    );
    const ok = h(
      'button',
      {
        class: danger ? 'btn btn-danger' : 'btn btn-primary',
        type: 'button',
        'data-test': 'confirm-ok',
        on: {click: () => finish(true)},
      },
      confirmLabel,
    );
    mount(
      dialog,
      h('h2', {id: titleId, class: 'confirm-title'}, title),
      body ? h('p', {id: bodyId, class: 'confirm-body'}, body) : null,
      h('div', {class: 'confirm-actions'}, cancel, ok),
    );
    dialog.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      finish(false);
    });
    document.body.appendChild(dialog);
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
    cancel.focus();
  });
}

/** Runs `fn` with `button` disabled (aria-busy) meanwhile. */
export async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/**
 * Copies each column's header text into the cells' data-label, so that narrow screens can show
 * rows as cards (console.css, .cards-narrow). Answers the table.
 */
export function labelTable(table) {
  const labels = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
  for (const row of table.querySelectorAll('tbody tr')) {
    [...row.children].forEach((cell, i) => {
      if (labels[i]) cell.setAttribute('data-label', labels[i]);
    });
  }
  return table;
}

/** A YYYY-MM-DD date `days` before (negative: after) the date `iso`. */
export function shiftDate(iso, days) {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

export function isDate(value) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value || '')) return false;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value;
}

