"""How fast the console's pages answer on the bundled data (issue 16: "pages answer within 300 ms").

Not a test: it prints figures. Run from the repository root:

    PYTHONPATH=services/rules:protos/python:clients/python:. python bench/console_pages.py --rounds 5

It starts the real service (`regelmotor serve`, one engine worker, SQLite log, the bundled rulesets) and the
console beside it (authentication off, the local default), makes `--decisions` decisions through the API from the
bundled cases so the auditor's pages have data, sets a purpose (formål) as a person would, then visits every page
reachable by following the console's own links from the start page (GET only, same origin, at most `--pages`
pages) `--rounds` times each, timing each answer in full (the body read), and the forms a person submits most: a
decision tried from a bundled case, an auditor's search. Prints median, p95 and worst milliseconds per page and
says which pages are above 300 ms at their median.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.console_support import running_console  # noqa: E402
from tests.server_process import running_server  # noqa: E402

from regelmotor_client import DecisionError, RegelmotorClient  # noqa: E402

GOAL_MS = 300.0


class _Links(HTMLParser):
    """The links of a page, and the fields of its POST forms as a browser would send them unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.csrf = ""
        self.forms: list[tuple[str, dict[str, str]]] = []  # (action, fields) of each POST form
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "a" and found.get("href"):
            self.links.append(found["href"])
        elif tag == "form" and found.get("method", "").lower() == "post":
            self.forms.append((found.get("action", ""), {}))
        elif tag == "input" and found.get("name"):
            self._input(found)
        elif tag == "select":
            self._select = found.get("name")
        elif tag == "option" and self._select and self.forms and ("selected" in found
                                                                  or self._select not in self.forms[-1][1]):
            self.forms[-1][1][self._select] = found.get("value", "")
        elif tag == "textarea" and found.get("name"):
            self._textarea = found["name"]

    def _input(self, found: dict[str, str]) -> None:
        if found["name"] == "csrf_token":
            self.csrf = found.get("value", "")
        if self.forms and (found.get("type") not in ("checkbox", "radio") or "checked" in found):
            self.forms[-1][1][found["name"]] = found.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1][1][self._textarea] = self.forms[-1][1].get(self._textarea, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _parsed(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def _timed(work: Callable[[], requests.Response]) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    answer = work()
    _ = answer.content  # the whole body
    return (time.perf_counter() - started) * 1000, answer


def _make_decisions(address: str, count: int) -> int:
    """Decisions from the bundled cases, round robin, so the log has something to find."""
    items: list[tuple[str, dict[str, Any], str | None]] = []
    for cases_file in sorted((ROOT / "rulesets").glob("*/*.cases.yaml")):
        document = yaml.safe_load(cases_file.read_text(encoding="utf-8"))
        for case in document.get("cases", []):
            if case.get("expect", {}).get("error") is None and isinstance(case.get("facts"), dict):
                # YAML reads dates and times as Python objects; the API takes them as ISO text.
                facts = json.loads(json.dumps(case["facts"], default=lambda value: value.isoformat()))
                items.append((cases_file.parent.name, facts, case.get("as_of")))
    made = 0
    with RegelmotorClient(address) as client:
        for index in range(count):
            ruleset, facts, as_of = items[index % len(items)]
            try:
                client.evaluate(ruleset, facts, as_of=str(as_of) if as_of else None, explanation="none")
                made += 1
            except DecisionError:  # a case for another version's dates, say: not a decision, skip it
                continue
    return made


def _crawl(session: requests.Session, base: str, limit: int) -> list[str]:
    seen: list[str] = []
    queue = ["/"]
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.append(path)
        answer = session.get(base + path, timeout=60)
        if "text/html" not in answer.headers.get("Content-Type", ""):
            continue
        for link in _parsed(answer.text).links:
            target = urlsplit(urljoin(base + path, link))
            if f"{target.scheme}://{target.netloc}" != base or "logg-ut" in target.path:
                continue
            local = target.path + (f"?{target.query}" if target.query else "")
            if local not in seen and local not in queue:
                queue.append(local)
    return seen


def _post_forms(session: requests.Session, base: str, rounds: int) -> dict[str, tuple[list[float], int]]:
    """The forms a person submits most, as filled in by the page itself: a decision tried from each current
    version's first test case (Prøv en beslutning), and the auditor's search for one ruleset's decisions."""
    asked: dict[str, tuple[str, dict[str, str]]] = {}
    for name, version in (("rett-til-helsehjelp", "2024.07"), ("utskrivningsklar", "2019.1"),
                          ("prioriterte-pasientgrupper", "2024.1")):
        first_case = re.search(r'<option value="([^"]+)"', session.get(
            f"{base}/regelsett/{name}/{version}/prov", timeout=60).text)
        filled = _parsed(session.get(f"{base}/regelsett/{name}/{version}/prov",
                                     params={"tilfelle": first_case.group(1) if first_case else ""},
                                     timeout=60).text)
        action, fields = next((a, f) for a, f in filled.forms if a.endswith("/prov"))
        asked[f"{name} {version} prøv"] = (action, fields)
    search = _parsed(session.get(f"{base}/revisjon/", timeout=60).text)
    action, fields = search.forms[0]
    asked["revisjon søk (rett-til-helsehjelp)"] = (action, fields | {"regelsett": "rett-til-helsehjelp"})
    timed: dict[str, tuple[list[float], int]] = {}
    for label, (action, fields) in asked.items():
        times: list[float] = []
        status = 0
        for _ in range(rounds):
            elapsed, answer = _timed(partial(session.post, urljoin(base + "/", action), data=fields, timeout=60))
            times.append(elapsed)
            status = answer.status_code
            # An answer that is not what a person asked for (a refusal page) would time the wrong work.
            if "Hvorfor" not in answer.text and "på denne siden, nyeste først" not in answer.text:
                raise SystemExit(f"{label}: the console did not answer with a decision or search results")
        timed[label] = (times, status)
    return timed


def _summary(name: str, times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"page": name, "n": len(times), "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(p95, 1), "worst_ms": round(ordered[-1], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--pages", type=int, default=150)
    parser.add_argument("--json", help="write the figures there too")
    args = parser.parse_args()
    with running_server(workers=1) as service, running_console(service.address) as console:
        made = _make_decisions(service.address, args.decisions)
        session = requests.Session()
        form = _parsed(session.get(console.url + "/formaal", timeout=60).text)
        session.post(console.url + "/formaal", data={"csrf_token": form.csrf, "formaal": "ytelsesmåling konsoll",
                                                      "neste": "/"}, timeout=60)
        pages = _crawl(session, console.url, args.pages)
        times: dict[str, list[float]] = {page: [] for page in pages}
        statuses: dict[str, int] = {}
        for _ in range(args.rounds):
            for page in pages:
                elapsed, answer = _timed(partial(session.get, console.url + page, timeout=60))
                times[page].append(elapsed)
                statuses[page] = answer.status_code
        posted = _post_forms(session, console.url, args.rounds)
    rows = [_summary(page, found) | {"status": statuses[page]} for page, found in times.items()]
    rows += [_summary(f"POST {name}", found) | {"status": status} for name, (found, status) in posted.items()]
    print(f"{made} decisions made; {len(pages)} pages reached by links; {args.rounds} rounds")
    print(f"{'page':70} {'status':>6} {'median':>8} {'p95':>8} {'worst':>8}")
    for row in rows:
        print(f"{row['page'][:70]:70} {row['status']:>6} {row['median_ms']:>8} {row['p95_ms']:>8} {row['worst_ms']:>8}")
    slow = [row["page"] for row in rows if row["median_ms"] > GOAL_MS]
    print(f"above {GOAL_MS:.0f} ms at the median: {slow or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
