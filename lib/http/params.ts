/** A request that cannot be answered as asked: the API answers it with this status and message. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The query of `url`, every key checked against `known`, each given at most once. */
export function queryParams(url: URL, known: readonly string[]): Map<string, string> {
  const params = new Map<string, string>();
  for (const [key, value] of url.searchParams) {
    if (!known.includes(key)) {
      const allowed = known.length === 0 ? 'none' : known.join(', ');
      throw new HttpError(400, `unknown query parameter "${key}"; allowed: ${allowed}`);
    }
    if (params.has(key)) throw new HttpError(400, `query parameter "${key}" is given twice`);
    params.set(key, value);
  }
  return params;
}

/** A query integer within `[min, max]`. */
export function intParam(name: string, text: string, min: number, max: number): number {
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new HttpError(
      400,
      `query parameter "${name}" must be an integer from ${min} to ${max}, got "${text}"`,
    );
  }
  return value;
}

const maxU64 = 2n ** 64n - 1n;

/** A host id in a path: a decimal u64, as events and `hosts()` print it. */
export function hostIdParam(text: string): string {
  if (!/^[0-9]{1,20}$/.test(text) || BigInt(text) > maxU64) {
    throw new HttpError(
      400,
      `host id must be a decimal integer from 0 to ${maxU64}, got "${text.slice(0, 64)}"`,
    );
  }
  return BigInt(text).toString();
}
