"""Carry connections, variables and pools from an Airflow 2 environment into an Airflow 3 one.

The pure core of ``openmwaa import-metadata``. The old environment writes three files with
Airflow 2's own CLI (:data:`EXPORT_COMMANDS`); this module

1. parses and validates them (:func:`parse_connections`, :func:`parse_variables`,
   :func:`parse_pools`, or all three with :func:`parse_bundle`), returning every problem, each
   naming the file, the entry and the field, never a value (the files hold passwords);
2. turns them into the bodies of Airflow 3's bulk endpoints, ``PATCH /api/v2/connections``,
   ``/variables`` and ``/pools`` (:func:`plan_import`), one ``create`` action per kind;
3. sends them through a :class:`Transport` the caller supplies and reads the bulk responses
   into a :class:`Report` (:func:`request_token`, :func:`import_metadata`).

``default_pool``: every Airflow 3 environment has it. With ``on_existing="fail"`` it is left out
of the request and reported as skipped with a note, because one existing pool would otherwise
make Airflow refuse the whole pools action; ``"overwrite"`` gives it the old slots.

No I/O happens here except through the transport; :mod:`openmwaa.cli.metadata_import` is the
command-line adapter (files, Secrets Manager, urllib).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Kind = Literal["connections", "variables", "pools"]
OnExisting = Literal["fail", "skip", "overwrite"]

KINDS: tuple[Kind, ...] = ("connections", "variables", "pools")
ON_EXISTING: tuple[OnExisting, ...] = ("fail", "skip", "overwrite")

EXPORT_COMMANDS: Mapping[Kind, str] = {
    "connections": "airflow connections export FILE --file-format json",
    "variables": "airflow variables export FILE",
    "pools": "airflow pools export FILE",
}
"""The Airflow 2 commands that write the files this module reads."""

BULK_PATHS: Mapping[Kind, str] = {
    "connections": "/api/v2/connections",
    "variables": "/api/v2/variables",
    "pools": "/api/v2/pools",
}
TOKEN_PATH = "/auth/token"
"""The FAB auth manager's login endpoint: ``{"username", "password"}`` -> ``{"access_token"}``."""

DEFAULT_POOL = "default_pool"
REDACTED = "***"

# Limits Airflow 3.3's request models enforce; a single entity breaking one makes the API
# refuse the whole request (422), so they are checked before anything is sent.
_CONNECTION_ID = re.compile(r"[\w.-]+")
_CONNECTION_ID_MAX = 200
_VARIABLE_KEY_MAX = 250
_POOL_NAME_MAX = 256

_CONNECTION_TEXT_FIELDS = ("description", "host", "login", "schema", "password")
_CONNECTION_FIELDS = frozenset({"conn_type", "port", "extra", *_CONNECTION_TEXT_FIELDS})
_POOL_FIELDS = frozenset({"slots", "description", "include_deferred"})

# Parts of a variable's key that mark its value as a secret in --dry-run output.
SENSITIVE_KEY_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "credential",
    "private",
    "auth",
    "dsn",
    "connection_string",
    "webhook",
)
_MIN_SCRUBBED_LENGTH = 3


# --------------------------------------------------------------------------------------------
# Entities


@dataclass(frozen=True)
class Connection:
    """One connection, in Airflow 3's terms (``extra`` is a JSON object as a string)."""

    connection_id: str
    conn_type: str
    description: str | None = None
    host: str | None = None
    login: str | None = None
    schema: str | None = None
    port: int | None = None
    password: str | None = None
    extra: str | None = None

    def body(self) -> dict[str, Any]:
        """The entity of ``PATCH /api/v2/connections``; every field, so overwrite copies nulls."""
        return {
            "connection_id": self.connection_id,
            "conn_type": self.conn_type,
            "description": self.description,
            "host": self.host,
            "login": self.login,
            "schema": self.schema,
            "port": self.port,
            "password": self.password,
            "extra": self.extra,
        }


@dataclass(frozen=True)
class Variable:
    """One variable: the value as Airflow 2 exported it (JSON-decoded when it was JSON).

    Airflow 3 stores a string as is and JSON-encodes anything else, as Airflow 2's own
    ``variables import`` does. Airflow 2's export carries no descriptions.
    """

    key: str
    value: Any

    def body(self) -> dict[str, Any]:
        """The entity of ``PATCH /api/v2/variables``."""
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True)
class Pool:
    """One pool; ``slots`` -1 means unlimited."""

    name: str
    slots: int
    description: str | None = None
    include_deferred: bool = False

    def body(self) -> dict[str, Any]:
        """The entity of ``PATCH /api/v2/pools``."""
        return {
            "name": self.name,
            "slots": self.slots,
            "description": self.description,
            "include_deferred": self.include_deferred,
        }


@dataclass(frozen=True)
class Bundle:
    """What to import; a kind that is ``None`` was not asked for."""

    connections: tuple[Connection, ...] | None = None
    variables: tuple[Variable, ...] | None = None
    pools: tuple[Pool, ...] | None = None

    def kinds(self) -> tuple[Kind, ...]:
        """The kinds asked for, in the order they are sent."""
        return tuple(kind for kind in KINDS if getattr(self, kind) is not None)

    def secrets(self) -> frozenset[str]:
        """Every string that must not reach the terminal: passwords, whole extras, and the
        strings under a secret-looking key (:func:`is_sensitive_key`) in extras and variables."""
        found: set[str] = set()
        for connection in self.connections or ():
            if connection.password:
                found.add(connection.password)
            if connection.extra:
                found.add(connection.extra)
                found.update(_secret_strings(_json_or_none(connection.extra.encode())))
        for variable in self.variables or ():
            found.update(_secret_strings(variable.value, is_sensitive_key(variable.key)))
        return frozenset(s for s in found if len(s) >= _MIN_SCRUBBED_LENGTH)


class InputError(ValueError):
    """The export files are not usable; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------------------------
# Parsing and validation


def parse_connections(
    text: str, source: str = "connections file"
) -> tuple[tuple[Connection, ...], list[str]]:
    """The connections of ``airflow connections export FILE --file-format json`` (Airflow 2):
    ``{conn_id: {conn_type, description, login, password, host, port, schema, extra}}``.

    Returns the connections and every problem; a connection with a problem is left out.
    ``extra`` may be null, empty, a JSON object as a string (what the export writes) or an
    object; Airflow 3 accepts only a JSON object, so any other extra is a problem.
    """
    data, problems = _load_object(text, source, "connections")
    connections: list[Connection] = []
    for conn_id, entry in (data or {}).items():
        where = f"{source}: connection {conn_id!r}"
        found: list[str] = []
        if len(conn_id) > _CONNECTION_ID_MAX or not _CONNECTION_ID.fullmatch(conn_id):
            found.append(
                f"{where}: Airflow 3 accepts connection ids of 1 to {_CONNECTION_ID_MAX} letters,"
                " digits, '_', '.' and '-'"
            )
        if not isinstance(entry, dict):
            problems.append(
                f"{where}: expected an object with conn_type, host, ..., got {_kind_of(entry)}"
            )
            problems.extend(found)
            continue
        unknown = sorted(set(entry) - _CONNECTION_FIELDS)
        if unknown:
            found.append(
                f"{where}: unknown field(s) {', '.join(unknown)}; the export writes only "
                f"{', '.join(sorted(_CONNECTION_FIELDS))}"
            )
        conn_type = entry.get("conn_type")
        if not isinstance(conn_type, str) or not conn_type:
            found.append(f"{where}: conn_type is missing or empty; every connection needs one")
        for name in _CONNECTION_TEXT_FIELDS:
            value = entry.get(name)
            if value is not None and not isinstance(value, str):
                found.append(f"{where}: {name} must be a string or null, got {_kind_of(value)}")
        port = entry.get("port")
        if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
            found.append(f"{where}: port must be an integer or null, got {_kind_of(port)}")
        extra, extra_problem = _extra_as_string(entry.get("extra"))
        if extra_problem:
            found.append(f"{where}: {extra_problem}")
        if found:
            problems.extend(found)
            continue
        connections.append(
            Connection(
                connection_id=conn_id,
                conn_type=str(conn_type),
                description=entry.get("description"),
                host=entry.get("host"),
                login=entry.get("login"),
                schema=entry.get("schema"),
                port=port,
                password=entry.get("password"),
                extra=extra,
            )
        )
    return tuple(connections), problems


def parse_variables(
    text: str, source: str = "variables file"
) -> tuple[tuple[Variable, ...], list[str]]:
    """The variables of ``airflow variables export FILE`` (Airflow 2): ``{key: value}``, where
    a value stored as JSON was decoded (so ``500``, ``false``, objects and lists appear as such).

    Returns the variables and every problem; a variable with a problem is left out.
    """
    data, problems = _load_object(text, source, "variables")
    variables: list[Variable] = []
    for key, value in (data or {}).items():
        where = f"{source}: variable {key!r}"
        if not key or len(key) > _VARIABLE_KEY_MAX:
            problems.append(
                f"{where}: Airflow 3 accepts keys of 1 to {_VARIABLE_KEY_MAX} characters"
            )
        elif _has_non_finite_number(value):
            problems.append(
                f"{where}: the value holds NaN or Infinity, which Airflow 3's API refuses"
            )
        else:
            variables.append(Variable(key=key, value=value))
    return tuple(variables), problems


def parse_pools(text: str, source: str = "pools file") -> tuple[tuple[Pool, ...], list[str]]:
    """The pools of ``airflow pools export FILE`` (Airflow 2):
    ``{name: {slots, description, include_deferred}}``; ``include_deferred`` may be missing
    (exports older than Airflow 2.7), then it is false.

    Returns the pools and every problem; a pool with a problem is left out.
    """
    data, problems = _load_object(text, source, "pools")
    pools: list[Pool] = []
    for name, entry in (data or {}).items():
        where = f"{source}: pool {name!r}"
        found: list[str] = []
        if not name or len(name) > _POOL_NAME_MAX:
            found.append(
                f"{where}: Airflow 3 accepts pool names of 1 to {_POOL_NAME_MAX} characters"
            )
        if not isinstance(entry, dict):
            problems.append(
                f"{where}: expected an object with slots, description and include_deferred,"
                f" got {_kind_of(entry)}"
            )
            problems.extend(found)
            continue
        unknown = sorted(set(entry) - _POOL_FIELDS)
        if unknown:
            found.append(
                f"{where}: unknown field(s) {', '.join(unknown)}; the export writes only "
                f"{', '.join(sorted(_POOL_FIELDS))}"
            )
        slots = entry.get("slots")
        if "slots" not in entry:
            found.append(f"{where}: slots is missing")
        elif not isinstance(slots, int) or isinstance(slots, bool):
            found.append(f"{where}: slots must be an integer, got {_kind_of(slots)}")
        elif slots < -1:
            found.append(f"{where}: slots is {slots}; allowed: -1 (unlimited) or more")
        description = entry.get("description")
        if description is not None and not isinstance(description, str):
            found.append(
                f"{where}: description must be a string or null, got {_kind_of(description)}"
            )
        include_deferred = entry.get("include_deferred", False)
        if not isinstance(include_deferred, bool):
            found.append(
                f"{where}: include_deferred must be true or false, got {_kind_of(include_deferred)}"
            )
        if found:
            problems.extend(found)
            continue
        pools.append(
            Pool(
                name=name,
                slots=int(slots) if isinstance(slots, int) else 0,
                description=description,
                include_deferred=include_deferred,
            )
        )
    return tuple(pools), problems


def parse_bundle(texts: Mapping[Kind, tuple[str, str]]) -> Bundle:
    """The bundle of the given files, ``{kind: (source name, text)}``.

    :raises InputError: listing every problem of every file; then nothing may be sent.
    """
    problems: list[str] = []
    connections = variables = pools = None
    if "connections" in texts:
        connections, found = parse_connections(texts["connections"][1], texts["connections"][0])
        problems.extend(found)
    if "variables" in texts:
        variables, found = parse_variables(texts["variables"][1], texts["variables"][0])
        problems.extend(found)
    if "pools" in texts:
        pools, found = parse_pools(texts["pools"][1], texts["pools"][0])
        problems.extend(found)
    if problems:
        raise InputError(problems)
    return Bundle(connections=connections, variables=variables, pools=pools)


def _load_object(text: str, source: str, kind: Kind) -> tuple[dict[str, Any] | None, list[str]]:
    hint = f"write it with `{EXPORT_COMMANDS[kind]}` on the Airflow 2 environment"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        # The message names the position only: the text may hold passwords.
        return None, [
            f"{source}: not JSON ({error.msg} at line {error.lineno} column {error.colno}); {hint}"
        ]
    if not isinstance(data, dict):
        return None, [f"{source}: expected a JSON object of {kind}, got {_kind_of(data)}; {hint}"]
    return data, []


def _extra_as_string(extra: Any) -> tuple[str | None, str | None]:
    """The extra as Airflow 3 takes it (a JSON object as a string, or None), or a problem."""
    if extra is None or extra == "":
        return None, None
    if isinstance(extra, dict):
        if _has_non_finite_number(extra):
            return None, "extra holds NaN or Infinity, which Airflow 3's API refuses"
        return json.dumps(extra), None
    if not isinstance(extra, str):
        return None, f"extra must be a JSON object, a string or null, got {_kind_of(extra)}"
    try:
        decoded = json.loads(extra)
    except json.JSONDecodeError:
        decoded = None
    if not isinstance(decoded, dict):
        return None, (
            "extra is not a JSON object, and Airflow 3 accepts nothing else"
            " (fix the connection on the old environment, or in the file)"
        )
    return extra, None


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _has_non_finite_number(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite_number(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_non_finite_number(item) for item in value)
    return False


def _secret_strings(value: Any, sensitive: bool = False) -> Iterable[str]:
    """The strings in ``value`` that sit under a secret-looking key (or all, if ``sensitive``)."""
    if isinstance(value, str):
        if sensitive:
            yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secret_strings(item, sensitive or is_sensitive_key(str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _secret_strings(item, sensitive)


def is_sensitive_key(key: str) -> bool:
    """Whether a variable's key marks its value as secret (``api_secret``, ``db_password``)."""
    lowered = key.lower()
    return any(part in lowered for part in SENSITIVE_KEY_PARTS)


# --------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class Skip:
    """An entity not written, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class KindPlan:
    """What is sent for one kind: ``body`` is None when nothing is left to send."""

    kind: Kind
    path: str
    names: tuple[str, ...]
    body: dict[str, Any] | None
    skipped: tuple[Skip, ...] = ()


def bulk_body(entities: Sequence[Mapping[str, Any]], on_existing: OnExisting) -> dict[str, Any]:
    """A bulk body with one ``create`` action."""
    return {
        "actions": [
            {
                "action": "create",
                "entities": [dict(entity) for entity in entities],
                "action_on_existence": on_existing,
            }
        ]
    }


def plan_import(bundle: Bundle, on_existing: OnExisting) -> tuple[KindPlan, ...]:
    """One :class:`KindPlan` per kind asked for, in the order they are sent."""
    if on_existing not in ON_EXISTING:
        raise ValueError(f"on_existing is {on_existing!r}; allowed: {', '.join(ON_EXISTING)}")
    plans: list[KindPlan] = []
    for kind in bundle.kinds():
        skipped: list[Skip] = []
        entities: list[tuple[str, dict[str, Any]]] = []
        if kind == "connections":
            entities = [(c.connection_id, c.body()) for c in bundle.connections or ()]
        elif kind == "variables":
            entities = [(v.key, v.body()) for v in bundle.variables or ()]
        else:
            for pool in bundle.pools or ():
                if pool.name == DEFAULT_POOL and on_existing == "fail":
                    skipped.append(
                        Skip(
                            DEFAULT_POOL,
                            "Airflow 3 has its own default_pool; --on-existing overwrite gives"
                            f" it the old {pool.slots} slots",
                        )
                    )
                else:
                    entities.append((pool.name, pool.body()))
        names = tuple(name for name, _ in entities)
        body = bulk_body([entity for _, entity in entities], on_existing) if entities else None
        plans.append(KindPlan(kind, BULK_PATHS[kind], names, body, tuple(skipped)))
    return tuple(plans)


def redacted_body(plan: KindPlan) -> dict[str, Any] | None:
    """The plan's body for display: passwords, extras' values and the values of variables
    whose key looks secret replaced by ``***`` (extras keep their keys)."""
    if plan.body is None:
        return None
    actions = []
    for action in plan.body["actions"]:
        entities = [_redacted_entity(plan.kind, dict(entity)) for entity in action["entities"]]
        actions.append({**action, "entities": entities})
    return {"actions": actions}


def _redacted_entity(kind: Kind, entity: dict[str, Any]) -> dict[str, Any]:
    if kind == "connections":
        if entity.get("password") is not None:
            entity["password"] = REDACTED
        if entity.get("extra") is not None:
            extra = _json_or_none(str(entity["extra"]).encode())
            keys = extra if isinstance(extra, dict) else {}
            entity["extra"] = json.dumps(dict.fromkeys(keys, REDACTED))
    elif kind == "variables" and is_sensitive_key(entity["key"]):
        entity["value"] = REDACTED
    return entity


# --------------------------------------------------------------------------------------------
# Transport port


@dataclass(frozen=True)
class HttpResponse:
    """What the server answered; ``location`` is the redirect target of a 3xx."""

    status: int
    body: bytes
    location: str | None = None


class Transport(Protocol):
    """Sends one HTTP request and returns the response, whatever its status; raises
    :class:`TransportError` when no response came (DNS, refused, timeout, TLS)."""

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, /
    ) -> HttpResponse: ...


class TransportError(Exception):
    """No HTTP response; the message names the request, never a body or a header."""


class LoginError(Exception):
    """``POST /auth/token`` did not give a token; the message holds no password."""


def request_token(base_url: str, username: str, password: str, *, transport: Transport) -> str:
    """A JWT from the FAB auth manager of the Airflow 3 environment at ``base_url``.

    :raises LoginError: refused credentials, an endpoint that is not there (an Airflow 2
        environment), an unexpected answer, or no answer.
    """
    url = _join(base_url, TOKEN_PATH)
    body = json.dumps({"username": username, "password": password}).encode()
    secrets = frozenset({password}) if len(password) >= _MIN_SCRUBBED_LENGTH else frozenset()
    try:
        response = transport("POST", url, _JSON_HEADERS, body)
    except TransportError as error:
        raise LoginError(scrub(str(error), secrets)) from None
    if response.status in (200, 201):
        token = _json_or_none(response.body)
        if isinstance(token, dict) and isinstance(token.get("access_token"), str):
            return str(token["access_token"])
        raise LoginError(f"POST {url}: HTTP {response.status} without an access_token")
    detail = scrub(_describe_error(response), secrets)
    if response.status == 404:
        detail += (
            "; is this the Airflow 3 environment's URL (the AirflowUrl output)? Airflow 2 has"
            " no /auth/token"
        )
    if response.status in (400, 401, 403):
        detail = f"login as {username!r} refused: {detail}"
    raise LoginError(f"POST {url}: {detail}")


# --------------------------------------------------------------------------------------------
# Responses and the report


@dataclass(frozen=True)
class ApiError:
    """One error the server reported for an action (or for the whole request)."""

    message: str
    status: int | None = None


@dataclass(frozen=True)
class KindReport:
    """The outcome for one kind. With ``overwrite``, ``created`` holds overwritten ones too."""

    kind: Kind
    created: tuple[str, ...] = ()
    skipped: tuple[Skip, ...] = ()
    failed: tuple[str, ...] = ()
    errors: tuple[ApiError, ...] = ()

    @property
    def ok(self) -> bool:
        """Everything asked for landed or was skipped on purpose."""
        return not self.failed and not self.errors


@dataclass(frozen=True)
class Report:
    """The outcome of an import, per kind."""

    on_existing: OnExisting
    kinds: tuple[KindReport, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Whether every kind is :attr:`KindReport.ok`."""
        return all(kind.ok for kind in self.kinds)

    def lines(self) -> list[str]:
        """The report as text, one kind after the other; names, never values."""
        created = "created or overwritten" if self.on_existing == "overwrite" else "created"
        out: list[str] = []
        for kind in self.kinds:
            out.append(
                f"{kind.kind}: {len(kind.created)} {created}, {len(kind.skipped)} skipped,"
                f" {len(kind.failed)} failed"
            )
            out.extend(f"  skipped {skip.name}: {skip.reason}" for skip in kind.skipped)
            if kind.failed:
                out.append(f"  failed: {', '.join(kind.failed)}")
            for error in kind.errors:
                status = f" (HTTP {error.status})" if error.status is not None else ""
                out.append(f"  error{status}: {error.message}")
                if error.status == 409 and self.on_existing == "fail":
                    out.append(
                        "  nothing of this kind was written: rerun with --on-existing skip to"
                        " keep what exists, or overwrite to replace it"
                    )
        return out


def interpret_bulk_response(
    plan: KindPlan,
    response: HttpResponse,
    on_existing: OnExisting,
    secrets: Iterable[str] = (),
) -> KindReport:
    """Reads the answer to one bulk request.

    Airflow answers 200 with ``{"create": {"success": [names], "errors": [{"error",
    "status_code"}]}}``; with ``fail``, one existing entity fails the whole action (409, no
    successes). A name neither in ``success`` nor covered by an error is skipped when
    ``on_existing`` is ``skip`` (it existed), failed otherwise. A non-2xx answer fails all.
    """
    secret_set = frozenset(secrets)
    if not 200 <= response.status < 300:
        error = ApiError(scrub(_describe_error(response), secret_set), response.status)
        return KindReport(plan.kind, skipped=plan.skipped, failed=plan.names, errors=(error,))
    payload = _json_or_none(response.body)
    result = payload.get("create") if isinstance(payload, dict) else None
    if not isinstance(result, dict):
        message = f"unexpected answer without a create result: {_snippet(response.body)}"
        error = ApiError(scrub(message, secret_set), response.status)
        return KindReport(plan.kind, skipped=plan.skipped, failed=plan.names, errors=(error,))
    success = {str(name) for name in result.get("success") or ()}
    errors = tuple(_api_error(item, secret_set) for item in result.get("errors") or ())
    created = tuple(name for name in plan.names if name in success)
    rest = tuple(name for name in plan.names if name not in success)
    skipped = list(plan.skipped)
    failed: tuple[str, ...] = ()
    if errors:
        failed = rest
    elif on_existing == "skip":
        skipped.extend(Skip(name, "already exists") for name in rest)
    elif rest:
        failed = rest
        errors = (ApiError("the server reported neither success nor an error for these"),)
    return KindReport(plan.kind, created, tuple(skipped), failed, errors)


def import_metadata(
    base_url: str,
    token: str,
    bundle: Bundle,
    on_existing: OnExisting = "fail",
    *,
    transport: Transport,
) -> Report:
    """Send the bundle to the Airflow 3 environment at ``base_url`` (one bulk request per kind,
    authenticated with ``token``) and report what landed. A kind whose request gets no answer
    is failed; the other kinds are still sent."""
    secrets = bundle.secrets() | {token}
    headers = {**_JSON_HEADERS, "Authorization": f"Bearer {token}"}
    reports: list[KindReport] = []
    for plan in plan_import(bundle, on_existing):
        if plan.body is None:
            reports.append(KindReport(plan.kind, skipped=plan.skipped))
            continue
        try:
            response = transport(
                "PATCH", _join(base_url, plan.path), headers, json.dumps(plan.body).encode()
            )
        except TransportError as error:
            reports.append(
                KindReport(
                    plan.kind,
                    skipped=plan.skipped,
                    failed=plan.names,
                    errors=(ApiError(scrub(str(error), secrets)),),
                )
            )
            continue
        reports.append(interpret_bulk_response(plan, response, on_existing, secrets))
    return Report(on_existing, tuple(reports))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (also JSON- or repr-escaped) replaced by ``***``."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) < _MIN_SCRUBBED_LENGTH:
            continue
        forms.update({secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]})
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


_JSON_HEADERS: Mapping[str, str] = {
    "Content-Type": "application/json",
    "Accept": "application/json",
}


def _join(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _snippet(body: bytes, limit: int = 200) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= limit else text[:limit] + "..."


def _describe_error(response: HttpResponse) -> str:
    """A failed response in one line. FastAPI's 422 details echo the offending input (which
    may be a password): only their location and message are kept."""
    if 300 <= response.status < 400:
        return f"HTTP {response.status} redirect to {response.location}; give that URL instead"
    payload = _json_or_none(response.body)
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                location = ".".join(str(part) for part in item.get("loc") or ())
                parts.append(f"{location}: {item.get('msg', 'invalid')}")
        if parts:
            return "; ".join(parts)
    return f"HTTP {response.status}: {_snippet(response.body) or 'no body'}"


def _api_error(item: Any, secrets: frozenset[str]) -> ApiError:
    if isinstance(item, dict):
        status = item.get("status_code")
        return ApiError(
            scrub(str(item.get("error", item)), secrets),
            status if isinstance(status, int) else None,
        )
    return ApiError(scrub(str(item), secrets))
