/**
 * A CEL syntax checker for the editor: tokenizer plus recursive-descent parser of the CEL grammar,
 * so an expression field can flag mistakes as the user types. It checks syntax only; the server's
 * validation (`POST /workflows/{id}/validate`) remains the authority on names and types.
 */

export interface CelProblem {
  message: string;
  /** Offset in the checked text where the problem was found. */
  offset: number;
}

type TokKind = "num" | "str" | "ident" | "op" | "eof";
interface Tok {
  kind: TokKind;
  text: string;
  pos: number;
}

class CelSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

const OPS = ["&&", "||", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", ".", ",", "(", ")", "[", "]", "{", "}"];
const RESERVED = new Set(["as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"]);

function readString(src: string, start: number): number {
  // Handles optional r/b prefixes, single/double quotes and triple-quoted strings.
  let i = start;
  let raw = false;
  while (i < src.length && /[rRbB]/.test(src[i])) {
    if (src[i] === "r" || src[i] === "R") raw = true;
    i++;
  }
  const q = src[i];
  const triple = src.startsWith(q.repeat(3), i);
  const close = triple ? q.repeat(3) : q;
  i += close.length;
  while (i < src.length) {
    if (!raw && src[i] === "\\") {
      i += 2;
      continue;
    }
    if (!triple && src[i] === "\n") break;
    if (src.startsWith(close, i)) return i + close.length;
    i++;
  }
  throw new CelSyntaxError("unterminated string", start);
}

export function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "/" && src[i + 1] === "/") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === '"' || c === "'" || (/[rRbB]/.test(c) && /^[rRbB]{1,2}['"]/.test(src.slice(i, i + 3)))) {
      const end = readString(src, i);
      toks.push({ kind: "str", text: src.slice(i, end), pos: i });
      i = end;
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(src[i + 1] ?? ""))) {
      const m = /^(0x[0-9a-fA-F]+u?|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?u?)/.exec(src.slice(i))!;
      toks.push({ kind: "num", text: m[0], pos: i });
      i += m[0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      toks.push({ kind: "ident", text: m[0], pos: i });
      i += m[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new CelSyntaxError(`unexpected character '${c}'`, i);
    toks.push({ kind: "op", text: op, pos: i });
    i += op.length;
  }
  toks.push({ kind: "eof", text: "", pos: src.length });
  return toks;
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok {
    return this.toks[this.i];
  }
  private is(text: string): boolean {
    const t = this.peek();
    return (t.kind === "op" || t.kind === "ident") && t.text === text;
  }
  private eat(text: string): boolean {
    if (this.is(text)) {
      this.i++;
      return true;
    }
    return false;
  }
  private expect(text: string, what: string): void {
    if (!this.eat(text)) {
      const t = this.peek();
      throw new CelSyntaxError(`expected '${text}' ${what}, found ${t.kind === "eof" ? "end of expression" : `'${t.text}'`}`, t.pos);
    }
  }

  parse(): void {
    this.expr();
    const t = this.peek();
    if (t.kind !== "eof") throw new CelSyntaxError(`unexpected '${t.text}'`, t.pos);
  }

  private expr(): void {
    this.binary(0);
    if (this.eat("?")) {
      this.binary(0);
      this.expect(":", "in conditional");
      this.expr();
    }
  }

  private static readonly LEVELS = [["||"], ["&&"], ["==", "!=", "<", "<=", ">", ">=", "in"], ["+", "-"], ["*", "/", "%"]];

  private binary(level: number): void {
    if (level >= Parser.LEVELS.length) return this.unary();
    this.binary(level + 1);
    while (Parser.LEVELS[level].some((op) => this.is(op))) {
      this.i++;
      this.binary(level + 1);
    }
  }

  private unary(): void {
    while (this.eat("!") || this.eat("-"));
    this.member();
  }

  private member(): void {
    this.primary();
    for (;;) {
      if (this.eat(".")) {
        const t = this.peek();
        if (t.kind !== "ident") throw new CelSyntaxError("expected a field name after '.'", t.pos);
        this.i++;
        if (this.eat("(")) this.list(")");
        else if (this.is("{") && /^[A-Z]/.test(t.text)) this.messageInit();
      } else if (this.eat("[")) {
        this.expr();
        this.expect("]", "to close index");
      } else return;
    }
  }

  private list(close: string, entry: () => void = () => this.expr()): void {
    if (this.eat(close)) return;
    for (;;) {
      entry();
      if (this.eat(close)) return;
      this.expect(",", `or '${close}'`);
      if (this.eat(close)) return;
    }
  }

  private messageInit(): void {
    this.i++;
    this.list("}", () => {
      const f = this.peek();
      if (f.kind !== "ident") throw new CelSyntaxError("expected a field name", f.pos);
      this.i++;
      this.expect(":", "after field name");
      this.expr();
    });
  }

  private primary(): void {
    const t = this.peek();
    if (t.kind === "num" || t.kind === "str") {
      this.i++;
      return;
    }
    if (t.kind === "ident") {
      if (RESERVED.has(t.text)) throw new CelSyntaxError(`'${t.text}' is a reserved word`, t.pos);
      this.i++;
      if (this.eat("(")) this.list(")");
      else if (this.is("{") && /^[A-Z]/.test(t.text)) this.messageInit();
      return;
    }
    if (this.eat(".")) return this.primary();
    if (this.eat("(")) {
      this.expr();
      this.expect(")", "to close '('");
      return;
    }
    if (this.eat("[")) return this.list("]");
    if (this.eat("{")) {
      return this.list("}", () => {
        this.expr();
        this.expect(":", "between map key and value");
        this.expr();
      });
    }
    throw new CelSyntaxError(t.kind === "eof" ? "expression ends too early" : `unexpected '${t.text}'`, t.pos);
  }
}

/** Check bare CEL; returns the first problem or null. */
export function checkCel(src: string): CelProblem | null {
  if (src.trim() === "") return { message: "expression is empty", offset: 0 };
  try {
    new Parser(tokenize(src)).parse();
    return null;
  } catch (err) {
    if (err instanceof CelSyntaxError) return { message: err.message, offset: err.offset };
    throw err;
  }
}

/** Where the `}}` closing a template that starts its CEL at `start` is, or -1. */
function templateEnd(src: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < src.length) {
    const c = src[i];
    if (c === '"' || c === "'") {
      try {
        i = readString(src, i);
      } catch {
        return -1;
      }
      continue;
    }
    if (c === "}" && src[i + 1] === "}" && depth === 0) return i;
    if (c === "{") depth++;
    else if (c === "}") depth = Math.max(0, depth - 1);
    i++;
  }
  return -1;
}

/** Check a string that may hold `{{ CEL }}` templates; returns the first problem or null. */
export function checkTemplate(src: string): CelProblem | null {
  let i = 0;
  for (;;) {
    const open = src.indexOf("{{", i);
    const strayClose = src.indexOf("}}", i);
    if (open < 0) {
      return strayClose >= 0 ? { message: "'}}' without a matching '{{'", offset: strayClose } : null;
    }
    if (strayClose >= 0 && strayClose < open) return { message: "'}}' without a matching '{{'", offset: strayClose };
    const end = templateEnd(src, open + 2);
    if (end < 0) return { message: "'{{' is not closed by '}}'", offset: open };
    const inner = src.slice(open + 2, end);
    if (inner.trim() === "") return { message: "empty template '{{ }}'", offset: open };
    const problem = checkCel(inner);
    if (problem) return { message: problem.message, offset: open + 2 + problem.offset };
    i = end + 2;
  }
}
