"""What the lifecycle pages say: the API's refusals in plain Norwegian, and a source shown line by line with
each diagnostic under its line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiProblem

# ErrorInfo reasons of the lifecycle RPCs (docs/ruleset-lifecycle.md) -> what the person is told first.
REFUSALS = {
    "FOUR_EYES": "Du kan ikke godkjenne ditt eget forslag – en annen må godkjenne det.",
    "SHA256_MISMATCH": "Teksten er ikke den som ble foreslått: sha256 stemmer ikke. Last siden på nytt, se "
                       "gjennom versjonen igjen og godkjenn den du har sett.",
    "HJEMMEL_NOT_VERIFIED": "Versjonen viser til hjemler som ikke er verifisert. Kryss av for hver av dem hvis du "
                            "likevel vil publisere den.",
    "TIMELINE": "Versjonens periode passer ikke med de publiserte versjonene: den overlapper en av dem, eller "
                "etterlater dager som ingen versjon gjelder for.",
    "SELECTED_BY": "De publiserte versjonene velges etter et annet faktum enn denne versjonen.",
    "VERSION_EXISTS": "Versjonsnummeret er allerede brukt i dette regelsettet. Gi utkastet et nytt nummer i "
                      "linjen «version:».",
    "WRONG_STATE": "Versjonen er ikke (lenger) foreslått, så den kan ikke godkjennes eller avvises.",
    "NO_SUCH_VERSION": "Regelsettet har ingen slik versjon.",
    "NO_STORE": "Tjenesten lagrer ingen regelsettversjoner (den har ingen beslutningslogg).",
}

_SEVERITY = {"DIAGNOSTIC_SEVERITY_WARNING": "Advarsel"}


def refusal(problem: ApiProblem) -> str:
    """The first sentence a person reads about a refused step."""
    if problem.reason in REFUSALS:
        return REFUSALS[problem.reason]
    if problem.code == "PERMISSION_DENIED":
        return "Du har ikke rollen som trengs for dette."
    return problem.headline + "."


@dataclass(frozen=True)
class Finding:
    """One diagnostic or failed case, as listed and as shown under its line."""

    line: int
    column: int
    lead: str
    message: str


@dataclass
class Line:
    number: int
    text: str
    findings: list[Finding] = field(default_factory=list)


def findings(diagnostics: list[dict[str, Any]]) -> list[Finding]:
    """The API's diagnostics with a Norwegian lead-in ("Feil på linje 12, kolonne 3"), in line order."""
    found = []
    for diagnostic in diagnostics:
        line, column = int(diagnostic.get("line") or 1), int(diagnostic.get("column") or 1)
        kind = _SEVERITY.get(str(diagnostic.get("severity", "")), "Feil")
        found.append(Finding(line, column, f"{kind} på linje {line}, kolonne {column}", str(diagnostic["message"])))
    return sorted(found, key=lambda f: (f.line, f.column))


def case_findings(results: list[dict[str, Any]]) -> list[Finding]:
    """Each failed case at its line in the cases, with what it expected against what came."""
    return [Finding(int(r["line"]), 1, f"Tilfellet «{r['name']}» på linje {r['line']} feilet",
                    "; ".join(r["failures"]) or "forventningen holdt ikke")
            for r in results if not r["passed"]]


def numbered(text: str, found: list[Finding]) -> list[Line]:
    """The text line by line, each finding under its line (one past the end goes under the last line)."""
    lines = [Line(number, content) for number, content in enumerate(text.splitlines() or [""], start=1)]
    for finding in found:
        lines[min(max(finding.line, 1), len(lines)) - 1].findings.append(finding)
    return lines
