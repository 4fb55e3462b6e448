// Listing order, as virsh's: by name, case-insensitively for ASCII letters only, stable.

const ASCII_UPPER = /[A-Z]+/g;

/**
 * `items` sorted by `name` as virsh sorts (vshStrcasecmp, which is g_ascii_strcasecmp): ASCII
 * letters folded to lower case, everything else compared byte by byte in UTF-8, so 'Äb' comes
 * before 'äa' and 'ápool' (UTF-8 C3 84 < C3 A1 < C3 A4), and 'Ωz' before 'ωa'. Each key is made
 * once, not in every comparison: pool-list over a fleet of 10,000 pools made ~130,000 display
 * names (each two splits and a template) and folded each twice in its sort.
 */
export function sortByName<T>(items: readonly T[], name: (x: T) => string): T[] {
  return items
    .map((x) => ({ x, key: Buffer.from(name(x).replace(ASCII_UPPER, (s) => s.toLowerCase()), 'utf8') }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map((e) => e.x);
}
