// Input PostgreSQL cannot store or that costs more than it is worth to walk: NUL characters
// (text and jsonb refuse them), unpaired UTF-16 surrogates (jsonb refuses them; text would store
// U+FFFD, merging distinct ids), and values nested deeper than any Herald schema needs. The walk
// is iterative, so hostile depth cannot overflow it. Requests are checked in http/input-guard.ts,
// imported sheets' cells in templates/template-import.ts.

export const maxInputDepth = 32;
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const isUnsafeText = (text: string): boolean => text.includes('\u0000') || loneSurrogate.test(text);

/** The first problem in `value`, as [field, message], or undefined when it is acceptable. */
export function findUnsafeInput(value: unknown, root: string): [string, string] | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value: v, path, depth } = item;
    if (typeof v === 'string') {
      if (isUnsafeText(v)) return [path, 'contains a NUL character or an unpaired UTF-16 surrogate'];
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxInputDepth) return [path, `is nested deeper than ${String(maxInputDepth)} levels`];
    for (const [key, child] of Object.entries(v)) {
      if (isUnsafeText(key))
        return [`${path}/${key}`, 'has a key with a NUL character or an unpaired UTF-16 surrogate'];
      stack.push({ value: child, path: `${path}/${key}`, depth: depth + 1 });
    }
  }
  return undefined;
}
