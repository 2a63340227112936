"""A correction's impact report as the Markdown page kept in docs/rulesets/<ruleset>/rettelser/ (bench/corrections.py).

In Norwegian bokmål, for policy staff and auditors. It holds what a second run with the same rulesets gives again:
counts, cross-tables, sums and examples by their date, not decision ids or moments.
"""

from __future__ import annotations

import json

from google.protobuf import json_format

from regelmotor.core.model import Ruleset
from regelmotor_api.v1 import ruleset_pb2 as rpb


def _value(value: object) -> str:
    plain = json_format.MessageToDict(value) if value is not None else None  # type: ignore[arg-type]
    return "ingen verdi" if plain is None else json.dumps(plain, ensure_ascii=False)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %".replace(".", ",") if whole else "–"


def _outcome(outcome: rpb.OutcomeImpact) -> list[str]:
    lines = ["", f"### `{outcome.field}` ({outcome.kind}): {outcome.changed} endret", ""]
    moved = [t for t in outcome.transitions if t.before != t.after]
    if moved:
        lines += ["| Før | Etter | Antall |", "|---|---|---|"]
        lines += [f"| {_value(t.before)} | {_value(t.after)} | {t.count} |" for t in moved]
    if outcome.sum_before or outcome.sum_after:
        lines += ["", f"Sum før: {outcome.sum_before}, etter: {outcome.sum_after}."]
    if outcome.examples:
        lines += ["", "Eksempler (beslutningsdato: før → etter, første regel som gir annet):", ""]
        lines += [f"- {e.as_of}: {_value(e.before)} → {_value(e.after)}"
                  + (f" ({e.first_rule})" if e.first_rule else "") for e in outcome.examples]
    return lines


def render(ruleset: Ruleset, report: rpb.ImpactReport, logged: int, seed: int, added_facts: list[str]) -> str:
    """The page for `ruleset` (a correction) from its impact report over `logged` generated decisions;
    `added_facts`: the facts it takes that the version it corrects does not."""
    meta = ruleset.meta
    changed_fields = [o for o in report.outcomes if o.changed]
    unchanged = [o.field for o in report.outcomes if not o.changed]
    lines = [
        f"# Virkning av rettelsen {meta.name} {meta.version}",
        "",
        "<!-- Laget av `python bench/corrections.py --write`; ikke rediger for hånd. -->",
        "",
        f"- Retter versjon `{meta.supersedes}`: {meta.correction_reason}",
        f"- Rettelsens sha256: `{report.candidate_sha256}`",
        f"- Analysert: {report.analysed} loggførte beslutninger av `{meta.name}`, sammenlignet med det reglene "
        "slik de var kjent rett før rettelsen ble godkjent gir for de samme faktaene og datoene "
        "(`AnalyseImpact` med `known_at`).",
        f"- Loggen: {logged} beslutninger per regelsett, laget av tjenesten fra de medfølgende testtilfellene med "
        f"tilfeldig variasjon (`bench/varied_decisions.py`, frø {seed}): datoer flyttet inntil ett år, tall, "
        "ja/nei-fakta, valg og diagnosekoder variert.",
        f"- Av dem avgjorde versjon `{meta.supersedes}` {report.decided} på dagene rettelsen gjelder: bare de kan "
        "endres; de andre avgjøres som før.",
        f"- **Endret: {report.changed} av {report.analysed} beslutninger "
        f"({_share(report.changed, report.analysed)})**; avvist av rettelsen: {report.refused}.",
    ]
    if added_facts:
        named = ", ".join(f"`{name}`" for name in added_facts)
        lines += ["", f"Rettelsen tar nye fakta ({named}) som versjon `{meta.supersedes}` ikke kjenner: ingen "
                  "loggført beslutning har dem, så de endrer ingen av beslutningene over. For forespørsler som sender "
                  "dem, kan svaret bli et annet; se rettelsens testtilfeller."]
    if report.refusals:
        lines += ["", "## Avvist", ""] + [f"- {e.as_of}: {e.message}" for e in report.refusals]
    if changed_fields:
        lines += ["", "## Utfall som endres"]
        for outcome in changed_fields:
            lines += _outcome(outcome)
    if unchanged:
        lines += ["", "## Uendret", "", ", ".join(f"`{name}`" for name in unchanged)]
    return "\n".join(lines) + "\n"
