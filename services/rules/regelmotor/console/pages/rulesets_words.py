"""Norwegian words for a ruleset version's state and its lifecycle events, as policy staff say them."""

from __future__ import annotations

STATES = {"draft": "Utkast", "proposed": "Foreslått", "published": "Publisert", "retired": "Tatt ut av bruk",
          "rejected": "Avvist"}
ACTIONS = {"imported": "Lagt inn", "proposed": "Foreslått", "approved": "Godkjent og publisert",
           "rejected": "Avvist", "retired": "Tatt ut av bruk"}


def state_word(state: str) -> str:
    """"Publisert" for "published"; a state this console does not know yet is shown as the API names it."""
    return STATES.get(state, state)


def action_word(action: str) -> str:
    return ACTIONS.get(action, action)


def selected_by_words(selected_by: str) -> str:
    """What picks a ruleset's version, as policy staff say it: the assessment date (the API's "as_of", also when
    the ruleset names nothing), else the fact named, e.g. «ansiennitetsdato»."""
    if selected_by in ("", "as_of"):
        return "vurderingsdatoen"
    return f"faktumet «{selected_by}»"
