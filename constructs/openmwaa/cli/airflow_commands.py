"""``openmwaa airflow``'s pure side: Airflow CLI commands as REST API calls, and their output.

A documented set of Airflow CLI commands, typed as on Airflow itself (and on MWAA's CLI
token), maps onto one REST API call each: ``/api/v2`` on Airflow 3, ``/api/v1`` on Airflow 2.
The arguments follow each major's own CLI (``airflow dags list-runs DAG`` on 3,
``airflow dags list-runs -d DAG`` on 2.11). Anything else is refused with the supported list.
No network, no AWS: :func:`plan` decides the call, :func:`render` formats Airflow's answer.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

LIST_LIMIT = 100
"""How many items a ``list`` command asks for (one page)."""

SUPPORTED = (
    "dags list",
    "dags trigger DAG_ID [-c CONF] [-r RUN_ID]",
    "dags pause DAG_ID",
    "dags unpause DAG_ID",
    "dags list-runs DAG_ID (Airflow 2: -d DAG_ID) [--state STATE] [-s START] [-e END]",
    "dags state DAG_ID RUN_ID_OR_DATE",
    "variables get KEY [--default VALUE] [-j]",
    "variables set KEY VALUE [--description TEXT]",
    "variables delete KEY",
    "variables list",
    "connections list",
    "connections delete CONN_ID",
    "pools list",
    "version",
)
"""The Airflow CLI commands ``openmwaa airflow`` runs, as help and error messages list them."""


class CommandError(Exception):
    """A command that is not supported or whose arguments are wrong: the message says why."""


@dataclass(frozen=True)
class AirflowCall:
    """One REST API call and how to print its answer."""

    method: str
    path: str
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    render: Callable[[int, Any], str] = field(default=lambda status, body: _json(body))
    missing_ok: str | None = None
    """Printed instead of an error when Airflow answers 404 (``variables get --default``)."""

    def invoke_body(self) -> dict[str, Any]:
        """The ``/invoke`` request: method, path, and query and body when given."""
        request: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.query:
            request["query"] = self.query
        if self.body is not None:
            request["body"] = self.body
        return request


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises CommandError instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"airflow {self.prog}: {message}")


def _parser(name: str) -> _Parser:
    return _Parser(prog=name, add_help=False)


def supported_message() -> str:
    """The supported commands, one per line."""
    return "supported commands:\n" + "\n".join(f"  airflow {line}" for line in SUPPORTED)


def _json(body: Any) -> str:
    return json.dumps(body, indent=2, sort_keys=True)


def _segment(value: str, what: str) -> str:
    if not value or ".." in value or value.startswith("/"):
        raise CommandError(f"{what} {value!r} is not a usable name")
    return urllib.parse.quote(value, safe="")


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "No data found"
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("=+=".join("=" * w for w in widths))
    lines += [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _list_renderer(key: str, columns: Sequence[str], output: str) -> Callable[[int, Any], str]:
    def render(status: int, body: Any) -> str:
        if output == "json":
            return _json(body)
        rows = body.get(key, []) if isinstance(body, dict) else []
        text = _table(rows, columns)
        total = body.get("total_entries") if isinstance(body, dict) else None
        if isinstance(total, int) and total > len(rows):
            text += f"\n({len(rows)} of {total} shown; use `openmwaa api` with offset for more)"
        return text

    return render


def _output_option(parser: _Parser) -> None:
    parser.add_argument("-o", "--output", choices=("table", "json", "plain"), default="table")


def _date(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not an ISO 8601 date: {value!r}") from None
    return value


def _is_date(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _fixed(text: str) -> Callable[[int, Any], str]:
    return lambda status, body: text


def plan(args: Sequence[str], major: int) -> AirflowCall:
    """The REST call of the Airflow CLI command ``args`` (without ``airflow``) on Airflow
    ``major`` (2 or 3); CommandError for anything else, listing what is supported."""
    if major not in (2, 3):
        raise CommandError(f"Airflow {major} is not supported: 2 or 3")
    prefix = "/api/v2" if major == 3 else "/api/v1"
    words = list(args)
    if words[:1] == ["version"]:
        _parser("version").parse_args(words[1:])
        return AirflowCall(
            "GET", f"{prefix}/version", render=lambda s, b: str((b or {}).get("version"))
        )
    padded = [*words, "", ""]
    group, command, rest = padded[0], padded[1], words[2:]
    handler = _COMMANDS.get((group, command))
    if handler is None:
        shown = " ".join(words) or "(nothing)"
        raise CommandError(f"unsupported Airflow command: {shown}\n{supported_message()}")
    return handler(rest, prefix, major)


def _dags_trigger(rest: list[str], prefix: str, major: int) -> AirflowCall:
    parser = _parser("dags trigger")
    parser.add_argument("dag_id")
    parser.add_argument("-c", "--conf")
    parser.add_argument("-r", "--run-id")
    if major == 3:
        parser.add_argument("-l", "--logical-date", type=_date)
    else:
        parser.add_argument("-e", "--exec-date", dest="logical_date", type=_date)
    _output_option(parser)
    options = parser.parse_args(rest)
    body: dict[str, Any] = {}
    if options.conf is not None:
        try:
            conf = json.loads(options.conf)
        except ValueError as error:
            raise CommandError(f"--conf is not JSON: {error}") from None
        if not isinstance(conf, dict):
            raise CommandError("--conf must be a JSON object")
        body["conf"] = conf
    if options.run_id:
        body["dag_run_id"] = options.run_id
    if major == 3:
        body["logical_date"] = options.logical_date  # required by Airflow 3 (null: now)
    elif options.logical_date:
        body["logical_date"] = options.logical_date

    def render(status: int, run: Any) -> str:
        if options.output == "json":
            return _json(run)
        run = run if isinstance(run, dict) else {}
        return (
            f"Created dag run {run.get('dag_run_id')} of {run.get('dag_id')}: "
            f"state {run.get('state')}"
        )

    dag = _segment(options.dag_id, "DAG id")
    return AirflowCall("POST", f"{prefix}/dags/{dag}/dagRuns", body=body, render=render)


def _dags_pause(paused: bool) -> Callable[[list[str], str, int], AirflowCall]:
    def build(rest: list[str], prefix: str, major: int) -> AirflowCall:
        parser = _parser("dags pause" if paused else "dags unpause")
        parser.add_argument("dag_id")
        parser.add_argument("-y", "--yes", action="store_true")
        _output_option(parser)
        options = parser.parse_args(rest)
        dag = _segment(options.dag_id, "DAG id")
        return AirflowCall(
            "PATCH",
            f"{prefix}/dags/{dag}",
            query={"update_mask": "is_paused"},
            body={"is_paused": paused},
            render=lambda s, b: f"Dag: {options.dag_id}, paused: {(b or {}).get('is_paused')}",
        )

    return build


def _dags_list_runs(rest: list[str], prefix: str, major: int) -> AirflowCall:
    parser = _parser("dags list-runs")
    if major == 3:
        parser.add_argument("dag_id")
    else:
        parser.add_argument("-d", "--dag-id", required=True)
    parser.add_argument("--state")
    parser.add_argument("-s", "--start-date", type=_date)
    parser.add_argument("-e", "--end-date", type=_date)
    _output_option(parser)
    options = parser.parse_args(rest)
    date = "logical_date" if major == 3 else "execution_date"
    query: dict[str, Any] = {"limit": LIST_LIMIT, "order_by": f"-{date}"}
    if options.state:
        query["state"] = options.state
    if options.start_date:
        query[f"{date}_gte"] = options.start_date
    if options.end_date:
        query[f"{date}_lte"] = options.end_date
    dag = _segment(options.dag_id, "DAG id")
    columns = ("dag_id", "dag_run_id", "state", date, "start_date", "end_date")
    return AirflowCall(
        "GET",
        f"{prefix}/dags/{dag}/dagRuns",
        query=query,
        render=_list_renderer("dag_runs", columns, options.output),
    )


def _dags_state(rest: list[str], prefix: str, major: int) -> AirflowCall:
    parser = _parser("dags state")
    parser.add_argument("dag_id")
    parser.add_argument("run", metavar="RUN_ID_OR_DATE")
    options = parser.parse_args(rest)
    dag = _segment(options.dag_id, "DAG id")
    if _is_date(options.run):
        date = "logical_date" if major == 3 else "execution_date"

        def first_state(status: int, body: Any) -> str:
            runs = body.get("dag_runs", []) if isinstance(body, dict) else []
            return str(runs[0].get("state")) if runs else "None"

        return AirflowCall(
            "GET",
            f"{prefix}/dags/{dag}/dagRuns",
            query={f"{date}_gte": options.run, f"{date}_lte": options.run, "limit": 1},
            render=first_state,
        )
    run = _segment(options.run, "run id")
    return AirflowCall(
        "GET",
        f"{prefix}/dags/{dag}/dagRuns/{run}",
        render=lambda s, b: str((b or {}).get("state")),
    )


def _variables_get(rest: list[str], prefix: str, major: int) -> AirflowCall:
    parser = _parser("variables get")
    parser.add_argument("key")
    parser.add_argument("--default")
    parser.add_argument("-j", "--json", action="store_true")
    options = parser.parse_args(rest)

    def render(status: int, body: Any) -> str:
        value = (body or {}).get("value")
        if options.json and isinstance(value, str):
            try:
                return _json(json.loads(value))
            except ValueError:
                return value
        return "" if value is None else str(value)

    key = _segment(options.key, "variable key")
    return AirflowCall(
        "GET", f"{prefix}/variables/{key}", render=render, missing_ok=options.default
    )


def _variables_set(rest: list[str], prefix: str, major: int) -> AirflowCall:
    parser = _parser("variables set")
    parser.add_argument("key")
    parser.add_argument("value")
    parser.add_argument("--description")
    options = parser.parse_args(rest)
    _segment(options.key, "variable key")
    entity: dict[str, Any] = {"key": options.key, "value": options.value}
    if options.description is not None:
        entity["description"] = options.description
    done = f"Variable {options.key} created"
    if major == 2:  # POST /api/v1/variables creates or replaces (Variable.set)
        return AirflowCall("POST", f"{prefix}/variables", body=entity, render=_fixed(done))

    def bulk(status: int, body: Any) -> str:
        errors = ((body or {}).get("create") or {}).get("errors") or []
        if errors:
            raise CommandError(f"Airflow did not set {options.key}: {_json(errors)}")
        return done

    action = {"action": "create", "action_on_existence": "overwrite", "entities": [entity]}
    return AirflowCall("PATCH", f"{prefix}/variables", body={"actions": [action]}, render=bulk)


def _variables_delete(rest: list[str], prefix: str, major: int) -> AirflowCall:
    parser = _parser("variables delete")
    parser.add_argument("key")
    options = parser.parse_args(rest)
    key = _segment(options.key, "variable key")
    return AirflowCall(
        "DELETE", f"{prefix}/variables/{key}", render=_fixed(f"Variable {options.key} deleted")
    )


def _connections_list(rest: list[str], prefix: str, major: int) -> AirflowCall:
    parser = _parser("connections list")
    _output_option(parser)
    options = parser.parse_args(rest)
    columns = ("connection_id", "conn_type", "host", "port")
    render = _list_renderer("connections", columns, options.output)

    def without_secrets(status: int, body: Any) -> str:
        if isinstance(body, dict):
            rows = [
                {c: row.get(c) for c in columns}
                for row in body.get("connections", [])
                if isinstance(row, dict)
            ]
            body = {**body, "connections": rows}
        return render(status, body)

    return AirflowCall(
        "GET", f"{prefix}/connections", query={"limit": LIST_LIMIT}, render=without_secrets
    )


def _connections_delete(rest: list[str], prefix: str, major: int) -> AirflowCall:
    parser = _parser("connections delete")
    parser.add_argument("conn_id")
    options = parser.parse_args(rest)
    conn = _segment(options.conn_id, "connection id")
    return AirflowCall(
        "DELETE",
        f"{prefix}/connections/{conn}",
        render=_fixed(f"Successfully deleted connection with `conn_id`={options.conn_id}"),
    )


def _list_command(
    collection: str, columns: Sequence[str]
) -> Callable[[list[str], str, int], AirflowCall]:
    """``<collection> list [-o FORMAT]``: the first LIST_LIMIT items, with `columns`."""

    def command(rest: list[str], prefix: str, major: int) -> AirflowCall:
        parser = _parser(f"{collection} list")
        _output_option(parser)
        options = parser.parse_args(rest)
        return AirflowCall(
            "GET",
            f"{prefix}/{collection}",
            query={"limit": LIST_LIMIT},
            render=_list_renderer(collection, columns, options.output),
        )

    return command


_COMMANDS: dict[tuple[str, str], Callable[[list[str], str, int], AirflowCall]] = {
    ("dags", "list"): _list_command("dags", ("dag_id", "owners", "is_paused")),
    ("dags", "trigger"): _dags_trigger,
    ("dags", "pause"): _dags_pause(True),
    ("dags", "unpause"): _dags_pause(False),
    ("dags", "list-runs"): _dags_list_runs,
    ("dags", "state"): _dags_state,
    ("variables", "get"): _variables_get,
    ("variables", "set"): _variables_set,
    ("variables", "delete"): _variables_delete,
    ("variables", "list"): _list_command("variables", ("key",)),
    ("connections", "list"): _connections_list,
    ("connections", "delete"): _connections_delete,
    ("pools", "list"): _list_command("pools", ("name", "slots", "description")),
}
