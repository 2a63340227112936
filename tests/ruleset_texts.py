"""Ruleset sources shared by several tests."""

# One ruleset with every section, each entry on a line of its own so a test can find it.
ALL_SECTIONS = """\
name: alle-seksjoner
version: "1"
title: Alle seksjoner
status: draft
gyldig_fra: 2020-01-01
hjemler:
  h1:
    kilde: LOV-1999-07-02-63
    verified: true
facts:
  mottatt: {type: date, required: true}
  alder:
    type: int
    min: 0
  kode: {type: enum, values_from: koder}
  diagnoser:
    type: list
    items: {type: string}
parameters:
  sats:
    type: int
    unit: NOK
    source: tabell
    hjemmel: h1
    values:
      - {gyldig_fra: 2020-01-01, value: 100}
tables:
  koder:
    key: kode
    columns:
      gruppe: {type: string}
    rows:
      - {kode: a1, gruppe: a}
derived:
  belop:
    expr: parameter('sats', mottatt)
rules:
  - id: r1
    title: Voksen
    hjemmel: h1
    when: alder >= 18
    then: {voksen: true}
  - id: r2
    title: Unntak
    hjemmel: h1
    unntak_fra: r1
    when: alder > 100
    then: {voksen: false}
outcomes:
  voksen:
    type: bool
    combine: unique
    internal: false
constraints:
  - id: c1
    when: alder < 0
    field: alder
    message: negativ alder
"""

