"""The CEL strings extension, checked against the cel-spec conformance cases.

CASES is the data of cel-spec's ``tests/simple/testdata/string_ext.textproto`` (google/cel-spec,
the file as of 2025), one tuple per test: (section/name, expression, expected). ``expected`` is
the value, or ``Error(message)`` for an ``eval_error`` case. Tests whose expected value is
absent in the file check that the expression is ``true``. Left out: the three ``format_errors``
cases that need ``cel.expr.conformance.proto3.TestAllTypes`` messages (Gorax has no protobuf
types). ``reverse`` has no case in that file; cel-go's documented examples stand in for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.translator.conftest import base_graph, node
from translator import ExpressionError, Limits, compile_expression, validate_graph


@dataclass(frozen=True)
class Error:
    message: str


NO_OVERLOAD = Error("no such overload")

CASES: list[tuple[str, str, Any]] = [
    ("char_at/middle_index", r"'tacocat'.charAt(3)", "o"),
    ("char_at/end_index", r"'tacocat'.charAt(7)", ""),
    ("char_at/multiple", r"'©αT'.charAt(0) == '©' && '©αT'.charAt(1) == 'α' && '©αT'.charAt(2) == 'T'", True),
    ("index_of/empty_index", r"'tacocat'.indexOf('')", 0),
    ("index_of/string_index", r"'tacocat'.indexOf('ac')", 1),
    ("index_of/nomatch", r"'tacocat'.indexOf('none') == -1", True),
    ("index_of/empty_index_offset", r"'tacocat'.indexOf('', 3) == 3", True),
    ("index_of/char_index", r"'tacocat'.indexOf('a', 3) == 5", True),
    ("index_of/string_index_offset", r"'tacocat'.indexOf('at', 3) == 5", True),
    ("index_of/unicode_char", r"'ta©o©αT'.indexOf('©') == 2", True),
    ("index_of/unicode_char_index", r"'ta©o©αT'.indexOf('©', 3) == 4", True),
    ("index_of/unicode_string_index", r"'ta©o©αT'.indexOf('©αT', 3) == 4", True),
    ("index_of/unicode_string_nomatch_index", r"'ta©o©αT'.indexOf('©α', 5) == -1", True),
    ("index_of/char_index_end", r"'ijk'.indexOf('k') == 2", True),
    ("index_of/string_with_space_fullmatch", r"'hello wello'.indexOf('hello wello') == 0", True),
    ("index_of/string_with_space_index", r"'hello wello'.indexOf('ello', 6) == 7", True),
    ("index_of/string_nomatch_index", r"'hello wello'.indexOf('elbo room!!') == -1", True),
    ("last_index_of/empty_string", r"''.lastIndexOf('@@') == -1", True),
    ("last_index_of/empty_argument", r"'tacocat'.lastIndexOf('') == 7", True),
    ("last_index_of/string", r"'tacocat'.lastIndexOf('at') == 5", True),
    ("last_index_of/string_nomatch", r"'tacocat'.lastIndexOf('none') == -1", True),
    ("last_index_of/empty_index", r"'tacocat'.lastIndexOf('', 3) == 3", True),
    ("last_index_of/char_index", r"'tacocat'.lastIndexOf('a', 3) == 1", True),
    ("last_index_of/unicode_char", r"'ta©o©αT'.lastIndexOf('©') == 4", True),
    ("last_index_of/unicode_char_index", r"'ta©o©αT'.lastIndexOf('©', 3) == 2", True),
    ("last_index_of/unicode_string_index", r"'ta©o©αT'.lastIndexOf('©α', 4) == 4", True),
    ("last_index_of/string_with_space_string_index", r"'hello wello'.lastIndexOf('ello', 6) == 1", True),
    ("last_index_of/string_with_space_string_nomatch", r"'hello wello'.lastIndexOf('low') == -1", True),
    (
        "last_index_of/string_with_space_string_with_space_nomatch",
        r"'hello wello'.lastIndexOf('elbo room!!') == -1",
        True,
    ),
    ("last_index_of/string_with_space_fullmatch", r"'hello wello'.lastIndexOf('hello wello') == 0", True),
    ("last_index_of/repeated_string", r"'bananananana'.lastIndexOf('nana', 7) == 6", True),
    ("ascii_casing/lowerascii", r"'TacoCat'.lowerAscii() == 'tacocat'", True),
    ("ascii_casing/lowerascii_unicode", r"'TacoCÆt'.lowerAscii() == 'tacocÆt'", True),
    ("ascii_casing/lowerascii_unicode_with_space", r"'TacoCÆt Xii'.lowerAscii() == 'tacocÆt xii'", True),
    ("ascii_casing/upperascii", r"'tacoCat'.upperAscii() == 'TACOCAT'", True),
    ("ascii_casing/upperascii_unicode", r"'tacoCαt'.upperAscii() == 'TACOCαT'", True),
    ("ascii_casing/upperascii_unicode_with_space", r"'TacoCÆt Xii'.upperAscii() == 'TACOCÆT XII'", True),
    ("replace/no_placeholder", r"'12 days 12 hours'.replace('{0}', '2') == '12 days 12 hours'", True),
    ("replace/basic", r"'{0} days {0} hours'.replace('{0}', '2') == '2 days 2 hours'", True),
    ("replace/chained", r"'{0} days {0} hours'.replace('{0}', '2', 1).replace('{0}', '23') == '2 days 23 hours'", True),
    ("replace/unicode", r"'1 ©αT taco'.replace('αT', 'o©α') == '1 ©o©α taco'", True),
    ("split/empty", r"'hello world'.split(' ') == ['hello', 'world']", True),
    ("split/zero_limit", r"'hello world events!'.split(' ', 0) == []", True),
    ("split/one_limit", r"'hello world events!'.split(' ', 1) == ['hello world events!']", True),
    ("split/unicode_negative_limit", r"'o©o©o©o'.split('©', -1) == ['o', 'o', 'o', 'o']", True),
    ("substring/start", r"'tacocat'.substring(4) == 'cat'", True),
    ("substring/start_with_max_length", r"'tacocat'.substring(7) == ''", True),
    ("substring/start_and_end", r"'tacocat'.substring(0, 4) == 'taco'", True),
    ("substring/start_and_end_equal_value", r"'tacocat'.substring(4, 4) == ''", True),
    ("substring/unicode_start_and_end", r"'ta©o©αT'.substring(2, 6) == '©o©α'", True),
    ("substring/unicode_start_and_end_equal_value", r"'ta©o©αT'.substring(7, 7) == ''", True),
    ("trim/blank_spaces_escaped_chars", r"' \f\n\r\t\vtext  '.trim() == 'text'", True),
    ("trim/unicode_space_chars_1", r"'\u0085\u00a0\u1680text'.trim() == 'text'", True),
    (
        "trim/unicode_space_chars_2",
        r"'text\u2000\u2001\u2002\u2003\u2004\u2004\u2006\u2007\u2008\u2009'.trim() == 'text'",
        True,
    ),
    ("trim/unicode_space_chars_3", r"'\u200atext\u2028\u2029\u202F\u205F\u3000'.trim() == 'text'", True),
    (
        "trim/unicode_no_trim",
        r"'\u180etext\u200b\u200c\u200d\u2060\ufeff'.trim() == '\u180etext\u200b\u200c\u200d\u2060\ufeff'",
        True,
    ),
    ("join/empty_separator", r"['x', 'y'].join() == 'xy'", True),
    ("join/dash_separator", r"['x', 'y'].join('-') == 'x-y'", True),
    ("join/empty_string_empty_separator", r"[].join() == ''", True),
    ("join/empty_string_dash_separator", r"[].join('-') == ''", True),
    ("quote/multiline", r'''strings.quote("first\nsecond") == "\"first\\nsecond\""''', True),
    ("quote/escaped", r'''strings.quote("bell\a") == "\"bell\\a\""''', True),
    ("quote/backspace", r'''strings.quote("\bbackspace") == "\"\\bbackspace\""''', True),
    ("quote/form_feed", r'''strings.quote("\fform feed") == "\"\\fform feed\""''', True),
    ("quote/carriage_return", r'''strings.quote("carriage \r return") == "\"carriage \\r return\""''', True),
    ("quote/horizontal_tab", r'''strings.quote("horizontal tab\t") == "\"horizontal tab\\t\""''', True),
    ("quote/vertical_tab", r'''strings.quote("vertical \v tab") == "\"vertical \\v tab\""''', True),
    ("quote/double_slash", r'''strings.quote("double \\\\ slash") == "\"double \\\\\\\\ slash\""''', True),
    (
        "quote/two_escape_sequences",
        r'''strings.quote("two escape sequences \\a\\n") == "\"two escape sequences \\\\a\\\\n\""''',
        True,
    ),
    ("quote/verbatim", r'''strings.quote("verbatim") == "\"verbatim\""''', True),
    ("quote/ends_with", r'''strings.quote("ends with \\") == "\"ends with \\\\\""''', True),
    ("quote/starts_with", r'''strings.quote("\\ starts with") == "\"\\\\ starts with\""''', True),
    ("quote/printable_unicode", r'''strings.quote("printable unicode😀") == "\"printable unicode😀\""''', True),
    ("quote/mid_string_quote", r'''strings.quote("mid string \" quote") == "\"mid string \\\" quote\""''', True),
    (
        "quote/single_quote_with_double_quote",
        r'''strings.quote('single-quote with "double quote"') == "\"single-quote with \\\"double quote\\\"\""''',
        True,
    ),
    ("quote/size_unicode_char", r'''strings.quote("size('ÿ')") == "\"size('ÿ')\""''', True),
    ("quote/size_unicode_string", r'''strings.quote("size('πέντε')") == "\"size('πέντε')\""''', True),
    ("quote/unicode", r'''strings.quote("завтра") == "\"завтра\""''', True),
    ("quote/unicode_code_points", r"""strings.quote("\U0001F431\U0001F600\U0001F61B")""", '"🐱😀😛"'),
    ("quote/unicode_2", r'''strings.quote("ta©o©αT") == "\"ta©o©αT\""''', True),
    ("quote/empty_quote", r"""strings.quote("")""", '""'),
    ("format/no-op", r""""no substitution".format([])""", "no substitution"),
    (
        "format/mid-string substitution",
        r""""str is %s and some more".format(["filler"])""",
        "str is filler and some more",
    ),
    ("format/percent escaping", r""""%% and also %%".format([])""", "% and also %"),
    ("format/substitution inside escaped percent signs", r""""%%%s%%".format(["text"])""", "%text%"),
    (
        "format/substitution with one escaped percent sign on the right",
        r""""%s%%".format(["percent on the right"])""",
        "percent on the right%",
    ),
    (
        "format/substitution with one escaped percent sign on the left",
        r""""%%%s".format(["percent on the left"])""",
        "%percent on the left",
    ),
    (
        "format/multiple substitutions",
        r""""%d %d %d, %s %s %s, %d %d %d, %s %s %s".format([1, 2, 3, "A", "B", "C", 4, 5, 6, "D", "E", "F"])""",
        "1 2 3, A B C, 4 5 6, D E F",
    ),
    ("format/percent sign escape sequence support", r""""%%escaped %s%%".format(["percent"])""", "%escaped percent%"),
    ("format/fixed point formatting clause", r""""%.3f".format([1.2345])""", "1.234"),
    ("format/binary formatting clause", r""""this is 5 in binary: %b".format([5])""", "this is 5 in binary: 101"),
    (
        "format/uint support for binary formatting",
        r""""unsigned 64 in binary: %b".format([uint(64)])""",
        "unsigned 64 in binary: 1000000",
    ),
    (
        "format/bool support for binary formatting",
        r""""bit set from bool: %b".format([true])""",
        "bit set from bool: 1",
    ),
    ("format/octal formatting clause", r""""%o".format([11])""", "13"),
    (
        "format/uint support for octal formatting clause",
        r""""this is an unsigned octal: %o".format([uint(65535)])""",
        "this is an unsigned octal: 177777",
    ),
    (
        "format/lowercase hexadecimal formatting clause",
        r""""%x is 20 in hexadecimal".format([30])""",
        "1e is 20 in hexadecimal",
    ),
    (
        "format/uppercase hexadecimal formatting clause",
        r""""%X is 20 in hexadecimal".format([30])""",
        "1E is 20 in hexadecimal",
    ),
    (
        "format/unsigned support for hexadecimal formatting clause",
        r""""%X is 6000 in hexadecimal".format([uint(6000)])""",
        "1770 is 6000 in hexadecimal",
    ),
    (
        "format/string support with hexadecimal formatting clause",
        r""""%x".format(["Hello world!"])""",
        "48656c6c6f20776f726c6421",
    ),
    (
        "format/string support with uppercase hexadecimal formatting clause",
        r""""%X".format(["Hello world!"])""",
        "48656C6C6F20776F726C6421",
    ),
    (
        "format/byte support with hexadecimal formatting clause",
        r""""%x".format([b"byte string"])""",
        "6279746520737472696e67",
    ),
    (
        "format/byte support with uppercase hexadecimal formatting clause",
        r""""%X".format([b"byte string"])""",
        "6279746520737472696E67",
    ),
    ("format/scientific notation formatting clause", r""""%.6e".format([1052.032911275])""", "1.052033e+03"),
    ("format/default precision for fixed-point clause", r""""%f".format([2.71828])""", "2.718280"),
    ("format/default precision for scientific notation", r""""%e".format([2.71828])""", "2.718280e+00"),
    ("format/NaN support for scientific notation", r""""%e".format([double("NaN")])""", "NaN"),
    ("format/positive infinity support for scientific notation", r""""%e".format([double("Infinity")])""", "Infinity"),
    (
        "format/negative infinity support for scientific notation",
        r""""%e".format([double("-Infinity")])""",
        "-Infinity",
    ),
    ("format/NaN support for decimal", r""""%d".format([double("NaN")])""", "NaN"),
    ("format/positive infinity support for decimal", r""""%d".format([double("Infinity")])""", "Infinity"),
    ("format/negative infinity support for decimal", r""""%d".format([double("-Infinity")])""", "-Infinity"),
    ("format/NaN support for fixed-point", r""""%f".format([double("NaN")])""", "NaN"),
    ("format/positive infinity support for fixed-point", r""""%f".format([double("Infinity")])""", "Infinity"),
    ("format/negative infinity support for fixed-point", r""""%f".format([double("-Infinity")])""", "-Infinity"),
    ("format/uint support for decimal clause", r""""%d".format([uint(64)])""", "64"),
    ("format/null support for string", r""""%s".format([null])""", "null"),
    ("format/int support for string", r""""%s".format([999999999999])""", "999999999999"),
    ("format/bytes support for string", r""""%s".format([b"xyz"])""", "xyz"),
    ("format/type() support for string", r""""%s".format([type("test string")])""", "string"),
    (
        "format/timestamp support for string",
        r""""%s".format([timestamp("2023-02-03T23:31:20+00:00")])""",
        "2023-02-03T23:31:20Z",
    ),
    ("format/duration support for string", r""""%s".format([duration("1h45m47s")])""", "6347s"),
    (
        "format/list support for string",
        r""""%s".format([["abc", 3.14, null, [9, 8, 7, 6], timestamp("2023-02-03T23:31:20Z")]])""",
        "[abc, 3.14, null, [9, 8, 7, 6], 2023-02-03T23:31:20Z]",
    ),
    (
        "format/map support for string",
        r""""%s".format([{"key1": b"xyz", "key5": null, "key2": duration("2h"), "key4": true, "key3": 2.71828}])""",
        "{key1: xyz, key2: 7200s, key3: 2.71828, key4: true, key5: null}",
    ),
    (
        "format/map support (all key types)",
        r""""%s".format([{1: "value1", uint(2): "value2", true: double("NaN")}])""",
        "{1: value1, 2: value2, true: NaN}",
    ),
    ("format/boolean support for %s", r""""%s, %s".format([true, false])""", "true, false"),
    ("format/dyntype support for string formatting clause", r""""%s".format([dyn("a string")])""", "a string"),
    (
        "format/dyntype support for numbers with string formatting clause",
        r""""%s, %s".format([dyn(32), dyn(56.8)])""",
        "32, 56.8",
    ),
    ("format/dyntype support for integer formatting clause", r""""%d".format([dyn(128)])""", "128"),
    ("format/dyntype support for integer formatting clause (unsigned)", r""""%d".format([dyn(256u)])""", "256"),
    ("format/dyntype support for hex formatting clause", r""""%x".format([dyn(22)])""", "16"),
    ("format/dyntype support for hex formatting clause (uppercase)", r""""%X".format([dyn(26)])""", "1A"),
    ("format/dyntype support for unsigned hex formatting clause", r""""%x".format([dyn(500u)])""", "1f4"),
    ("format/dyntype support for fixed-point formatting clause", r""""%.3f".format([dyn(4.5)])""", "4.500"),
    ("format/dyntype support for scientific notation", r""""%e".format([dyn(2.71828)])""", "2.718280e+00"),
    (
        "format/dyntype NaN/infinity support",
        r""""%s".format([[double("NaN"), double("Infinity"), double("-Infinity")]])""",
        "[NaN, Infinity, -Infinity]",
    ),
    (
        "format/dyntype support for timestamp",
        r""""%s".format([dyn(timestamp("2009-11-10T23:00:00Z"))])""",
        "2009-11-10T23:00:00Z",
    ),
    ("format/dyntype support for duration", r""""%s".format([dyn(duration("8747s"))])""", "8747s"),
    ("format/dyntype support for lists", r""""%s".format([dyn([6, 4.2, "a string"])])""", "[6, 4.2, a string]"),
    (
        "format/dyntype support for maps",
        r""""%s".format([{"strKey":"x", 6:duration("422s"), true:42}])""",
        "{6: 422s, strKey: x, true: 42}",
    ),
    (
        "format_errors/unrecognized formatting clause",
        r""""%a".format([1])""",
        Error('could not parse formatting clause: unrecognized formatting clause "a"'),
    ),
    ("format_errors/out of bounds arg index", r""""%d %d %d".format([0, 1])""", Error("index 2 out of range")),
    (
        "format_errors/string substitution is not allowed with binary clause",
        r""""string is %b".format(["abc"])""",
        Error("error during formatting: only integers and bools can be formatted as binary, was given string"),
    ),
    (
        "format_errors/duration substitution not allowed with decimal clause",
        r""""%d".format([duration("30m2s")])""",
        Error(
            "error during formatting: decimal clause can only be used on integers, was given google.protobuf.Duration"
        ),
    ),
    (
        "format_errors/string substitution not allowed with octal clause",
        r""""octal: %o".format(["a string"])""",
        Error("error during formatting: octal clause can only be used on integers, was given string"),
    ),
    (
        "format_errors/double substitution not allowed with hex clause",
        r""""double is %x".format([0.5])""",
        Error(
            "error during formatting: only integers, byte buffers, and strings can be formatted as hex, was given double"
        ),
    ),
    (
        "format_errors/uppercase not allowed for scientific clause",
        r""""double is %E".format([0.5])""",
        Error('could not parse formatting clause: unrecognized formatting clause "E"'),
    ),
    (
        "format_errors/null not allowed for %d",
        r""""null: %d".format([null])""",
        Error("error during formatting: decimal clause can only be used on integers, was given null_type"),
    ),
    (
        "format_errors/null not allowed for %e",
        r""""null: %e".format([null])""",
        Error("error during formatting: scientific clause can only be used on doubles, was given null_type"),
    ),
    (
        "format_errors/null not allowed for %f",
        r""""null: %f".format([null])""",
        Error("error during formatting: fixed-point clause can only be used on doubles, was given null_type"),
    ),
    (
        "format_errors/null not allowed for %x",
        r""""null: %x".format([null])""",
        Error(
            "error during formatting: only integers, byte buffers, and strings can be formatted as hex, was given null_type"
        ),
    ),
    (
        "format_errors/null not allowed for %X",
        r""""null: %X".format([null])""",
        Error(
            "error during formatting: only integers, byte buffers, and strings can be formatted as hex, was given null_type"
        ),
    ),
    (
        "format_errors/null not allowed for %b",
        r""""null: %b".format([null])""",
        Error("error during formatting: only integers and bools can be formatted as binary, was given null_type"),
    ),
    (
        "format_errors/null not allowed for %o",
        r""""null: %o".format([null])""",
        Error("error during formatting: octal clause can only be used on integers, was given null_type"),
    ),
    ("value_errors/charat_out_of_range", r"'tacocat'.charAt(30) == ''", Error("index out of range: 30")),
    ("value_errors/indexof_out_of_range", r"'tacocat'.indexOf('a', 30) == -1", Error("index out of range: 30")),
    (
        "value_errors/lastindexof_negative_index",
        r"'tacocat'.lastIndexOf('a', -1) == -1",
        Error("index out of range: -1"),
    ),
    ("value_errors/lastindexof_out_of_range", r"'tacocat'.lastIndexOf('a', 30) == -1", Error("index out of range: 30")),
    ("value_errors/substring_out_of_range", r"'tacocat'.substring(40) == 'cat'", Error("index out of range: 40")),
    ("value_errors/substring_negative_index", r"'tacocat'.substring(-1) == 'cat'", Error("index out of range: -1")),
    (
        "value_errors/substring_end_index_out_of_range",
        r"'tacocat'.substring(1, 50) == 'cat'",
        Error("index out of range: 50"),
    ),
    (
        "value_errors/substring_begin_index_out_of_range",
        r"'tacocat'.substring(49, 50) == 'cat'",
        Error("index out of range: 49"),
    ),
    (
        "value_errors/substring_end_index_greater_than_begin_index",
        r"'tacocat'.substring(4, 3) == ''",
        Error("invalid substring range. start: 4, end: 3"),
    ),
    ("type_errors/charat_invalid_type", r"42.charAt(2) == ''", NO_OVERLOAD),
    ("type_errors/charat_invalid_argument", r"'hello'.charAt(true) == ''", NO_OVERLOAD),
    ("type_errors/indexof_unary_invalid_type", r"24.indexOf('2') == 0", NO_OVERLOAD),
    ("type_errors/indexof_unary_invalid_argument", r"'hello'.indexOf(true) == 1", NO_OVERLOAD),
    ("type_errors/indexof_binary_invalid_argument", r"42.indexOf('4', 0) == 0", NO_OVERLOAD),
    ("type_errors/indexof_binary_invalid_argument_2", r"'42'.indexOf(4, 0) == 0", NO_OVERLOAD),
    ("type_errors/indexof_binary_both_invalid_arguments", r"'42'.indexOf('4', '0') == 0", NO_OVERLOAD),
    ("type_errors/indexof_ternary_invalid_arguments", r"'42'.indexOf('4', 0, 1) == 0", NO_OVERLOAD),
    ("type_errors/split_invalid_type", r"42.split('2') == ['4']", NO_OVERLOAD),
    ("type_errors/replace_invalid_type", r"42.replace(2, 1) == '41'", NO_OVERLOAD),
    ("type_errors/replace_binary_invalid_argument", r"'42'.replace(2, 1) == '41'", NO_OVERLOAD),
    ("type_errors/replace_binary_invalid_argument_2", r"'42'.replace('2', 1) == '41'", NO_OVERLOAD),
    ("type_errors/replace_ternary_invalid_argument", r"42.replace('2', '1', 1) == '41'", NO_OVERLOAD),
    ("type_errors/replace_ternary_invalid_argument_2", r"'42'.replace(2, '1', 1) == '41'", NO_OVERLOAD),
    ("type_errors/replace_ternary_invalid_argument_3", r"'42'.replace('2', 1, 1) == '41'", NO_OVERLOAD),
    ("type_errors/replace_ternary_invalid_argument_4", r"'42'.replace('2', '1', '1') == '41'", NO_OVERLOAD),
    ("type_errors/replace_quaternary_invalid_argument", r"'42'.replace('2', '1', 1, false) == '41'", NO_OVERLOAD),
    ("type_errors/split_invalid_type_empty_arg", r"42.split('') == ['4', '2']", NO_OVERLOAD),
    ("type_errors/split_invalid_argument", r"'42'.split(2) == ['4']", NO_OVERLOAD),
    ("type_errors/split_binary_invalid_type", r"42.split('2', '1') == ['4']", NO_OVERLOAD),
    ("type_errors/split_binary_invalid_argument", r"'42'.split(2, 1) == ['4']", NO_OVERLOAD),
    ("type_errors/split_binary_invalid_argument_2", r"'42'.split('2', '1') == ['4']", NO_OVERLOAD),
    ("type_errors/split_ternary_invalid_argument", r"'42'.split('2', 1, 1) == ['4']", NO_OVERLOAD),
    ("type_errors/substring_ternary_invalid_argument", r"'hello'.substring(1, 2, 3) == ''", NO_OVERLOAD),
    ("type_errors/substring_binary_invalid_type", r"30.substring(true, 3) == ''", NO_OVERLOAD),
    ("type_errors/substring_binary_invalid_argument", r"'tacocat'.substring(true, 3) == ''", NO_OVERLOAD),
    ("type_errors/substring_binary_invalid_argument_2", r"'tacocat'.substring(0, false) == ''", NO_OVERLOAD),
]

#: cel-go's documented examples for the functions the conformance file has few or no cases for.
EXAMPLES: list[tuple[str, str, Any]] = [
    ("reverse/ascii", r"'gums'.reverse()", "smug"),
    ("reverse/unicode", r"'John Smith'.reverse() == 'htimS nhoJ' && '©αT'.reverse() == 'Tα©'", True),
    ("reverse/empty", r"''.reverse()", ""),
    ("char_at/negative", r"'hello'.charAt(-1)", Error("index out of range: -1")),
    ("index_of/docs", r"'hello mellow'.indexOf('ello', 2)", 7),
    ("index_of/empty_offset", r"'hello mellow'.indexOf('', 2)", 2),
    ("last_index_of/docs", r"'hello mellow'.lastIndexOf('ello', 6)", 1),
    (
        "replace/limit",
        r"['hello hello'.replace('he', 'we', -1), 'hello hello'.replace('he', 'we', 1), 'hello hello'.replace('he', 'we', 0)]",
        ["wello wello", "wello hello", "hello hello"],
    ),
    (
        "split/limits",
        r"['hello hello hello'.split(' ', 2), 'hello hello hello'.split(' ', -1)]",
        [["hello", "hello hello"], ["hello", "hello", "hello"]],
    ),
    ("split/code_points", r"['a©b'.split(''), 'a©b'.split('', 2)]", [["a", "©", "b"], ["a", "©b"]]),
    ("join/not_strings", r"[1, 2].join()", NO_OVERLOAD),
    ("format/double_as_string", r""""%s %s %s".format([1.0, 1000000.0, 0.5])""", "1 1e+06 0.5"),
]

#: cel-python's lexer reads `42.` as a double (and `24.indexOf` as `24. in dexOf`), so these
#: receivers are refused with another error than the overload one; refused they are.
_INT_RECEIVER = ("42.", "24.", "30.")
#: Cases the expression engine cannot run, with the reason.
ENGINE_GAPS = {
    "format/map support (all key types)": "cel-python cannot build a map with both 1 and true as keys",
}


def _case(case: tuple[str, str, Any]) -> Any:
    gap = ENGINE_GAPS.get(case[0])
    return pytest.param(*case, id=case[0], marks=[pytest.mark.xfail(reason=gap, strict=True)] if gap else [])


@pytest.mark.parametrize("name, text, expected", [_case(case) for case in CASES + EXAMPLES])
def test_strings_extension(name: str, text: str, expected: Any) -> None:
    scope = {"str_var": "%s"}
    if not isinstance(expected, Error):
        assert compile_expression(text).evaluate(scope) == expected
        return
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text).evaluate(scope)
    message = caught.value.message
    if expected is NO_OVERLOAD:
        assert "cannot be applied" in message or text.startswith(_INT_RECEIVER)
    else:
        assert expected.message in message


@pytest.mark.parametrize(
    "text, value, expected",
    [
        ("str_var.format(['filler'])", "%s", "filler"),
        (
            'str_var.format([1, 2, 3, "A", "B", "C", 4, 5, 6, "D", "E", "F"])',
            "%d %d %d, %s %s %s, %d %d %d, %s %s %s",
            "1 2 3, A B C, 4 5 6, D E F",
        ),
        ("str_var.format(['text'])", "%%%s%%", "%text%"),
        ("str_var.format([1.2345])", "%.3f", "1.234"),
        ("str_var.format([5])", "%b", "101"),
        ("str_var.format([1052.032911275])", "%.6e", "1.052033e+03"),
        ("str_var.format([2.71828])", "%f", "2.718280"),
    ],
)
def test_format_of_a_string_variable(text: str, value: str, expected: str) -> None:
    """The conformance file's ``format`` cases whose template is a variable (``str_var``)."""
    assert compile_expression(text).evaluate({"str_var": value}) == expected


def test_strings_functions_are_known_to_validation() -> None:
    refs = compile_expression("strings.quote(trigger.a.trim().lowerAscii()) + ['x'].join('-')").references
    assert {"strings.quote", "trim", "lowerAscii", "join"} <= refs.functions
    assert "strings" not in refs.roots


def test_replace_on_a_large_string_stays_within_the_size_limit() -> None:
    scope = {"trigger": {"text": "a" * 1_000_000}}
    with pytest.raises(ExpressionError, match="larger than 1000000 characters") as caught:
        compile_expression("trigger.text.replace('a', 'aa')").evaluate(scope)
    assert caught.value.code == "expression_limit"
    with pytest.raises(ExpressionError, match="larger than 10 characters"):
        compile_expression("'abcdef'.replace('', '-')").evaluate({}, limits=Limits(max_result_bytes=10))


def test_repeated_replace_on_a_large_string_is_counted_by_the_cost_limit() -> None:
    scope = {"trigger": {"text": "a" * 900_000}}
    one = "trigger.text.replace('a', 'b')"
    assert len(compile_expression(one).evaluate(scope)) == 900_000
    repeated = one + "".join(".replace('b', 'a').replace('a', 'b')" for _ in range(8))
    with pytest.raises(ExpressionError, match="more than 20000 steps") as caught:
        compile_expression(repeated).evaluate(scope)
    assert caught.value.code == "expression_limit"


def test_split_into_too_many_parts_is_refused() -> None:
    scope = {"trigger": {"text": "," * 2000}}
    assert len(compile_expression("trigger.text.split(',')").evaluate(scope)) == 2001
    with pytest.raises(ExpressionError, match="split"):
        compile_expression("trigger.text.split(',')").evaluate(scope, limits=Limits(max_result_bytes=1000))


@pytest.mark.parametrize(
    "template, problem",
    [
        ("{{ trigger.body.name.lowerAscii() }}", None),
        ("{{ strings.quote(trigger.body.name) }}", None),
        ("{{ trigger.body.name.lowerAsci() }}", "there is no function 'lowerAsci'; did you mean 'lowerAscii'?"),
        ("{{ trigger.body.tags.joni(',') }}", "there is no function 'joni'; did you mean 'join'?"),
    ],
)
def test_validation_knows_the_strings_functions(registry: Any, template: str, problem: str | None) -> None:
    graph = base_graph()
    node(graph, "notify")["config"]["url"] = template
    errors = validate_graph(graph, registry=registry)
    assert [error.message for error in errors] == ([] if problem is None else [f"{template}: {problem}"])
