import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { optionTable, renderReadmeCells } from '../../lib/options-table.js';

/** README's "### Options" table: option name -> its default, allowed and meaning cells. */
function readmeRows(): Map<string, { default: string; allowed: string; meaning: string }> {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Options\n'));
  const table = section.slice(section.indexOf('| option | default | allowed | meaning |'));
  const rows = new Map<string, { default: string; allowed: string; meaning: string }>();
  for (const line of table.split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const [name, byDefault, allowed, meaning] = line
      .slice(1, -1)
      .split(' | ')
      .map((cell) => cell.trim());
    rows.set((name as string).replace(/`/g, ''), {
      default: byDefault as string,
      allowed: allowed as string,
      meaning: meaning as string,
    });
  }
  return rows;
}

describe('README options table', () => {
  const rows = readmeRows();

  it('has a row for every option of the table, and only known options', () => {
    const compound = ['cpus', 'auth', 'allow', 'storm', 'tcp'];
    expect([...rows.keys()].sort()).toEqual(
      [...optionTable.map((o) => o.name), ...compound].sort(),
    );
  });

  it.each(optionTable.map((o) => [o.name, o] as const))(
    '%s: default and allowed cells are the table rendered, meaning starts with its doc',
    (name, spec) => {
      const row = rows.get(name);
      expect(row).toBeDefined();
      const cells = renderReadmeCells(spec);
      expect(row?.default).toBe(cells.default);
      expect(row?.allowed).toBe(cells.allowed);
      expect(row?.meaning.startsWith(spec.doc)).toBe(true);
    },
  );
});
