"""Published identity numbers for tests, never computed here: no test makes check digits itself.

Sources:
- NAV: github.com/navikt/fnrvalidator, tests/fnr.spec.ts ("Alle fødselsnumre som forekommer her er
  autogenererte"), the validator NAV's health area publishes for fnr, dnr, hnr and Test Norge's tnr.
- python-stdnum: tests/test_no_fodselsnummer.doctest and the module docstring of stdnum.no.fodselsnummer
  (github.com/arthurdejong/python-stdnum).
"""

from __future__ import annotations

# Fødselsnummer: NAV (13097248022, 29029648784 = 29.02.1996, 29020075838 = 29.02.2000, 15021951940 whose
# computed second check digit is 11, written 0), stdnum (the rest; 13049958441 = 13.04.1899).
FODSELSNUMRE = ("13097248022", "29029648784", "29020075838", "15021951940", "15108695088", "10048744732",
                "10048745364", "11111598403", "18061592527", "23114038547", "23114048690", "26111594014",
                "26111593816", "26111594286", "26111594448", "13049958441")
D_NUMRE = ("53097248016",)  # NAV, dnr
H_NUMRE = ("13527248013",  # NAV, hnr
           "68467038838")  # NAV, "dnr-and-hnr": 40 added to both day and month
SYNTHETIC = ("10915596784",  # NAV, tnr: Test Norge's synthetic numbers, 80 added to the month
             "50846202355")  # NAV, "dnr-and-tnr"
# stdnum: "18103970861" is 18.10.2039 (individual number 708, year 39); stdnum's validate() refuses it as
# "this person has not been born yet", a comparison with today's date that we leave out on purpose.
BORN_AFTER_TODAY = "18103970861"
# Valid check digits, but no valid birth date (stdnum): month 57, month 62 (a D-nummer: 22 after -40),
# and a D-nummer of 05.01.40 with individual number 540, which belongs to no century for year 40.
NO_MONTH = ("19575770838", "70624830529")
NO_CENTURY = "45014054018"
FH_NUMBER = "82938389280"  # stdnum: an FH-number (first digit 8), valid check digits
# NAV: the first check digit of the format planned from 2032 (30.10.1982, "rest=1"); not accepted yet.
FORMAT_2032 = "30108299939"

VALID = FODSELSNUMRE + D_NUMRE + H_NUMRE + (BORN_AFTER_TODAY,)
