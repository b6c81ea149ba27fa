import { describe, expect, it } from "vitest";
import { checkCel, checkTemplate } from "./cel";

describe("checkCel", () => {
  it.each([
    "trigger.body.status == 'success'",
    "trigger.body.environment in ['staging', 'production']",
    "[steps.api, steps.db].filter(s, !has(s.error) && s.status == 200).size()",
    "a ? b : c ? d : -e",
    "{'a': 1, 'b': [1, 2.5, 3u, 0x1F]}",
    'r"raw\\d" + b\'bytes\' + """triple"""',
    "x[0].y['z'] % 2 != 1",
    "google.protobuf.Duration{seconds: 5}",
    "size(steps.each) > 0 // trailing comment",
  ])("accepts %s", (src) => {
    expect(checkCel(src)).toBeNull();
  });

  it.each([
    ["trigger.body.status == ", "expression ends too early"],
    ["(a + b", "expected ')'"],
    ["[1, 2", "expected ','"],
    ["'unterminated", "unterminated string"],
    ["a.", "expected a field name"],
    ["a ? b", "expected ':'"],
    ["a b", "unexpected 'b'"],
    ["a # b", "unexpected character '#'"],
    ["", "empty"],
    ["while", "reserved"],
  ])("rejects %s", (src, message) => {
    const problem = checkCel(src);
    expect(problem).not.toBeNull();
    expect(problem!.message).toContain(message);
  });

  it("points at the problem", () => {
    expect(checkCel("a + (b")!.offset).toBe(6);
  });
});

describe("checkTemplate", () => {
  it.each(["plain text", "Deployed {{ trigger.body.repo }} to {{ trigger.body.env }}", "{{ {'a': {'b': 1}} }}", "{{ '}}' + x }}"])("accepts %s", (src) => {
    expect(checkTemplate(src)).toBeNull();
  });

  it.each([
    ["Hello {{ trigger.name", "not closed"],
    ["Hello }} there", "without a matching"],
    ["{{ }}", "empty template"],
    ["{{ a + }}", "ends too early"],
    ["ok {{ a }} then {{ (b }}", "expected ')'"],
  ])("rejects %s", (src, message) => {
    expect(checkTemplate(src)!.message).toContain(message);
  });

  it("offsets into the whole string", () => {
    expect(checkTemplate("abc {{ a + }}")!.offset).toBe(11);
  });
});
