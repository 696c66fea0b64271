/** Text helpers shared by the SVG, HTML and CSV writers. None depends on locale or clock. */

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for XML/HTML content and attribute values; drops control characters XML 1.0 forbids. */
export function escapeXml (text: string): string {
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/[&<>"']/g, c => XML_ESCAPES[c]!)
}

/** A number for people (HTML cells): integers as is, others to 6 significant digits; the CSV keeps full precision. */
export function displayNumber (n: number): string {
  if (!Number.isFinite(n) || Number.isInteger(n)) return String(n)
  return String(Number(n.toPrecision(6)))
}

/** The keys of a record in UTF-16 code-unit order (not localeCompare, which depends on the machine's locale). */
export function sortedKeys (record: object): string[] {
  return Object.keys(record).sort()
}
