// Calico selectors: all(), k == 'v', k != 'v', has(k), !has(k), k in {'a','b'},
// k not in {...}, &&, ||, !, parentheses. Parsed once, evaluated against labels.

export type Labels = Record<string, string>;
export type Selector = (labels: Labels) => boolean;

export class SelectorError extends Error {}

/** A label the node was given (not one every object has, such as "constructor"). */
const has = (l: Labels, k: string) => Object.hasOwn(l, k);

export function parseSelector(text: string): Selector {
  const src = text.trim();
  if (src === "") return () => true;
  let i = 0;
  const ws = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const fail = (what: string): never => {
    throw new SelectorError(`selector "${text}": ${what} at position ${i + 1}`);
  };
  const eat = (tok: string): boolean => {
    ws();
    if (src.startsWith(tok, i)) {
      i += tok.length;
      return true;
    }
    return false;
  };
  const key = (): string => {
    ws();
    const m = /^[A-Za-z0-9_./-]+/.exec(src.slice(i));
    if (!m) return fail("expected a label name");
    i += m[0].length;
    return m[0];
  };
  const str = (): string => {
    ws();
    const q = src[i];
    if (q !== "'" && q !== '"') return fail("expected a quoted value");
    const end = src.indexOf(q, i + 1);
    if (end < 0) return fail("unterminated string");
    const v = src.slice(i + 1, end);
    i = end + 1;
    return v;
  };
  const set = (): string[] => {
    if (!eat("{")) fail("expected {");
    const vals: string[] = [];
    if (eat("}")) return vals;
    do vals.push(str());
    while (eat(","));
    if (!eat("}")) fail("expected }");
    return vals;
  };
  const primary = (): Selector => {
    ws();
    if (eat("(")) {
      const e = or();
      if (!eat(")")) fail("expected )");
      return e;
    }
    if (eat("!")) {
      const e = primary();
      return (l) => !e(l);
    }
    if (eat("all()")) return () => true;
    if (src.startsWith("has(", i)) {
      i += 4;
      const k = key();
      if (!eat(")")) fail("expected )");
      return (l) => has(l, k);
    }
    const k = key();
    if (eat("==")) {
      const v = str();
      return (l) => has(l, k) && l[k] === v;
    }
    if (eat("!=")) {
      const v = str();
      return (l) => !has(l, k) || l[k] !== v;
    }
    if (eat("not in")) {
      const vs = set();
      return (l) => !has(l, k) || !vs.includes(l[k]);
    }
    if (eat("in")) {
      const vs = set();
      return (l) => has(l, k) && vs.includes(l[k]);
    }
    return fail("expected ==, !=, in or not in");
  };
  const and = (): Selector => {
    let e = primary();
    while (eat("&&")) {
      const a = e;
      const b = primary();
      e = (l) => a(l) && b(l);
    }
    return e;
  };
  const or = (): Selector => {
    let e = and();
    while (eat("||")) {
      const a = e;
      const b = and();
      e = (l) => a(l) || b(l);
    }
    return e;
  };
  const sel = or();
  ws();
  if (i < src.length) fail("unexpected text");
  return sel;
}

/** parseSelector, with a selector that does not parse (only a record written around the
 * validator has one) as the error instead of a throw. */
export function selectorOrError(text: string): Selector | SelectorError {
  try {
    return parseSelector(text);
  } catch (err) {
    if (err instanceof SelectorError) return err;
    throw err;
  }
}
