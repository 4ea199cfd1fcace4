/**
 * LIST / LSUB patterns (RFC 9051 §6.3.9): `*` matches any characters, `%` any characters but the
 * hierarchy delimiter. Matched by simulating the pattern as an automaton over the set of
 * positions it can be at, so time is linear in name × pattern length whatever the pattern (a
 * backtracking matcher takes exponential time on `*a*a*a*b`). `INBOX` is case-insensitive
 * (§5.1): a pattern starting with any case of "INBOX" also matches the INBOX hierarchy.
 */
export function compileListPattern(pattern: string, delimiter = '/'): (name: string) => boolean {
  const exact = positionsMatcher(pattern, delimiter);
  const inboxVariant =
    pattern.slice(0, 5).toUpperCase() === 'INBOX'
      ? positionsMatcher(`INBOX${pattern.slice(5)}`, delimiter)
      : null;
  return (name) => {
    if (exact(name)) return true;
    if (inboxVariant === null || !(name === 'INBOX' || name.startsWith(`INBOX${delimiter}`))) return false;
    return inboxVariant(name);
  };
}

function positionsMatcher(pattern: string, delimiter: string): (name: string) => boolean {
  const p = [...pattern];
  const m = p.length;
  const close = (states: Uint8Array): void => {
    // A wildcard also matches nothing: from a wildcard position the next one is reachable.
    for (let i = 0; i < m; i++) if (states[i] === 1 && (p[i] === '*' || p[i] === '%')) states[i + 1] = 1;
  };
  return (name) => {
    let states = new Uint8Array(m + 1);
    states[0] = 1;
    close(states);
    for (const ch of name) {
      const next = new Uint8Array(m + 1);
      let any = false;
      for (let i = 0; i < m; i++) {
        if (states[i] !== 1) continue;
        const pc = p[i];
        if (pc === '*' || (pc === '%' && ch !== delimiter)) {
          next[i] = 1;
          any = true;
        } else if (pc === ch) {
          next[i + 1] = 1;
          any = true;
        }
      }
      if (!any) return false;
      close(next);
      states = next;
    }
    return states[m] === 1;
  };
}
