"""Corrections: a version published as a correction of another (`supersedes`) decides in its place for the days
it covers, without pretending the law changed; the corrected version still answers pinned requests (replays);
and a decision may be asked "as known at" a moment, with the versions published by then."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from regelmotor.cli.main import main
from regelmotor.core.api import Regelmotor
from regelmotor.core.decision import decision_from_dict
from regelmotor.core.errors import InvalidFacts, NoVersionInForce, RulesetInvalid, VersionNotFound, VersionRetired
from regelmotor.core.repository import RulesetRepository, RulesetSnapshot
from tests.test_version_selection import publish, write_version

REASON = 'correction_reason: "Helfo skal varsles når sykehuset ikke kan gi helsehjelp innen fristen."'
AS_OF = date(2026, 1, 1)


def _correction(root: Path, version: str, supersedes: str, fra: str, til: str | None = None, *,
                status: str = "published") -> Path:
    return write_version(root, version, fra, til, status=status, extra=f'supersedes: "{supersedes}"\n{REASON}')


@pytest.fixture
def corrected(tmp_path: Path) -> Path:
    """2015.11 (to 2024-06-30), 2024.07 (open), and 2024.07.1 correcting 2024.07 from 2025-01-01 on."""
    old = write_version(tmp_path, "2015.11", "2015-11-01", "2024-06-30")
    new = write_version(tmp_path, "2024.07", "2024-07-01")
    fix = _correction(tmp_path, "2024.07.1", "2024.07", "2025-01-01")
    publish(tmp_path, old, new, fix)
    return tmp_path


def _version(motor: Regelmotor, mottatt: str, **kwargs: object) -> str:
    return motor.evaluate("frist", {"mottatt": mottatt}, as_of=AS_OF, **kwargs).version  # type: ignore[arg-type]


@pytest.mark.parametrize(("mottatt", "expected"), [
    ("2024-06-30", "2015.11"), ("2024-07-01", "2024.07"), ("2024-12-31", "2024.07"), ("2025-01-01", "2024.07.1"),
    ("2031-05-05", "2024.07.1")])
def test_a_correction_decides_in_place_of_the_version_it_supersedes_for_the_days_it_covers(
        corrected: Path, mottatt: str, expected: str) -> None:
    assert _version(Regelmotor.from_directory(corrected), mottatt) == expected


def test_the_decision_of_a_correction_says_which_version_it_superseded_and_the_others_say_nothing(
        corrected: Path) -> None:
    motor = Regelmotor.from_directory(corrected)
    fixed = motor.evaluate("frist", {"mottatt": "2025-02-01"}, as_of=AS_OF)
    assert fixed.correction is not None and fixed.correction.supersedes == "2024.07"
    assert fixed.correction.published_at is None  # a directory's version has no moment of publication
    assert fixed.to_dict()["correction"] == {"supersedes": "2024.07", "published_at": None}
    assert decision_from_dict(fixed.to_dict()) == fixed
    plain = motor.evaluate("frist", {"mottatt": "2024-08-01"}, as_of=AS_OF)
    assert plain.correction is None and plain.known_at is None
    assert "correction" not in plain.to_dict() and "known_at" not in plain.to_dict()  # its content hash as before


def test_the_superseded_version_still_answers_when_pinned_so_recorded_decisions_replay(corrected: Path) -> None:
    motor = Regelmotor.from_directory(corrected)
    pinned = motor.evaluate("frist", {"mottatt": "2025-02-01"}, as_of=AS_OF, version="2024.07")
    assert pinned.version == "2024.07" and pinned.outcome["regime"] == "2024.07" and pinned.correction is None


def test_a_correction_of_a_correction_takes_over_from_it(corrected: Path) -> None:
    fix2 = _correction(corrected, "2024.07.2", "2024.07.1", "2025-06-01")
    publish(corrected, *sorted(p for p in corrected.glob("frist/*.yaml")))
    assert fix2.exists()
    motor = Regelmotor.from_directory(corrected)
    assert [_version(motor, d) for d in ("2024-12-31", "2025-05-31", "2025-06-01")] == \
        ["2024.07", "2024.07.1", "2024.07.2"]


def test_a_correction_limited_by_gyldig_til_hands_back_to_the_corrected_version(tmp_path: Path) -> None:
    base = write_version(tmp_path, "1", "2020-01-01")
    fix = _correction(tmp_path, "1.1", "1", "2020-03-01", "2020-03-31")
    publish(tmp_path, base, fix)
    motor = Regelmotor.from_directory(tmp_path)
    assert [_version(motor, d) for d in ("2020-02-29", "2020-03-01", "2020-03-31", "2020-04-01")] == \
        ["1", "1.1", "1.1", "1"]


def test_without_supersedes_an_overlap_stays_refused(tmp_path: Path) -> None:
    base = write_version(tmp_path, "1", "2020-01-01")
    other = write_version(tmp_path, "1.1", "2020-01-01")
    publish(tmp_path, base, other)
    # Versions of one start date are listed by version text, so the later one (1.1) is the one refused.
    with pytest.raises(RulesetInvalid,
                       match=r"version 1\.1 starts on the same day as 1 \(2020-01-01\): the periods overlap"):
        RulesetRepository.load(tmp_path)


@pytest.mark.parametrize(("fra", "til", "supersedes", "problem"), [
    ("2019-12-31", None, "1", r"correction 1\.1 starts on 2019-12-31, before version 1 governs \(2020-01-01\)"),
    ("2021-01-01", None, "1", r"correction 1\.1 starts on 2021-01-01, after version 1 stops governing "
                              r"\(2020-12-31\)"),
    ("2020-06-01", "2021-02-01", "1", r"correction 1\.1 runs to 2021-02-01, beyond the period of version 1 "
                                      r"\(to 2020-12-31\)"),
    ("2020-06-01", None, "9", r"version 1\.1 supersedes 9, which is not a version of 'frist' here"),
])
def test_a_correction_must_lie_within_the_period_of_a_version_there_is(
        tmp_path: Path, fra: str, til: str | None, supersedes: str, problem: str) -> None:
    one = write_version(tmp_path, "1", "2020-01-01")
    two = write_version(tmp_path, "2", "2021-01-01")
    fix = _correction(tmp_path, "1.1", supersedes, fra, til)
    publish(tmp_path, one, two, fix)
    with pytest.raises(RulesetInvalid, match=problem) as caught:
        RulesetRepository.load(tmp_path)
    assert all(d.file.endswith("1.1.yaml") for d in caught.value.diagnostics)


def test_two_corrections_of_one_version_must_not_cover_the_same_day(tmp_path: Path) -> None:
    base = write_version(tmp_path, "1", "2020-01-01")
    first = _correction(tmp_path, "1.1", "1", "2020-02-01", "2020-06-30")
    second = _correction(tmp_path, "1.2", "1", "2020-06-01")
    publish(tmp_path, base, first, second)
    with pytest.raises(RulesetInvalid, match=r"corrections 1\.1 and 1\.2 of 1 both cover 2020-06-01: correct the "
                                             r"correction instead \(supersedes: 1\.1\)"):
        RulesetRepository.load(tmp_path)


def test_corrections_in_a_circle_are_refused(tmp_path: Path) -> None:
    base = write_version(tmp_path, "1", "2020-01-01")
    a = _correction(tmp_path, "1.1", "1.2", "2020-02-01")
    b = _correction(tmp_path, "1.2", "1.1", "2020-02-01")
    publish(tmp_path, base, a, b)
    with pytest.raises(RulesetInvalid, match="corrections cannot go in a circle"):
        RulesetRepository.load(tmp_path)


def test_a_published_correction_of_a_draft_is_refused(tmp_path: Path) -> None:
    base = write_version(tmp_path, "1", "2020-01-01", status="draft")
    fix = _correction(tmp_path, "1.1", "1", "2020-02-01")
    publish(tmp_path, fix)
    with pytest.raises(RulesetInvalid, match=r"a published correction corrects a published version"):
        RulesetRepository.load(tmp_path)
    assert base.exists()


@pytest.mark.parametrize(("extra", "problem"), [
    ('supersedes: "1"', "a correction needs `correction_reason`"),
    (REASON, "correction_reason is given but supersedes is not"),
    (f'supersedes: "2"\n{REASON}', "version '2' cannot supersede itself"),
    (f'supersedes: "bad version!"\n{REASON}', "supersedes must name a version"),
    (f'supersedes: "1"\ncorrection_reason: "{"x" * 2001}"', "correction_reason is 2001 characters; at most 2000"),
])
def test_supersedes_and_its_reason_are_checked_when_the_source_is_read(
        tmp_path: Path, extra: str, problem: str) -> None:
    one = write_version(tmp_path, "1", "2020-01-01")
    two = write_version(tmp_path, "2", "2020-06-01", extra=extra)
    publish(tmp_path, one)
    with pytest.raises(RulesetInvalid, match=problem):
        RulesetRepository.load(tmp_path)
    assert two.exists()


# --- as known when -------------------------------------------------------------------------------------------

def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _stored(corrected: Path, *, retired: bool = False) -> Regelmotor:
    """The directory's versions as a store serves them: each with the moment it was published."""
    snapshot = RulesetSnapshot.read(corrected)
    published_at = (("frist@2015.11", "2020-01-01T00:00:00+00:00"), ("frist@2024.07", "2024-06-01T00:00:00+00:00"),
                    ("frist@2024.07.1", "2026-03-01T12:00:00+00:00"))
    retirement = (("frist@2024.07.1", "2031-01-01"),) if retired else ()
    retired_at = (("frist@2024.07.1", "2026-09-01T00:00:00+00:00"),) if retired else ()
    return Regelmotor(RulesetRepository.from_snapshot(RulesetSnapshot(
        snapshot.root, snapshot.files, snapshot.published, retirement, published_at, retired_at)))


def test_as_known_before_a_correction_was_published_the_corrected_version_answers_and_the_decision_says_so(
        corrected: Path) -> None:
    motor = _stored(corrected)
    before = motor.evaluate("frist", {"mottatt": "2025-02-01"}, as_of=AS_OF, known_at=_moment("2026-02-28T23:59:59"))
    assert before.version == "2024.07" and before.correction is None
    assert before.known_at == "2026-02-28T23:59:59.000000+00:00"
    after = motor.evaluate("frist", {"mottatt": "2025-02-01"}, as_of=AS_OF, known_at=_moment("2026-03-01T12:00:00"))
    assert after.version == "2024.07.1"
    assert after.correction is not None and after.correction.supersedes == "2024.07"
    assert after.correction.published_at == "2026-03-01T12:00:00.000000+00:00"
    now = motor.evaluate("frist", {"mottatt": "2025-02-01"}, as_of=AS_OF)
    assert now.version == "2024.07.1" and now.known_at is None
    again = motor.evaluate("frist", {"mottatt": "2025-02-01"}, as_of=AS_OF, known_at=_moment("2026-02-28T23:59:59"))
    assert again.content_sha256 == before.content_sha256  # reproducible


def test_as_known_before_any_version_was_published_nothing_is_in_force(corrected: Path) -> None:
    motor = _stored(corrected)
    with pytest.raises(NoVersionInForce, match=r"no version of 'frist' is in force on 2025-02-01 .*as known at "
                                               r"2019-01-01T00:00:00\+00:00: versions published later are left out "
                                               r"\(the first of them at 2020-01-01T00:00:00\+00:00\)"):
        motor.evaluate("frist", {"mottatt": "2025-02-01"}, as_of=AS_OF, known_at=_moment("2019-01-01T00:00:00"))


def test_a_pinned_version_as_known_before_it_was_published_is_not_found(corrected: Path) -> None:
    motor = _stored(corrected)
    with pytest.raises(VersionNotFound, match=r"frist@2024\.07\.1 was published at 2026-03-01T12:00:00\+00:00, after "
                                              r"known_at 2026-01-01T00:00:00\+00:00"):
        motor.evaluate("frist", {"mottatt": "2025-02-01"}, as_of=AS_OF, version="2024.07.1",
                       known_at=_moment("2026-01-01T00:00:00"))


def test_a_retirement_counts_only_as_known_from_when_it_was_recorded(corrected: Path) -> None:
    motor = _stored(corrected, retired=True)
    assert _version(motor, "2031-02-01") == "2024.07"  # the correction is retired from 2031 on
    assert _version(motor, "2031-02-01", known_at=_moment("2026-08-31T00:00:00")) == "2024.07.1"
    with pytest.raises(VersionRetired, match=r"frist@2024\.07\.1 is retired from 2031-01-01"):
        motor.evaluate("frist", {"mottatt": "2031-02-01"}, as_of=AS_OF, version="2024.07.1")
    pinned = motor.evaluate("frist", {"mottatt": "2031-02-01"}, as_of=AS_OF, version="2024.07.1",
                            known_at=_moment("2026-08-31T00:00:00"))
    assert pinned.version == "2024.07.1"


def test_known_at_without_a_utc_offset_is_an_input_error(corrected: Path) -> None:
    motor = _stored(corrected)
    with pytest.raises(InvalidFacts, match="known_at: a moment with a UTC offset is required") as caught:
        motor.evaluate("frist", {"mottatt": "2025-02-01"}, as_of=AS_OF, known_at=datetime(2026, 1, 1))
    assert caught.value.violations[0].field == "known_at"


def test_known_at_without_as_of_decides_as_of_that_moment_s_day_in_oslo(corrected: Path) -> None:
    motor = _stored(corrected)
    asked = datetime(2026, 2, 28, 23, 30, tzinfo=UTC)  # 1 March in Oslo
    decision = motor.evaluate("frist", {"mottatt": "2025-02-01"}, known_at=asked)
    assert decision.as_of == "2026-03-01" and decision.version == "2024.07"
    assert motor.evaluate("frist", {"mottatt": "2025-02-01"}, known_at=asked).content_sha256 == \
        decision.content_sha256


def test_the_cases_of_a_corrected_version_that_expect_it_by_date_still_pass_where_its_correction_decides(
        corrected: Path) -> None:
    (corrected / "frist" / "2024.07.cases.yaml").write_text(
        "cases:\n  - name: fra 2025 avgjør rettelsen i stedet\n    as_of: 2026-01-01\n"
        "    facts: {mottatt: 2025-02-01}\n    expect: {regime: \"2024.07\"}\n    expect_version: \"2024.07\"\n",
        encoding="utf-8")
    assert main(["ruleset", "test", str(corrected)]) == 0
    (corrected / "frist" / "2024.07.cases.yaml").write_text(
        "cases:\n  - name: feil versjon\n    as_of: 2026-01-01\n"
        "    facts: {mottatt: 2025-02-01}\n    expect: {regime: \"2024.07\"}\n    expect_version: \"2015.11\"\n",
        encoding="utf-8")
    assert main(["ruleset", "test", str(corrected)]) == 1
