"""Start-up checks: a setting that cannot work stops the server with one line naming the setting and the fix.

Every check here runs before anything listens, so a server either starts whole or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pydantic import ValidationError

from regelmotor.addresses import is_loopback
from regelmotor.core.errors import RegelmotorError, RulesetInvalid
from regelmotor.core.identity import Pseudonymiser, check_key, load_key, read_key_file
from regelmotor.core.repository import RulesetRepository, RulesetSnapshot
from regelmotor.store import DecisionLog, SchemaTooNew, open_log

from .config import Settings


class StartupError(RegelmotorError):
    """A setting the server cannot start with: which one, what is wrong, and what to do."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        self.problem = problem
        self.fix = fix
        super().__init__(f"{env_name(setting)}: {problem}; {fix}")


def env_name(setting: str) -> str:
    return f"REGELMOTOR_{setting.upper()}"


def from_validation(error: ValidationError) -> StartupError:
    """The first bad setting of a pydantic validation error, as a StartupError."""
    first = error.errors()[0]
    setting = str(first["loc"][0]) if first["loc"] else "config"
    value = first.get("input")
    shown = f" (got {str(value)[:60]!r})" if value is not None and not isinstance(value, dict) else ""
    if first["type"] == "extra_forbidden":
        return StartupError(setting, "is not a setting", "see docs/configuration.md for the settings")
    return StartupError(setting, f"{first['msg']}{shown}", "see docs/configuration.md")


# REGELMOTOR_* variables that are not settings of the server but are read elsewhere: the config file's name, and
# the address and the audit purpose the commands that call the service use (set in the same shell as often as not).
_OTHER_VARIABLES = ("REGELMOTOR_CONFIG", "REGELMOTOR_ADDRESS", "REGELMOTOR_PURPOSE")
_OTHER_PREFIXES = ("REGELMOTOR_TEST_",)


def unknown_variables(environment: Mapping[str, str], fields: Iterable[str]) -> None:
    """A misspelt REGELMOTOR_* variable would silently leave its setting at the default: refuse it."""
    known = {env_name(name) for name in fields}
    for name in sorted(environment):
        if (name.startswith("REGELMOTOR_") and name not in known and name not in _OTHER_VARIABLES
                and not name.startswith(_OTHER_PREFIXES)):
            raise StartupError(name[len("REGELMOTOR_"):].lower(), "is not a setting",
                               "check its spelling against docs/configuration.md (it is not a setting)")


def exposure(host: str, *, tls: bool, authentication: bool, insecure: bool) -> str:
    """The one line that says how this server can be reached; StartupError when it would be reachable from
    other machines without TLS or without authentication and `insecure` does not say that is meant."""
    if is_loopback(host):
        posture = "TLS" if tls else "no TLS"
        auth = "bearer tokens required" if authentication else "authentication off"
        return f"listening on {host} only (this machine), {posture}, {auth}"
    missing = [what for what, on in (("TLS", tls), ("authentication", authentication)) if not on]
    if not missing:
        return f"listening on {host}, TLS, bearer tokens required"
    if not insecure:
        raise StartupError("host", f"{host} is reachable from other machines, but {' and '.join(missing)} "
                           f"{'is' if len(missing) == 1 else 'are'} off",
                           "configure REGELMOTOR_TLS_* and REGELMOTOR_AUTH_JWKS_*, listen on 127.0.0.1, or set "
                           "REGELMOTOR_INSECURE=true for a test network")
    return (f"WARNING: listening on {host} without {' and '.join(missing)} (REGELMOTOR_INSECURE=true): anyone who "
            "can reach the port can read and write health decisions")


def load_rulesets(root: Path, *, include_drafts: bool) -> tuple[RulesetSnapshot, RulesetRepository]:
    """The snapshot every process of this instance serves, and its repository; refuses to serve nothing."""
    if not root.is_dir():
        raise StartupError("rulesets", f"{root} is not a directory",
                           "point it at a directory of <name>/<version>.yaml files (the bundled ones are in rulesets/)")
    try:
        snapshot = RulesetSnapshot.read(root)
        repository = RulesetRepository.from_snapshot(snapshot, include_drafts=include_drafts)
    except RulesetInvalid as exc:
        first = exc.diagnostics[0]
        more = f" (and {len(exc.diagnostics) - 1} more)" if len(exc.diagnostics) > 1 else ""
        raise StartupError("rulesets", f"the rulesets in {root} have problems: {first}{more}",
                           "run `regelmotor ruleset validate` on the directory and fix them") from None
    if not repository.versions:
        raise StartupError("rulesets", f"{root} holds no ruleset versions",
                           "point it at a directory of <name>/<version>.yaml files (the bundled ones are in rulesets/)")
    return snapshot, repository


def data_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-check"
        probe.write_text("ok", encoding="ascii")
        probe.unlink()
    except OSError as exc:
        raise StartupError("data_dir", f"cannot write to {path} ({exc.strerror or exc})",
                           "choose a directory the service may write to") from None
    return path


def pseudonymiser(settings: Settings, data: Path, *, authentication: bool) -> Pseudonymiser:
    """The pseudonymiser of the service (the front's and the engine workers'): new decisions get the current key;
    the retired keys of `pseudonym_previous_key_files` find what was recorded under them."""
    key_file = settings.pseudonym_key_file or data / "pseudonym.key"
    allowed = settings.allow_key_in_data_dir
    key_apart(key_file, data, configured=settings.pseudonym_key is not None, authentication=authentication,
              allowed=allowed)
    key = pseudonym_key(settings.pseudonym_key, key_file)
    previous = previous_pseudonym_keys(settings.pseudonym_previous_key_files, key, data,
                                       authentication=authentication, allowed=allowed)
    return Pseudonymiser(key, allow_synthetic=settings.allow_synthetic_ids, previous_keys=previous)


def pseudonym_key(configured: str | None, key_file: Path) -> bytes:
    """The current pseudonym key: from `pseudonym_key`, else from the key file (made on first start)."""
    if not configured and key_file.exists() and key_file.stat().st_mode & 0o077:
        raise StartupError("data_dir", f"the pseudonym key file {key_file} can be read by others "
                           f"(mode {key_file.stat().st_mode & 0o777:o})", f"chmod 600 {key_file}")
    try:
        key = load_key(configured, key_file)
        check_key(key)
        return key
    except (ValueError, OSError) as exc:
        source = "pseudonym_key" if configured else "data_dir"
        raise StartupError(source, f"the pseudonym key cannot be used: {exc}",
                           "give 64 or more hex digits (32 random bytes), or remove the key file to make a new one"
                           if configured else f"check or remove {key_file}") from None


PREVIOUS_KEYS = "pseudonym_previous_key_files"


def previous_pseudonym_keys(key_files: Sequence[Path], current: bytes, data: Path, *, authentication: bool,
                            allowed: bool) -> list[bytes]:
    """The retired pseudonym keys, each file checked as the current key's file is (0600, apart from the log when
    authentication is on, a usable key); a retired key is only read, never made."""
    keys: dict[bytes, Path] = {}
    for key_file in key_files:
        try:
            mode = key_file.stat().st_mode
        except OSError as exc:
            raise StartupError(PREVIOUS_KEYS, f"cannot find {key_file} ({exc.strerror or exc})",
                               "give the path of a retired key file, or take it off the list") from None
        if mode & 0o077:
            raise StartupError(PREVIOUS_KEYS, f"the key file {key_file} can be read by others (mode {mode & 0o777:o})",
                               f"chmod 600 {key_file}")
        if authentication and not allowed:
            _apart(PREVIOUS_KEYS, key_file, data, "the retired key files on another volume")
        try:
            key = read_key_file(key_file)
        except (ValueError, OSError) as exc:
            reason = exc.strerror or exc if isinstance(exc, OSError) else exc
            raise StartupError(PREVIOUS_KEYS, f"{key_file} cannot be used as a pseudonym key: {reason}",
                               "give the file the retired key was kept in (64 or more hex digits)") from None
        if key == current:
            raise StartupError(PREVIOUS_KEYS, f"{key_file} holds the current pseudonym key",
                               "list only retired keys here; the current one is pseudonym_key or pseudonym_key_file")
        if key in keys:
            raise StartupError(PREVIOUS_KEYS, f"{key_file} holds the same key as {keys[key]}", "list each key once")
        keys[key] = key_file
    return list(keys)


def key_apart(key_file: Path, data: Path, *, configured: bool, authentication: bool, allowed: bool) -> None:
    """Where decisions leave a machine (authentication on), the key that re-identifies patients must not lie
    beside the log: whoever copies the data directory would hold both."""
    if configured or not authentication or allowed:
        return
    _apart("pseudonym_key_file", key_file, data,
           "REGELMOTOR_PSEUDONYM_KEY_FILE on another volume, or REGELMOTOR_PSEUDONYM_KEY from a secret")


def _apart(setting: str, key_file: Path, data: Path, elsewhere: str) -> None:
    if key_file.resolve().is_relative_to(data.resolve()):
        raise StartupError(setting, f"{key_file} lies inside the data directory {data}, next to the decision log",
                           f"keep the key apart ({elsewhere}), or set REGELMOTOR_ALLOW_KEY_IN_DATA_DIR=true")


def decision_log(location: str, data: Path) -> DecisionLog | None:
    """The decision log the settings name: SQLite in data_dir by default, PostgreSQL by DSN, or none."""
    if location == "off":
        return None
    target = str(data / "decisions.db") if location == "sqlite" else location
    try:
        return open_log(target)
    except SchemaTooNew as exc:  # reachable and whole, but migrated by a newer release: the fix is another one
        raise StartupError("decision_log", f"the decision log at {redact(target)} has schema version {exc.found}, "
                           f"newer than this regelmotor knows ({exc.known}): a newer release migrated it",
                           "run that release or a newer one (a schema is never migrated back; docs/operations.md, "
                           "\"Upgrading\")") from None
    except Exception as exc:  # psycopg, sqlite3 and our own other schema errors alike
        raise StartupError("decision_log", f"cannot open the decision log at {redact(target)}: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400],
                           "give 'sqlite', 'off' or a reachable postgresql:// DSN") from None


def redact(location: str) -> str:
    """A location without its password (never printed or logged)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", location))


def port_in_use(host: str, port: int) -> StartupError:
    return StartupError("port", f"cannot listen on {host}:{port} (in use, or the address is not this machine's)",
                        f"choose another port with {env_name('port')} (0 picks a free one) or stop the other "
                        "process")

