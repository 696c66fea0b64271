// Building DOM from data without ever parsing it as markup: every string becomes a text node or
// an attribute value set through the DOM, so a peer's agent name or reason cannot inject HTML.

/** `h('td', { className: 'x' }, 'text', child)`: an element; null/undefined children are skipped. */
export function h (tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue
    if (key === 'className') node.className = value
    else if (key === 'dataset') Object.assign(node.dataset, value)
    else if (/^on/i.test(key) || key === 'innerHTML' || key === 'outerHTML') throw new Error(`h: ${key} is not allowed`)
    else node.setAttribute(key, String(value))
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue
    node.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return node
}

/** Replaces what `parent` holds. */
export function fill (parent, ...children) {
  parent.replaceChildren(...children.flat().filter(c => c !== undefined && c !== null && c !== false))
}

/** A table with a header row; each row is a list of cells (strings or nodes). */
export function table (headers, rows, props = {}) {
  return h('table', props,
    h('thead', {}, h('tr', {}, headers.map(x => h('th', {}, x)))),
    h('tbody', {}, rows.map(r => h('tr', r.props ?? {}, (r.cells ?? r).map(c => h('td', {}, c))))))
}

export function shortId (id) {
  const s = String(id ?? '')
  const [host, name] = s.split('/')
  const hostShort = host.length > 16 ? `${host.slice(0, 8)}…${host.slice(-4)}` : host
  return name === undefined ? hostShort : `${hostShort}/${name}`
}

export function num (x, digits = 3) {
  return typeof x === 'number' ? String(Math.round(x * 10 ** digits) / 10 ** digits) : ''
}
