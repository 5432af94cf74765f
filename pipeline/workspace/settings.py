"""Typed workspace settings: comms.toml, then the environment on top.

Secrets (SMTP password, token keys) come only from the environment so that the
campaigns repository can be public inside the company without leaking them.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.errors import SettingsError
from pipeline.workspace.tomlfile import read_toml, toml_line, validate

SETTINGS_FILE = "comms.toml"
# HMAC-SHA256 keys shorter than the hash add nothing but guessability (RFC 2104 section 3).
MIN_SECRET_BYTES = 32
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sender(_Section):
    from_name: str
    from_email: str
    reply_to: str | None = None
    # Feedback-ID's last field (Gmail postmaster groups complaints by it).
    sender_id: str = "comms"
    # List-Id is <campaign.department.list_id_domain> (RFC 2919).
    list_id_domain: str
    # The mailto: half of List-Unsubscribe (RFC 2369).
    unsubscribe_mailto: str
    # VERP envelope sender: bounces+TOKEN@domain, where TOKEN names the delivery.
    bounce_address: str | None = None


class Database(_Section):
    # Relative SQLite paths are taken from the workspace root.
    url: str = "sqlite:///comms.db"
    # PostgreSQL: give up opening a connection after this long.
    connect_timeout_s: float = Field(default=10.0, gt=0)
    # PostgreSQL: the server cancels a statement running longer; a statement whose answer does not
    # come at all (a silent server or network) is abandoned by comms connect_timeout_s later.
    statement_timeout_s: float = Field(default=120.0, gt=0)
    # PostgreSQL: the server ends a session left idle inside a transaction this long (its locks go).
    idle_in_transaction_timeout_s: float = Field(default=60.0, gt=0)
    # PostgreSQL: TCP keepalive probes start after this long idle, so a dead peer is noticed.
    keepalive_idle_s: int = Field(default=30, ge=1)
    # SQLite: how long a writer waits for the single write lock.
    busy_timeout_s: float = Field(default=10.0, ge=0)
    # Workers, `comms send` and the daemon retry (with backoff) while the database is unreachable,
    # for this long; then they stop with one line.
    outage_s: float = Field(default=300.0, ge=0)


class Transport(_Section):
    kind: Literal["file", "smtp", "console"] = "file"
    # file transport: the folder the .eml files go to (relative to the workspace).
    path: str = "outbox"
    # smtp transport: smtp://user@host:port; the password only from COMMS_SMTP_PASSWORD.
    url: str | None = None
    security: Literal["starttls", "tls", "none"] = "starttls"
    # Plain (unencrypted) SMTP is refused except to loopback unless this is set.
    allow_plain: bool = False
    connections: int = Field(default=4, ge=1, le=64)
    timeout_s: float = Field(default=30.0, gt=0)


class Tracking(_Section):
    base_url: str = "http://127.0.0.1:8025"
    listen: str | None = None
    utm: dict[str, str] = Field(default_factory=dict)
    # Slow and idle clients: a request's headers must be in within header_timeout_s of connecting (or
    # of the previous response), its body within body_timeout_s; an idle keep-alive connection closes
    # after keep_alive_s. At max_connections the longest-idle connection is closed for a new one.
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    keep_alive_s: int = Field(default=5, ge=1)
    max_connections: int = Field(default=1000, ge=1)


class Brand(_Section):
    company: str
    address: str
    logo_url: str
    website: str = ""
    colors: dict[str, str] = Field(default_factory=dict)
    fonts: dict[str, str] = Field(default_factory=dict)
    # Anything else a layout may want as brand.* (social links, tagline...).
    extra: dict[str, str] = Field(default_factory=dict)


class Preview(_Section):
    email: str = "preview@example.com"
    first_name: str | None = "Alex"
    last_name: str | None = "Example"
    locale: str | None = None
    timezone: str | None = None
    attributes: dict[str, object] = Field(default_factory=dict)


class Dkim(_Section):
    domain: str
    # RSA (RFC 6376), which every receiver checks.
    selector: str | None = None
    key_file: str | None = None
    # Ed25519 (RFC 8463): a second signature beside RSA, or the only one (no key_file) for
    # receivers known to check it; about a tenth of RSA-2048's CPU.
    ed25519_selector: str | None = None
    ed25519_key_file: str | None = None

    @model_validator(mode="after")
    def _one_key_at_least(self) -> Dkim:
        for algorithm, selector, key in (
            ("", self.selector, self.key_file),
            ("ed25519_", self.ed25519_selector, self.ed25519_key_file),
        ):
            if bool(selector) != bool(key):
                raise ValueError(f"{algorithm}selector and {algorithm}key_file go together")
        if not self.key_file and not self.ed25519_key_file:
            raise ValueError("needs key_file (RSA), ed25519_key_file, or both")
        return self


class Rate(_Section):
    per_second: float = Field(default=50.0, gt=0)
    per_domain_per_second: float = Field(default=10.0, gt=0)
    # Overrides for particular recipient domains.
    domains: dict[str, float] = Field(default_factory=dict)


class Retry(_Section):
    schedule_s: list[float] = Field(
        default_factory=lambda: [60.0, 300.0, 900.0, 3600.0, 7200.0], min_length=1
    )
    max_age_h: float = Field(default=48.0, gt=0)


class Dispatch(_Section):
    batch_size: int = Field(default=200, ge=1)
    lease_s: float = Field(default=300.0, gt=0)
    pause_after_connection_failures: int = Field(default=10, ge=1)
    pause_after_policy_refusals: int = Field(default=20, ge=1)
    max_per_week: int | None = Field(default=None, ge=1)


class Bounces(_Section):
    # Mailbox `comms bounces poll` reads: imaps://user@host[:port][/FOLDER] (imap:// only to loopback);
    # the password only from COMMS_IMAP_PASSWORD.
    imap_url: str | None = None
    # Where processed messages are moved (created if missing).
    processed_folder: str = "comms-processed"
    # Where messages that cannot be read are moved (created if missing); `comms bounces unreadable`.
    unreadable_folder: str = "comms-unreadable"
    # A message larger than this is not read (recorded as unreadable, kept where it is moved).
    max_message_bytes: int = Field(default=10_000_000, ge=10_000)
    # This many soft bounces in a row (the address's latest sent deliveries) suppress the address.
    soft_bounce_limit: int = Field(default=3, ge=1)
    # Amazon SES via SNS: only notifications from these topics are accepted (none: endpoint off).
    ses_topic_arns: list[str] = Field(default_factory=list)


class Daemon(_Section):
    # An occurrence the daemon was down for still runs when it starts within this many seconds
    # of the occurrence; later, it is recorded as a `missed` run instead.
    grace_s: float = Field(default=3600.0, ge=0)
    # Dispatch workers inside the daemon (each with [transport] connections).
    concurrency: int = Field(default=1, ge=1, le=32)
    # host:port for /metrics and /health (daemon and `comms worker`); unset: not served.
    metrics_listen: str | None = None
    # How often a standby daemon tries to take over the leader's lock.
    standby_poll_s: float = Field(default=5.0, gt=0)


class ReportRules(_Section):
    """Thresholds of the recommendation rules (pipeline.reports.rules); each rule's README entry says why."""

    # Below this many delivered messages a rule says "too little data" instead of firing.
    min_delivered: int = Field(default=200, ge=1)
    bounce_rate: float = Field(default=0.02, ge=0, le=1)
    complaint_alert: float = Field(default=0.001, ge=0, le=1)
    complaint_critical: float = Field(default=0.003, ge=0, le=1)
    unsubscribe_vs_median: float = Field(default=2.0, gt=0)
    unsubscribe_history_runs: int = Field(default=6, ge=1)
    machine_click_share: float = Field(default=0.20, ge=0, le=1)
    apple_proxy_share: float = Field(default=0.40, ge=0, le=1)
    deep_link_share: float = Field(default=0.60, ge=0, le=1)
    deep_link_position: int = Field(default=3, ge=1)
    cta_share: float = Field(default=0.30, ge=0, le=1)
    min_clickers: int = Field(default=30, ge=1)
    send_window_hours: float = Field(default=2.0, gt=0)
    send_window_clickers: int = Field(default=300, ge=1)
    dormant_share: float = Field(default=0.15, ge=0, le=1)
    pchart_min_runs: int = Field(default=3, ge=2)


class Reports(_Section):
    # individual: per-person lists allowed; anonymous: no per-person output; aggregate: also
    # breakdown cells of fewer than min_cell recipients are suppressed.
    mode: Literal["individual", "anonymous", "aggregate"] = "anonymous"
    min_cell: int = Field(default=5, ge=1)
    # The contact attribute frozen onto each delivery as the recipient's department.
    department_field: str = "department"
    # A contact whose attribute of this name is true is a seed address, left out of rates.
    seed_field: str = "seed"
    rules: ReportRules = Field(default_factory=ReportRules)


class Contacts(_Section):
    # How a date that is not YYYY-MM-DD is read: 31/12/2026 (day-first) or 12/31/2026 (month-first).
    dates: Literal["day-first", "month-first"] = "day-first"
    # Attribute types that need no guessing: name = "text" | "number" | "bool" | "date".
    fields: dict[str, Literal["text", "number", "bool", "date"]] = Field(default_factory=dict)


class Signup(_Section):
    # Lists people may sign up to on the tracking server (/s/LIST); none: the form is off.
    lists: list[str] = Field(default_factory=list)
    # An unconfirmed sign-up is dropped after this many hours; its link stops working.
    expire_h: float = Field(default=48.0, gt=0)
    # Sign-up requests one address may make per hour (bots); more get 429.
    per_ip_per_hour: int = Field(default=5, ge=1)


class Checks(_Section):
    # Severity per rule id (see README "Checks"): "error" stops a send, "warning" and "info" are
    # only reported, "off" skips the rule. Rules not named keep their documented default.
    severity: dict[str, Literal["error", "warning", "info", "off"]] = Field(default_factory=dict)
    # How far (CIEDE2000) a colour in the HTML may lie from the nearest [brand.colors] entry.
    colour_distance: float = Field(default=5.0, gt=0)
    # Text smaller than this (CSS px) is hard to read on a phone.
    min_font_px: float = Field(default=12.0, gt=0)
    # Run `spamassassin -L -t` (local tests only) when the binary is installed.
    spamassassin: bool = True


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|days?|h|hours?|m|min|minutes?)\s*$")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_duration(value: str) -> timedelta | None:
    """ "2 days", "36h", "90 min" as a timedelta; None when VALUE is not such a duration."""
    found = _DURATION.match(value)
    return float(found[1]) * _UNITS[found[2][0]] if found else None


class Approvals(_Section):
    # Off: runs start without an approval (the audit lists them as sent without one).
    required: bool = True
    # Who may approve, as names or emails (compared ignoring case); empty: anyone who gives a name.
    approvers: list[str] = Field(default_factory=list)
    # `comms plan` warns about an unapproved campaign whose occurrence is closer than this ("2 days", "36h").
    lead_time: timedelta = timedelta(days=2)

    @field_validator("lead_time", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        found = parse_duration(value)
        if found is None:
            raise ValueError(f'lead_time must look like "2 days" or "36h", not {value!r}')
        return found

    def may_approve(self, who: str) -> bool:
        return not self.approvers or who.strip().casefold() in {a.strip().casefold() for a in self.approvers}


class Settings(_Section):
    sender: Sender
    brand: Brand
    database: Database = Field(default_factory=Database)
    transport: Transport = Field(default_factory=Transport)
    tracking: Tracking = Field(default_factory=Tracking)
    preview: Preview = Field(default_factory=Preview)
    dkim: Dkim | None = None
    rate: Rate = Field(default_factory=Rate)
    retry: Retry = Field(default_factory=Retry)
    dispatch: Dispatch = Field(default_factory=Dispatch)
    bounces: Bounces = Field(default_factory=Bounces)
    daemon: Daemon = Field(default_factory=Daemon)
    reports: Reports = Field(default_factory=Reports)
    contacts: Contacts = Field(default_factory=Contacts)
    signup: Signup = Field(default_factory=Signup)
    checks: Checks = Field(default_factory=Checks)
    approvals: Approvals = Field(default_factory=Approvals)

    # Filled from the environment only, never from the file.
    smtp_password: str | None = Field(default=None, exclude=True)
    imap_password: str | None = Field(default=None, exclude=True)
    secrets: list[str] = Field(default_factory=list, exclude=True)

    @property
    def secret(self) -> bytes:
        """The current token key; COMMS_SECRET="new,old,..." keeps older keys verifying."""
        if not self.secrets:
            raise SettingsError("COMMS_SECRET is not set: tracking and unsubscribe tokens need it")
        return self.secrets[0].encode()

    @property
    def verifying_keys(self) -> list[bytes]:
        """Every key a token may have been signed with: the current one first, then older ones."""
        return [key.encode() for key in self.secrets]


def _password(url: str) -> str | None:
    """The password written in URL, None when it has none (or is not a URL at all)."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def shown_url(url: str) -> str:
    """URL fit for a message or a log: its password, if any, replaced by ***."""
    if _password(url) is None:
        return url
    parts = urlsplit(url)
    user = f"{parts.username}:***@" if parts.username else ":***@"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=user + host))


def _check_database_url(url: str, text: str, path: Path, from_env: bool) -> None:
    """A one-line SettingsError (naming COMMS_DATABASE_URL or the comms.toml line) for a URL comms
    cannot use: another database, or a port that is not a number from 1 to 65535."""

    def refuse(problem: str) -> SettingsError:
        if from_env:
            return SettingsError(f"COMMS_DATABASE_URL {shown_url(url)!r}: {problem}")
        return SettingsError(
            f"database.url {shown_url(url)!r}: {problem}",
            path=path,
            line=toml_line(text, ("database", "url")),
        )

    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        raise refuse("comms uses sqlite:///FILE or postgresql://user@host:port/database")
    try:
        port = urlsplit(url).port
    except ValueError:
        port = 0
    if port == 0:
        raise refuse("the port must be a number from 1 to 65535")


def _check_secrets(keys: list[str]) -> None:
    for number, key in enumerate(keys, start=1):
        if len(key.encode()) < MIN_SECRET_BYTES:
            which = f"key #{number} of COMMS_SECRET" if len(keys) > 1 else "COMMS_SECRET"
            raise SettingsError(
                f"{which} is {len(key.encode())} bytes; a signing key needs at least {MIN_SECRET_BYTES} "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )


def _apply_environment(data: dict[str, Any], env: os._Environ[str] | dict[str, str]) -> None:
    if url := env.get("COMMS_DATABASE_URL"):
        data.setdefault("database", {})["url"] = url
    if url := env.get("COMMS_SMTP_URL"):
        transport = data.setdefault("transport", {})
        transport["url"] = url
        transport["kind"] = "smtp"
    if base := env.get("COMMS_TRACKING_URL"):
        data.setdefault("tracking", {})["base_url"] = base


def load_settings(root: Path, env: os._Environ[str] | dict[str, str] | None = None) -> Settings:
    """Read ROOT/comms.toml, apply the environment, validate; errors name file and line."""
    env = os.environ if env is None else env
    path = root / SETTINGS_FILE
    if not path.is_file():
        raise SettingsError(f"no {SETTINGS_FILE} here (is --workspace right?)", path=path)
    text, data = read_toml(path, path, SettingsError)
    for section, values in data.items():
        for key, value in values.items() if isinstance(values, dict) else ():
            if "password" in key or "secret" in key or (isinstance(value, str) and _password(value)):
                raise SettingsError(
                    f"{section}.{key}: secrets never go in {SETTINGS_FILE} (a password in a URL neither); "
                    "set them in the environment (COMMS_SECRET, COMMS_SMTP_PASSWORD, COMMS_IMAP_PASSWORD, "
                    "COMMS_DATABASE_URL)",
                    path=path,
                    line=toml_line(text, (section, key)),
                )
    _apply_environment(data, env)
    settings = validate(Settings, text, data, path, SettingsError)
    _check_database_url(settings.database.url, text, path, from_env=bool(env.get("COMMS_DATABASE_URL")))
    settings.smtp_password = env.get("COMMS_SMTP_PASSWORD")
    settings.imap_password = env.get("COMMS_IMAP_PASSWORD")
    settings.secrets = [key.strip() for key in env.get("COMMS_SECRET", "").split(",") if key.strip()]
    _check_secrets(settings.secrets)
    if settings.database.url.startswith("sqlite:///") and not settings.database.url.startswith("sqlite:////"):
        relative = settings.database.url.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            settings.database.url = f"sqlite:///{(root / relative).resolve()}"
    return settings
