"""Sources sent by callers are read within fixed limits, and whatever the text, reading one raises
RulesetInvalid with located diagnostics and nothing else; a source that loads also compiles."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from regelmotor import core
from regelmotor.cli.main import main
from regelmotor.core import errors
from regelmotor.core.cases import parse_cases
from regelmotor.core.errors import Diagnostic, RegelmotorError, RulesetInvalid
from regelmotor.core.loader import load_ruleset_file, load_ruleset_text
from tests.conftest import ROOT, ruleset_text
from tests.source_mutations import time_bound

# The classic "billion laughs": 342 bytes that expand to 9^9 (387 million) strings.
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{','.join(['*' + previous] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi",
                                                                                     strict=True))
BODY = """\
facts:
  alder: {type: int}
rules:
  - {id: r1, title: t, hjemmel: h1, when: alder > 1, then: {ok: true}}
outcomes:
  ok: {type: bool, default: false, combine: any}
"""


def diagnostics(text: str) -> list[Diagnostic]:
    with time_bound(20), pytest.raises(RulesetInvalid, match=r"regler\.yaml:\d+:\d+: ") as caught:
        load_ruleset_text(text, "regler.yaml")
    return caught.value.diagnostics


def _read_in_a_small_process(reader: str, text: str) -> dict[str, object]:
    """Read `text` in a child process whose address space is capped at 1 GiB (so that a reader that
    expands the aliases fails there instead of filling the machine); report its peak RSS growth."""
    script = textwrap.dedent(f"""
        import json, resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from regelmotor.core.cases import parse_cases
        from regelmotor.core.errors import RulesetInvalid
        from regelmotor.core.loader import load_ruleset_text
        text = sys.stdin.read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.monotonic()
        try:
            {reader}(text, "bomb.yaml")
            outcome = "accepted"
        except RulesetInvalid as exc:
            outcome = [str(d) for d in exc.diagnostics]
        except BaseException as exc:
            outcome = type(exc).__name__
        print(json.dumps({{"outcome": outcome, "seconds": time.monotonic() - start,
                          "growth_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], input=text, capture_output=True, text=True, timeout=120,
                          check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_an_alias_bomb_in_a_ruleset_is_refused_at_once_with_little_memory() -> None:
    assert len(ALIAS_BOMB) < 400
    result = _read_in_a_small_process("load_ruleset_text", ALIAS_BOMB)
    assert result["outcome"] == ["bomb.yaml:1:4: anchors and aliases are not allowed in a ruleset"]
    assert isinstance(result["growth_kib"], int) and result["growth_kib"] < 50_000  # generous: ~0 expected
    assert isinstance(result["seconds"], float) and result["seconds"] < 5


def test_an_alias_bomb_in_a_cases_file_is_refused_after_a_bounded_expansion() -> None:
    # Cases files may share facts with anchors and merge keys, so their expansion is counted instead.
    result = _read_in_a_small_process("parse_cases", ALIAS_BOMB)
    assert isinstance(result["outcome"], list) and len(result["outcome"]) == 1
    assert "the aliases in this source expand to more than 100,000 values" in result["outcome"][0]
    assert isinstance(result["growth_kib"], int) and result["growth_kib"] < 100_000
    assert isinstance(result["seconds"], float) and result["seconds"] < 10


def test_merge_keys_are_refused_in_a_ruleset() -> None:
    text = ruleset_text(BODY).replace("  alder: {type: int}", "  alder: {<<: {type: int}}")
    (diagnostic,) = diagnostics(text)
    assert diagnostic.message == "merge keys (<<) are not allowed in a ruleset"


def test_a_source_larger_than_the_cap_is_refused_before_it_is_parsed() -> None:
    text = ruleset_text(BODY) + "#" * 1_000_001
    (diagnostic,) = diagnostics(text)
    assert "at most 1,000,000 are allowed" in diagnostic.message and (diagnostic.line, diagnostic.column) == (1, 1)


def test_a_source_with_too_many_values_is_refused_where_the_cap_is_passed() -> None:
    text = ruleset_text(BODY) + "notes: [" + "a," * 100_001 + "]\n"
    (diagnostic,) = diagnostics(text)
    assert diagnostic.message == "the source holds more than 100,000 values"
    assert diagnostic.line == text.count("\n")


@pytest.mark.parametrize("levels", [51, 100_000])
def test_deep_nesting_is_refused_with_its_place(levels: int) -> None:
    text = ruleset_text(BODY) + "notes: " + "[" * levels + "]" * levels + "\n"
    (diagnostic,) = diagnostics(text)
    assert diagnostic.message == "values are nested more than 50 levels deep"
    # The document is the first level, so the 50th bracket opens the 51st.
    assert (diagnostic.line, diagnostic.column) == (text.count("\n"), len("notes: ") + 50)


def test_a_control_character_is_refused_with_its_place() -> None:
    (diagnostic,) = diagnostics(ruleset_text(BODY).replace("title: Test", "title: Te\x07st"))
    assert "not valid YAML" in diagnostic.message and "U+0007" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (3, 10)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "1.yaml"
    path.write_bytes(ruleset_text(BODY).encode("utf-8").replace(b"Test", b"T\xe6st"))
    with pytest.raises(RulesetInvalid, match="the file is not UTF-8 text"):
        load_ruleset_file(path)


@pytest.mark.parametrize(("change", "message"), [
    (("hjemmel: h1, when", "hjemmel: h1, prioritet: 0x" + "f" * 40 + ", when"), "is too large"),
    (("when: alder > 1", "when: alder > 0x" + "f" * 3000), "the number is too large"),
    (("when: alder > 1", "when: alder > 1e999"), "the number is too large"),
    (("default: false", "default: .nan"), "numbers must be finite"),
    (("when: alder > 1", "when: " + "not " * 900 + "alder > 1"), "nested more than 40 levels deep"),
    (("when: alder > 1", "when: " + "-" * 3000 + "1 < alder"), "nested too deeply"),
    (("when: alder > 1", "when: alder > 1" + " and alder > 1" * 400), "at most 4,000 are allowed"),
    (("title: Test", "title: !!binary aGVq"), "unsupported value"),
    (("title: Test", "title: 2020-01-01 10:00:00"), "needs a UTC offset"),
])
def test_odd_values_are_refused_with_a_located_error(change: tuple[str, str], message: str) -> None:
    text = ruleset_text(BODY).replace(*change)
    assert text != ruleset_text(BODY)
    found = diagnostics(text)
    assert any(message in d.message for d in found), found


def test_a_source_that_does_not_compile_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An exception shares its base rule's round, so it cannot read an outcome its base sets.
    body = """\
    facts:
      alder: {type: int}
    rules:
      - {id: base, title: t, hjemmel: h1, when: alder > 1, then: {ok: true}}
      - {id: unntak, title: t, hjemmel: h1, unntak_fra: base, when: ok, then: {merket: true}}
    outcomes:
      ok: {type: bool, default: false, combine: any}
      merket: {type: bool, default: false, combine: any}
    """
    text = ruleset_text(body)
    (diagnostic,) = diagnostics(text)
    assert diagnostic.message.startswith("durable_rules cannot run this ruleset: rule 'base' and its exceptions")
    assert diagnostic.line == text.splitlines().index("  - {id: base, title: t, hjemmel: h1, when: alder > 1, "
                                                      "then: {ok: true}}") + 1
    path = tmp_path / "1.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["ruleset", "validate", str(path)]) == 1
    assert f"{path}:{diagnostic.line}:" in capsys.readouterr().err


def test_a_round_reading_too_many_names_is_invalid() -> None:
    facts = "".join(f"  f{i}: {{type: bool}}\n" for i in range(201))
    condition = " or ".join(f"f{i}" for i in range(201))
    text = ruleset_text(f"facts:\n{facts}rules:\n  - {{id: r1, title: t, hjemmel: h1, when: {condition}, "
                        "then: {ok: true}}\noutcomes:\n  ok: {type: bool, default: false, combine: any}\n")
    (diagnostic,) = diagnostics(text)
    assert "read 201 names; the engine takes at most 200 in one round" in diagnostic.message


def test_compile_errors_belong_to_the_one_error_tree() -> None:
    from regelmotor.core.compiler import CompileError

    # A CompileError escaping a test run killed the worker: now every handler of RegelmotorError catches it.
    assert issubclass(CompileError, RegelmotorError)


def test_the_exception_tree_is_documented_at_the_top_of_errors() -> None:
    # Every kind the core defines, in any of its modules (InvalidIdentityNumber lives in core.identity).
    for module in pkgutil.iter_modules(core.__path__):
        importlib.import_module(f"regelmotor.core.{module.name}")

    def kinds_of(kind: type[RegelmotorError]) -> list[type[RegelmotorError]]:
        return [kind, *(sub for direct in kind.__subclasses__() for sub in kinds_of(direct))]

    documented = errors.__doc__ or ""
    kinds = [kind for kind in kinds_of(RegelmotorError) if kind.__module__.startswith("regelmotor.core.")]
    assert len(kinds) >= 12
    for kind in kinds:
        assert f" {kind.__name__} " in documented, kind


@pytest.mark.parametrize(("case", "message"), [
    ("{name: a, as_of: 2020-01-01, expect: {ok: true}, fired: 5}", "`fired` of case must be a list of texts"),
    ("{name: a, as_of: 2020-01-01, expect_error: [1]}", "`expect_error` of case must be a mapping"),
    ("{name: a, as_of: 2020-01-01, expect_error: {type: X, contains: [1]}}", "`contains` of expect_error"),
    ("{name: a, as_of: 2020-13-01, expect: {ok: true}}", "impossible date"),
    ("{name: [a], as_of: 2020-01-01, expect: {ok: true}}", "`name` of case must be text"),
    ("{name: a, as_of: 2020-01-01, expect: [ok]}", "`expect` of case must be a mapping"),
    ("[a]", "case must be a mapping"),
])
def test_odd_cases_are_refused_with_a_located_error(case: str, message: str) -> None:
    ruleset = load_ruleset_text(ruleset_text(BODY), "regler.yaml")
    with pytest.raises(RulesetInvalid, match=r"cases\.yaml:2:\d+: ") as caught:
        parse_cases(f"cases:\n  - {case}\n", "cases.yaml", ruleset)
    assert any(message in d.message for d in caught.value.diagnostics), caught.value.diagnostics


def test_an_unexpected_failure_is_still_a_located_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault injection: should a check ever fail unexpectedly, the caller still gets INVALID_ARGUMENT.
    from regelmotor.core import loader

    def broken(*args: object) -> None:
        raise TypeError("simulated bug")

    monkeypatch.setattr(loader, "read_rules", broken)
    text = ruleset_text(BODY)
    (diagnostic,) = diagnostics(text)
    assert "this is a bug in regelmotor" in diagnostic.message and "TypeError" in diagnostic.message
    assert diagnostic.line == text.splitlines().index("rules:") + 2  # where the list of rules starts


def test_the_number_of_diagnostics_is_capped() -> None:
    rules = "".join(f"  - {{id: x{i}, title: t, hjemmel: h1, when: nope{i} > 1, then: {{ok: true}}}}\n"
                    for i in range(150))
    found = diagnostics(ruleset_text(BODY.replace("rules:\n", "rules:\n" + rules)))
    assert len(found) == 101 and found[-1].message == "… and 50 more problems"


def _alternatives_ruleset(condition: str, facts: str) -> str:
    return ruleset_text(f"facts:\n{facts}rules:\n  - {{id: r1, title: t, hjemmel: h1, when: \"{condition}\", "
                        "then: {ok: true}}\noutcomes:\n  ok: {type: bool, default: false, combine: any}\n")


def test_a_condition_with_more_alternatives_than_the_engine_takes_is_invalid() -> None:
    # durable_rules answered error 303 at evaluation when 64 alternatives held at once; it validated.
    facts = "".join(f"  f{i}: {{type: bool}}\n" for i in range(90))
    condition = " or ".join(f"({' or '.join(f'f{30 * g + i}' for i in range(30))})" for g in range(3))
    (diagnostic,) = diagnostics(_alternatives_ruleset(condition, facts))
    assert "the condition joins 90 alternatives with `or` that can hold at once" in diagnostic.message
    assert "split it into several rules" in diagnostic.message


def test_the_widest_accepted_conditions_run_in_the_engine() -> None:
    from datetime import date

    from regelmotor.core.api import Regelmotor
    from regelmotor.core.repository import RulesetRepository

    facts = "".join(f"  f{i}: {{type: bool, default: true}}\n" for i in range(60)) + "  kode: {type: string}\n"
    widest = " or ".join(f"f{i}" for i in range(60))
    codes = ", ".join(f"'k{i}'" for i in range(200))  # equality tests of one field: only one can hold
    for condition in (widest, f"kode in [{codes}]"):
        repository = RulesetRepository(include_drafts=True)
        repository.add(load_ruleset_text(_alternatives_ruleset(condition, facts), "regler.yaml"))
        decision = Regelmotor(repository).evaluate("test", {"kode": "k199"}, as_of=date(2021, 1, 1), version="1")
        assert decision.outcome["ok"] is True
