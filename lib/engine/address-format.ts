/**
 * Formats a source address from its raw bytes (network order, IPv4 in the first 4) as the events
 * show it: `a.b.c.d:port` for IP version 4, `[x:y::z]:port` for 6 (RFC 5952: lower case, the
 * longest run of two or more zero groups shortened to `::`). Version 0 (unknown) gives ''.
 */
export function formatAddressBytes(ipVersion: 0 | 4 | 6, ip: Uint8Array, port: number): string {
  if (ipVersion === 4) return `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}:${port}`;
  if (ipVersion !== 6) return '';
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] as number) << 8) | (ip[i + 1] as number));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]): string => list.map((g) => g.toString(16)).join(':');
  const text =
    bestStart < 0
      ? hex(groups)
      : `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
  return `[${text}]:${port}`;
}
