/** Maps a field path in a YAML document to file:line:col. */
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type FieldPath = (string | number)[];

/** Display form of a path: migration.concurrency.total, sources[1]. */
export function showPath(path: FieldPath): string {
  return path.reduce<string>((s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${seg}` : seg), '');
}

export class Positions {
  constructor(private readonly doc: Document, private readonly lines: LineCounter) {}

  /** Position of the deepest existing node on the path; with `key`, of that key inside the map at path. */
  at(path: FieldPath, key?: string): { line: number; col: number } {
    let node: unknown = this.doc.contents;
    for (const seg of path) {
      const child = isMap(node) || isSeq(node) ? node.get(seg, true) : undefined;
      if (child === undefined || child === null) break;
      node = child;
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
      if (pair && isScalar(pair.key) && pair.key.range) return this.pos(pair.key.range[0]);
    }
    const range = (node as Node | null)?.range;
    return range ? this.pos(range[0]) : { line: 1, col: 1 };
  }

  private pos(offset: number): { line: number; col: number } {
    return this.lines.linePos(offset);
  }
}
