"""The strict YAML reader: YAML 1.2 scalars, refused YAML 1.1 surprises, lines per key path."""

from __future__ import annotations

import pytest

from harborbench.profile.strict_yaml import StrictYamlError, load_strict


def problems_of(text: str) -> list[tuple[int | None, tuple[str | int, ...], str]]:
    with pytest.raises(StrictYamlError) as info:
        load_strict(text)
    return [(p.line, p.path, p.message) for p in info.value.problems]


def test_scalars_follow_yaml_1_2() -> None:
    data, _ = load_strict(
        "t: true\nf: FALSE\ni: 42\nx: 0x1f\nu: 1_000\ne: 1e3\nd: 2.5\n"
        "day: 2024-01-31\nnull_: ~\ns: hello\nq: 'yes'\n"
    )
    assert data == {
        "t": True,
        "f": False,
        "i": 42,
        "x": 31,
        "u": 1000,
        "e": 1000.0,
        "d": 2.5,
        "day": "2024-01-31",  # dates stay text
        "null_": None,
        "s": "hello",
        "q": "yes",  # quoted: text, as written
    }


def test_lines_are_recorded_per_key_path() -> None:
    data, lines = load_strict("a:\n  b: 1\n  c:\n    - x\n    - {d: 2}\ne: 3\n")
    assert data == {"a": {"b": 1, "c": ["x", {"d": 2}]}, "e": 3}
    assert lines == {
        ("a",): 1,
        ("a", "b"): 2,
        ("a", "c"): 3,
        ("a", "c", 0): 4,
        ("a", "c", 1): 5,
        ("a", "c", 1, "d"): 5,
        ("e",): 6,
    }


def test_empty_document_is_none() -> None:
    assert load_strict("") == (None, {})
    assert load_strict("# only a comment\n") == (None, {})


def test_every_problem_is_listed_in_order() -> None:
    found = problems_of("a: on\nb: 1:30\nc: 010\na: 2\nlist: [y, N]\n")
    assert [(line, path) for line, path, _ in found] == [
        (1, ("a",)),
        (2, ("b",)),
        (3, ("c",)),
        (4, ("a",)),
        (5, ("list", 0)),
        (5, ("list", 1)),
    ]
    assert "duplicate key 'a' (first on line 1)" in found[3][2]
    assert "octal" in found[2][2]


def test_a_yaml11_boolean_key_is_refused() -> None:
    assert problems_of("on: push\n")[0][:2] == (1, ())


def test_merge_keys_and_recursive_aliases_are_refused() -> None:
    assert problems_of("base: &b {x: 1}\nother:\n  <<: *b\n")[0] == (
        3,
        ("other",),
        "merge keys (<<) are not supported; write the keys out",
    )
    assert "recursive alias" in problems_of("a: &a [*a]\n")[0][2]


def test_aliases_are_expanded() -> None:
    data, _ = load_strict("a: &x {k: 1}\nb: *x\n")
    assert data == {"a": {"k": 1}, "b": {"k": 1}}


def test_syntax_errors_have_a_line_and_no_snippet() -> None:
    found = problems_of("a: 1\nb: [1, 2\nc: 3\n")
    assert len(found) == 1
    line, path, message = found[0]
    assert (line, path) == (3, ())
    assert message.startswith("not valid YAML: ")
    assert "^" not in message  # PyYAML's snippet of the line is left out


def test_several_documents_are_refused() -> None:
    assert "expected a single document" in problems_of("a: 1\n---\nb: 2\n")[0][2]


def test_python_tags_are_refused() -> None:
    assert problems_of("a: !!python/object/apply:os.system [ls]\n") == [
        (1, ("a",), "the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed here")
    ]
    assert problems_of("a: !!set {x: null}\n")[0][2] == (
        "the tag 'tag:yaml.org,2002:set' is not allowed here"
    )
    line, path, message = problems_of("a: !!python/name:os.system ''\n")[0]
    assert (line, path) == (1, ("a",))
    assert "could not determine a constructor" in message


def test_a_long_document_is_refused_by_its_values_as_written() -> None:
    # 60,000 plain keys were refused with a message about aliases (there were none), after 7 s.
    from harborbench.profile.strict_yaml import MAX_WRITTEN_VALUES

    at_limit = "[" + ", ".join(["1"] * (MAX_WRITTEN_VALUES - 1)) + "]\n"  # the list + its items
    assert len(load_strict(at_limit)[0]) == MAX_WRITTEN_VALUES - 1
    keys = "".join(f"k{i}: {i}\n" for i in range(60_000))
    [(line, path, message)] = problems_of(keys)
    assert message == (
        "the document holds more than 20,000 values (keys, list items and scalars), far more "
        "than a profile needs; is it the right file?"
    )
    assert line == 10_000 and path == ()  # the composer stopped at value 20,001: k9999's
    assert "alias" not in message
    [(_, _, over)] = problems_of("[" + ", ".join(["1"] * MAX_WRITTEN_VALUES) + "]\n")
    assert over.startswith("the document holds more than 20,000 values (keys")
