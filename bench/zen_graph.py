"""A GoRules JDM decision graph for `prioriterte-pasientgrupper` 2024.1, written for `bench/peer_zen.py`.

The graph decides what the ruleset decides, in JDM's own terms, so zen-engine can be timed on the same decision:

    request (input schema: the facts' types, enums, ranges and the ICD-10 code pattern)
      -> avledede verdier (expression: age, days since birth, codes with their category, the two ICD-10 tests,
         and `feil` when the birth date is after the assessment date, which a JSON schema cannot say)
      -> kroniske lidelser (decision table, loop over the codes, collect: the organ systems of each code)
      -> organsystemer (expression: how many different organ systems)
      -> prioriterte grupper (decision table, collect: one row per group rule, the rule id as the row's _id)
      -> store og sammensatte behov (decision table, first: the rule that says the person has large needs)
      -> utfall (expression: `grupper` in the groups' fixed order, `store_og_sammensatte_behov`)
      -> response

Which rules fired is read from zen's trace (the matched rows of the two rule tables), as a zen user would audit a
decision. The ICD-10 code list is the ruleset's table `kroniske_lidelser`, turned row by row into unary tests; the
rest is written here by hand. Built from the JDM format described in GoRules' documentation, not from its code.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from regelmotor.core.model import Ruleset

GROUPS = ("barn_og_unge", "flere_kroniske_lidelser", "alvorlige_psykiske_lidelser_og_rus", "eldre_med_skropelighet",
          "svangerskap_fodsel_barsel")
GROUP_TABLE = "prioriterte grupper"
NEEDS_TABLE = "store og sammensatte behov"
REFUSAL = "feil"  # the graph's own refusal: an output field, as JDM has no way to raise an error

_SEVERE_MENTAL_OR_ADDICTION = ["F20-F31", "F32.2", "F32.3", "F33.2", "F33.3", "F60-F61", "F10.2", "F11.2", "F12.2",
                               "F13.2", "F14.2", "F15.2", "F16.2", "F17.2", "F18.2", "F19.2"]
_PREGNANCY = ["O00-O99"]


def _categories(low: str, high: str) -> list[str]:
    """The three-character categories from `low` to `high` (one letter, as every range of the ruleset is)."""
    if low[0] != high[0]:
        raise ValueError(f"a range over two letters is not written for zen here: {low}-{high}")
    return [f"{low[0]}{number:02d}" for number in range(int(low[1:3]), int(high[1:3]) + 1)]


def _quoted(values: list[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _spec_test(spec: str, code: str, category: str) -> str:
    """A ZEN expression that holds when the code (expression `code`, its category `category`) lies in an ICD-10
    spec as the ruleset writes it: a category covers itself and its subcodes, a subcode its subcodes, a range of
    categories every code whose category lies in it."""
    if "-" in spec:
        low, high = spec.split("-")
        if low[1:3] == "00" and high[1:3] == "99":
            return f"startsWith({code}, '{low[0]}')"  # a whole chapter letter
        return f"{category} in [{_quoted(_categories(low, high))}]"
    if len(spec) == 3:
        return f"{category} == '{spec}'"
    return f"startsWith({code}, '{spec}')"


def _any_code_in(specs: list[str]) -> str:
    tests = " or ".join(_spec_test(spec, "k.kode", "k.kategori") for spec in specs)
    return f"some($.koder as k, {tests})"


def _expression_node(node_id: str, name: str, expressions: list[tuple[str, str]]) -> dict[str, Any]:
    return {"id": node_id, "name": name, "type": "expressionNode",
            "content": {"expressions": [{"id": f"{node_id}-{key}", "key": key, "value": value}
                                        for key, value in expressions], "passThrough": True}}


def _table_node(node_id: str, name: str, inputs: list[tuple[str, str]], outputs: list[str],
                rows: list[tuple[str, str, list[str], list[str]]], hit_policy: str,
                **content: Any) -> dict[str, Any]:
    """A decision table: `inputs` as (column name, field), `rows` as (id, description, input cells (unary tests),
    output cells (expressions))."""
    input_ids = [f"{node_id}-in-{number}" for number in range(len(inputs))]
    output_ids = [f"{node_id}-out-{number}" for number in range(len(outputs))]
    table_rows = []
    for rule_id, description, cells, results in rows:
        row: dict[str, str] = {"_id": rule_id, "_description": description}
        row.update(zip(input_ids, cells, strict=True))
        row.update(zip(output_ids, results, strict=True))
        table_rows.append(row)
    return {"id": node_id, "name": name, "type": "decisionTableNode", "content": {
        "hitPolicy": hit_policy, "passThrough": True, "rules": table_rows,
        "inputs": [{"id": column_id, "name": column, "field": field}
                   for column_id, (column, field) in zip(input_ids, inputs, strict=True)],
        "outputs": [{"id": column_id, "name": field, "field": field}
                    for column_id, field in zip(output_ids, outputs, strict=True)],
        **content}}


def _input_schema() -> dict[str, Any]:
    date = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "required": ["as_of", "fodselsdato"],
        "properties": {
            "as_of": date, "fodselsdato": date, "fodsel_dato": date,
            "diagnoser": {"type": "array",
                          "items": {"type": "string", "pattern": r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?$"}},
            "funksjonsniva": {"enum": ["godt", "middels", "darlig", "svart_darlig"]},
            "clinical_frailty_scale": {"type": "integer", "minimum": 1, "maximum": 9},
            "behov_omfattende_langvarige_tjenester": {"type": "boolean"},
            "gravid": {"type": "boolean"},
        },
        "additionalProperties": False,
    }


def _derived() -> dict[str, Any]:
    # `$.name`: a value set earlier in the same node; each date is parsed once.
    before_birthday = "($.dato.month() * 100 + $.dato.day()) < ($.fodt.month() * 100 + $.fodt.day())"
    return _expression_node("avledede", "avledede verdier", [
        ("dato", "d(as_of)"),
        ("fodt", "d(fodselsdato)"),
        (REFUSAL, "$.fodt.isAfter($.dato) ? 'fodselsdato er etter vurderingsdatoen' : null"),
        ("alder", f"$.dato.year() - $.fodt.year() - ({before_birthday} ? 1 : 0)"),
        ("dager_siden_fodsel", "fodsel_dato == null ? null : $.dato.diff(d(fodsel_dato), 'day')"),
        ("behov_omfattende_langvarige_tjenester", "behov_omfattende_langvarige_tjenester ?? false"),
        ("gravid", "gravid ?? false"),
        ("koder", "map(diagnoser ?? [], {kode: #, kategori: #[0:2]})"),
        ("alvorlig_psykisk_eller_rus_diagnose", _any_code_in(_SEVERE_MENTAL_OR_ADDICTION)),
        ("svangerskapsdiagnose", _any_code_in(_PREGNANCY)),
    ])


def _code_cells(spec: str) -> list[str]:
    """Unary tests for the table's two columns (the code's category, the code) for one ICD-10 spec; the empty
    cell matches anything."""
    if "-" in spec:
        low, high = spec.split("-")
        if low[1:3] == "00" and high[1:3] == "99":
            return [f"startsWith($, '{low[0]}')", ""]
        return [_quoted(_categories(low, high)), ""]
    if len(spec) == 3:
        return [f"'{spec}'", ""]
    return ["", f"startsWith($, '{spec}')"]


def _chronic(ruleset: Ruleset) -> dict[str, Any]:
    """The ruleset's code list as a table run over each code (loop), every matching row collected."""
    rows = [(spec, str(row.get("beskrivelse") or ""), _code_cells(spec), [f"'{row['organsystem']}'"])
            for spec, row in ruleset.tables["kroniske_lidelser"].rows.items()]
    return _table_node("kroniske", "kroniske lidelser", [("kategori", "kategori"), ("kode", "kode")],
                       ["organsystem"], rows, "collect", executionMode="loop", inputField="koder",
                       outputPath="klassifisert")


def _organ_systems(ruleset: Ruleset) -> dict[str, Any]:
    systems = list(dict.fromkeys(str(row["organsystem"]) for row in ruleset.tables["kroniske_lidelser"].rows.values()))
    found = "flatMap(klassifisert as treff, map(treff as rad, rad.organsystem))"
    return _expression_node("organsystemer", "organsystemer", [
        ("organsystemer", f"filter([{_quoted(systems)}], # in {found})"),
        ("antall_organsystemer", "len($.organsystemer)"),
    ])


def _groups() -> dict[str, Any]:
    columns = [("alder", "alder"), ("behov", "behov_omfattende_langvarige_tjenester"),
               ("organsystemer", "antall_organsystemer"),
               ("alvorlig psykisk/rus", "alvorlig_psykisk_eller_rus_diagnose"),
               ("funksjonsnivå", "funksjonsniva"), ("CFS", "clinical_frailty_scale"), ("gravid", "gravid"),
               ("dager siden fødsel", "dager_siden_fodsel"), ("svangerskapsdiagnose", "svangerskapsdiagnose")]
    rows = [
        ("barn-og-unge", "under 21 år med behov for omfattende og langvarige tjenester",
         ["< 21", "true", "", "", "", "", "", "", ""], ["'barn_og_unge'"]),
        ("flere-kroniske-lidelser", "18 år eller eldre, kroniske diagnoser i minst tre organsystem",
         [">= 18", "", ">= 3", "", "", "", "", "", ""], ["'flere_kroniske_lidelser'"]),
        ("alvorlige-psykiske-lidelser-og-rus", "alvorlig psykisk lidelse eller avhengighetssyndrom",
         ["", "", "", "true", "", "", "", "", ""], ["'alvorlige_psykiske_lidelser_og_rus'"]),
        ("eldre-skropelighet-funksjonsniva", "75 år eller eldre med dårlig eller svært dårlig funksjonsnivå",
         [">= 75", "", "", "", "'darlig', 'svart_darlig'", "", "", "", ""], ["'eldre_med_skropelighet'"]),
        ("eldre-skropelighet-cfs", "75 år eller eldre med Clinical Frailty Scale 5 eller høyere",
         [">= 75", "", "", "", "", ">= 5", "", "", ""], ["'eldre_med_skropelighet'"]),
        ("svangerskap-gravid", "gravid", ["", "", "", "", "", "", "true", "", ""], ["'svangerskap_fodsel_barsel'"]),
        ("svangerskap-barseltid", "fødte for 0–42 dager siden",
         ["", "", "", "", "", "", "", "[0..42]", ""], ["'svangerskap_fodsel_barsel'"]),
        ("svangerskap-diagnose", "diagnose i ICD-10 O00–O99",
         ["", "", "", "", "", "", "", "", "true"], ["'svangerskap_fodsel_barsel'"]),
    ]
    return _table_node("grupper", GROUP_TABLE, columns, ["gruppe"], rows, "collect", outputPath="treff")


def _needs() -> dict[str, Any]:
    rows = [("store-og-sammensatte-behov", "personen hører til minst én prioritert pasientgruppe", ["> 0"], ["true"])]
    return _table_node("behov", NEEDS_TABLE, [("grupper", "antall_grupper")], ["store_og_sammensatte_behov"],
                       rows, "first")


def build_graph(ruleset: Ruleset) -> dict[str, Any]:
    """The JDM graph (a dict, as zen's `create_decision` takes it) for this version of the ruleset."""
    if ruleset.key != "prioriterte-pasientgrupper@2024.1":
        raise ValueError(f"the zen graph is written for prioriterte-pasientgrupper 2024.1, not {ruleset.key}")
    nodes = [
        {"id": "request", "name": "request", "type": "inputNode", "content": {"schema": json.dumps(_input_schema())}},
        _derived(),
        _chronic(ruleset),
        _organ_systems(ruleset),
        _groups(),
        _expression_node("grupper-i-orden", "grupper i fast rekkefølge", [
            ("grupper", f"filter([{_quoted(list(GROUPS))}], # in map(treff, #.gruppe))"),
            ("antall_grupper", "len($.grupper)"),
        ]),
        _needs(),
        _expression_node("utfall", "utfall", [
            ("store_og_sammensatte_behov", "store_og_sammensatte_behov ?? false"),
        ]),
        {"id": "response", "name": "response", "type": "outputNode"},
    ]
    order = [node["id"] for node in nodes]
    edges = [{"id": f"{source}->{target}", "type": "edge", "sourceId": source, "targetId": target}
             for source, target in itertools.pairwise(order)]
    return {"contentType": "application/vnd.gorules.decision", "nodes": nodes, "edges": edges}
