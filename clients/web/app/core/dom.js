// The only way the UI makes elements: markup is never parsed from strings, text always goes in as
// text nodes.
//
//   h('button', {class: 'btn btn-primary', type: 'button', 'data-test': 'x', on: {click: fn}}, t('save'))
//
// props: attributes by name; `true` sets an empty attribute, false/null/undefined skip it.
// `value`, `checked` and `selected` are also set as properties (after the children, so a
// <select>'s value finds its options). `on: {event: fn}` adds listeners.
// children: strings and numbers become text nodes; Nodes are appended; arrays are flattened;
// null, undefined, false and true are skipped.

const PROPERTY_NAMES = new Set(['value', 'checked', 'selected', 'indeterminate']);

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  const late = [];
  if (props) {
    for (const [name, value] of Object.entries(props)) {
      if (name === 'on') {
        if (value) {
          for (const [event, fn] of Object.entries(value)) {
            if (fn) el.addEventListener(event, fn);
          }
        }
        continue;
      }
      if (value === false || value === null || value === undefined) continue;
      if (PROPERTY_NAMES.has(name)) {
        late.push([name, value]);
        if (name === 'value' && tag !== 'select' && tag !== 'textarea') {
          el.setAttribute('value', String(value));
        }
        continue;
      }
      if (name === 'style' || (name.startsWith('on') && name !== 'open')) {
        // Inline styles and on… attributes are forbidden by the CSP; set el.style.x in JS.
        throw new Error(`h(): attribute ${name} is not allowed`);
      }
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  for (const [name, value] of late) {
    el[name] = name === 'value' ? String(value) : Boolean(value);
  }
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false || child === true) continue;
    if (Array.isArray(child)) {
      append(el, child);
    } else if (child instanceof Node) {
      el.appendChild(child);
    } else {
      el.appendChild(document.createTextNode(String(child)));
    }
  }
}

/** Appends `children` to `el` (same rules as h(): null/false skipped, arrays flattened). */
export function add(el, ...children) {
  append(el, children);
  return el;
}

/** Removes every child of `el`; returns `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replaces the children of `el` with `children` (same rules as h()); returns `el`. */
export function mount(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** A text node (rarely needed: h() turns strings into text nodes). */
export function text(value) {
  return document.createTextNode(String(value ?? ''));
}

let idCounter = 0;
/** A unique element id, for <label for> and aria-describedby. */
export function uid(prefix = 'el') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}
