"""The pure core of ``openmwaa import-metadata``: Airflow 2's export files (written by the real
Airflow 2.11.2 CLI, see tests/fixtures/airflow2_export/README.md) -> Airflow 3's bulk bodies ->
the report read from Airflow 3's bulk responses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from openmwaa.cli import metadata_transfer as mt

EXPORT = Path(__file__).parents[1] / "fixtures" / "airflow2_export"
TOKEN = "fixture.jwt.token-value"

# The fields of Airflow 3.3's request models (api_fastapi/core_api/datamodels/): ConnectionBody,
# VariableBody, PoolBody; all are StrictBaseModel (extra="forbid"), so any other key is a 422.
CONNECTION_BODY_FIELDS = {
    "connection_id",
    "conn_type",
    "description",
    "host",
    "login",
    "schema",
    "port",
    "password",
    "extra",
    "team_name",
}
VARIABLE_BODY_FIELDS = {"key", "value", "description", "team_name"}
POOL_BODY_FIELDS = {"name", "slots", "description", "include_deferred", "team_name"}


def text(kind: str) -> str:
    return (EXPORT / f"{kind}.json").read_text()


@pytest.fixture(scope="module")
def bundle() -> mt.Bundle:
    return mt.parse_bundle({kind: (f"{kind}.json", text(kind)) for kind in mt.KINDS})


def by_name(entities: Any, attribute: str) -> dict[str, Any]:
    return {getattr(entity, attribute): entity for entity in entities}


def ok_response(names: list[str]) -> mt.HttpResponse:
    return mt.HttpResponse(200, json.dumps({"create": {"success": names, "errors": []}}).encode())


# --------------------------------------------------------------------------------------------
# Parsing the real exports


def test_parse_connections_reads_the_airflow2_export() -> None:
    connections, problems = mt.parse_connections(text("connections"), "connections.json")

    assert problems == []
    found = by_name(connections, "connection_id")
    assert set(found) == {"aws_reporting", "plain_ftp", "slack_api", "warehouse_db"}
    assert found["warehouse_db"] == mt.Connection(
        connection_id="warehouse_db",
        conn_type="postgres",
        description="Reporting warehouse",
        host="warehouse.example.internal",
        login="etl",
        schema="analytics",
        port=5432,
        password="fixture-pg-pass:w/@#",
        extra=None,
    )
    assert json.loads(found["aws_reporting"].extra or "") == {
        "region_name": "eu-west-1",
        "aws_access_key_id": "AKIAFIXTUREFIXTURE00",
        "aws_secret_access_key": "fixture-aws-secret-key",
    }


def test_parse_variables_keeps_the_values_airflow2_decoded() -> None:
    variables, problems = mt.parse_variables(text("variables"), "variables.json")

    assert problems == []
    values = {v.key: v.value for v in variables}
    assert values == {
        "api_secret": "fixture-variable-secret",
        "batch_size": 500,
        "dry_run": False,
        "environment": "production",
        "feature_flags": {"new_loader": True, "regions": ["eu-west-1", "us-east-1"]},
        "greeting": "Hello,\nworld",
    }


def test_parse_pools_reads_unlimited_and_include_deferred() -> None:
    pools, problems = mt.parse_pools(text("pools"), "pools.json")

    assert problems == []
    assert by_name(pools, "name") == {
        "default_pool": mt.Pool("default_pool", 64, "Default pool", False),
        "reporting": mt.Pool("reporting", 4, "Reporting queries", True),
        "unlimited": mt.Pool("unlimited", -1, "No limit", False),
    }


def test_parse_pools_defaults_include_deferred_to_false_for_older_exports() -> None:
    pools, problems = mt.parse_pools('{"etl": {"slots": 3, "description": null}}')

    assert problems == []
    assert pools == (mt.Pool("etl", 3, None, False),)


@pytest.mark.parametrize("extra", ["", None, {"timeout": 5}])
def test_parse_connections_takes_empty_and_object_extras(extra: Any) -> None:
    entry = {"conn_type": "http", "extra": extra}
    connections, problems = mt.parse_connections(json.dumps({"api": entry}))

    assert problems == []
    expected = None if extra in ("", None) else json.dumps(extra)
    assert connections[0].extra == expected


# --------------------------------------------------------------------------------------------
# Problems: every one named by file and entry, never by value


def test_fails_when_a_file_is_not_json_without_echoing_it() -> None:
    broken = '{"warehouse_db": {"conn_type": "postgres", "password": "hunter2-secret",'

    connections, problems = mt.parse_connections(broken, "conns.json")

    assert connections == ()
    assert len(problems) == 1
    assert problems[0].startswith("conns.json: not JSON")
    assert "--file-format json" in problems[0]
    assert "hunter2-secret" not in problems[0]


def test_fails_when_a_yaml_export_is_given() -> None:
    yaml_export = "warehouse_db:\n  conn_type: postgres\n"

    _, problems = mt.parse_connections(yaml_export, "conns.yaml")

    assert problems and "conns.yaml: not JSON" in problems[0]


@pytest.mark.parametrize("kind", mt.KINDS)
def test_fails_when_the_file_is_not_an_object(kind: mt.Kind) -> None:
    parse = {
        "connections": mt.parse_connections,
        "variables": mt.parse_variables,
        "pools": mt.parse_pools,
    }[kind]

    _, problems = parse("[1, 2]", "f.json")

    assert problems == [
        f"f.json: expected a JSON object of {kind}, got a list;"
        f" write it with `{mt.EXPORT_COMMANDS[kind]}` on the Airflow 2 environment"
    ]


def test_fails_when_a_connection_has_no_conn_type() -> None:
    export = {"ok": {"conn_type": "http"}, "broken": {"host": "h", "conn_type": None}}

    connections, problems = mt.parse_connections(json.dumps(export), "c.json")

    assert [c.connection_id for c in connections] == ["ok"]
    assert problems == [
        "c.json: connection 'broken': conn_type is missing or empty; every connection needs one"
    ]


@pytest.mark.parametrize("extra", ["not json at all sk-secret", '["a list"]', "42"])
def test_fails_when_a_connection_extra_is_not_a_json_object(extra: str) -> None:
    export = {"api": {"conn_type": "http", "extra": extra}}

    _, problems = mt.parse_connections(json.dumps(export), "c.json")

    assert len(problems) == 1
    assert problems[0].startswith("c.json: connection 'api': extra is not a JSON object")
    assert extra not in problems[0]


def test_fails_when_a_connection_port_is_not_an_integer() -> None:
    export = {"db": {"conn_type": "postgres", "port": "5432"}}

    _, problems = mt.parse_connections(json.dumps(export), "c.json")

    assert problems == ["c.json: connection 'db': port must be an integer or null, got a string"]


def test_fails_when_a_connection_id_is_refused_by_airflow3() -> None:
    export = {"my conn": {"conn_type": "http"}, "x" * 201: {"conn_type": "http"}}

    connections, problems = mt.parse_connections(json.dumps(export), "c.json")

    assert connections == ()
    assert len(problems) == 2
    assert all("Airflow 3 accepts connection ids" in p for p in problems)


def test_fails_when_a_connection_has_an_unknown_field() -> None:
    export = {"db": {"conn_type": "postgres", "uri": "postgres://u:p@h/db"}}

    _, problems = mt.parse_connections(json.dumps(export), "c.json")

    assert len(problems) == 1
    assert "unknown field(s) uri" in problems[0]
    assert "u:p@h" not in problems[0]


def test_fails_when_a_connection_text_field_is_not_a_string() -> None:
    export = {"db": {"conn_type": "postgres", "password": 1234}}

    _, problems = mt.parse_connections(json.dumps(export), "c.json")

    assert problems == [
        "c.json: connection 'db': password must be a string or null, got an integer"
    ]


@pytest.mark.parametrize(
    ("slots", "expected"),
    [
        ('"4"', "slots must be an integer, got a string"),
        ("4.5", "slots must be an integer, got a number"),
        ("true", "slots must be an integer, got a boolean"),
        ("null", "slots must be an integer, got null"),
        ("-2", "slots is -2; allowed: -1 (unlimited) or more"),
    ],
)
def test_fails_when_pool_slots_are_not_an_integer_of_minus_one_or_more(
    slots: str, expected: str
) -> None:
    _, problems = mt.parse_pools(f'{{"etl": {{"slots": {slots}, "description": null}}}}', "p.json")

    assert problems == [f"p.json: pool 'etl': {expected}"]


def test_fails_when_a_pool_has_no_slots() -> None:
    _, problems = mt.parse_pools('{"etl": {"description": "x"}}', "p.json")

    assert problems == ["p.json: pool 'etl': slots is missing"]


def test_fails_when_pool_include_deferred_is_not_a_boolean() -> None:
    _, problems = mt.parse_pools('{"etl": {"slots": 1, "include_deferred": "yes"}}', "p.json")

    assert problems == ["p.json: pool 'etl': include_deferred must be true or false, got a string"]


def test_fails_when_a_variable_holds_nan() -> None:
    # Airflow 2's export writes NaN for a variable stored as "NaN" (json.dump allows it).
    variables, problems = mt.parse_variables('{"ratio": NaN, "n": 1}', "v.json")

    assert [v.key for v in variables] == ["n"]
    assert problems == [
        "v.json: variable 'ratio': the value holds NaN or Infinity, which Airflow 3's API refuses"
    ]


def test_parse_bundle_lists_the_problems_of_every_file() -> None:
    with pytest.raises(mt.InputError) as raised:
        mt.parse_bundle(
            {
                "connections": ("c.json", '{"db": {"host": "h"}}'),
                "variables": ("v.json", text("variables")),
                "pools": ("p.json", '{"etl": {"slots": "many"}}'),
            }
        )

    problems = raised.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("c.json: connection 'db':")
    assert problems[1].startswith("p.json: pool 'etl':")


def test_parse_bundle_leaves_kinds_not_given_as_none() -> None:
    bundle = mt.parse_bundle({"pools": ("p.json", text("pools"))})

    assert bundle.connections is None
    assert bundle.variables is None
    assert bundle.kinds() == ("pools",)


# --------------------------------------------------------------------------------------------
# Requests


def test_plan_import_builds_one_create_action_per_kind(bundle: mt.Bundle) -> None:
    plans = mt.plan_import(bundle, "skip")

    assert [(p.kind, p.path) for p in plans] == [
        ("connections", "/api/v2/connections"),
        ("variables", "/api/v2/variables"),
        ("pools", "/api/v2/pools"),
    ]
    for plan in plans:
        assert plan.body is not None
        (action,) = plan.body["actions"]
        assert action["action"] == "create"
        assert action["action_on_existence"] == "skip"
        assert len(action["entities"]) == len(plan.names)


def test_connection_entities_use_airflow3_field_names(bundle: mt.Bundle) -> None:
    (plan, *_) = mt.plan_import(bundle, "fail")
    assert plan.body is not None
    entities = {e["connection_id"]: e for e in plan.body["actions"][0]["entities"]}

    assert all(set(e) <= CONNECTION_BODY_FIELDS for e in entities.values())
    assert entities["warehouse_db"] == {
        "connection_id": "warehouse_db",
        "conn_type": "postgres",
        "description": "Reporting warehouse",
        "host": "warehouse.example.internal",
        "login": "etl",
        "schema": "analytics",
        "port": 5432,
        "password": "fixture-pg-pass:w/@#",
        "extra": None,
    }
    extra = entities["aws_reporting"]["extra"]
    assert isinstance(extra, str)
    assert json.loads(extra)["aws_secret_access_key"] == "fixture-aws-secret-key"


def test_variable_and_pool_entities_use_airflow3_field_names(bundle: mt.Bundle) -> None:
    _, variables, pools = mt.plan_import(bundle, "overwrite")
    assert variables.body is not None
    assert pools.body is not None
    variable_entities = variables.body["actions"][0]["entities"]
    pool_entities = pools.body["actions"][0]["entities"]

    assert all(set(e) <= VARIABLE_BODY_FIELDS for e in variable_entities)
    assert {"key": "batch_size", "value": 500} in variable_entities
    assert all(set(e) <= POOL_BODY_FIELDS for e in pool_entities)
    assert {
        "name": "unlimited",
        "slots": -1,
        "description": "No limit",
        "include_deferred": False,
    } in pool_entities


def test_plan_import_skips_default_pool_with_a_note_on_fail(bundle: mt.Bundle) -> None:
    pools = mt.plan_import(bundle, "fail")[2]

    assert pools.names == ("reporting", "unlimited")
    (skip,) = pools.skipped
    assert skip.name == "default_pool"
    assert "--on-existing overwrite" in skip.reason
    assert "64 slots" in skip.reason


@pytest.mark.parametrize("on_existing", ["skip", "overwrite"])
def test_plan_import_sends_default_pool_unless_fail(
    bundle: mt.Bundle, on_existing: mt.OnExisting
) -> None:
    pools = mt.plan_import(bundle, on_existing)[2]

    assert "default_pool" in pools.names
    assert pools.skipped == ()


def test_plan_import_sends_nothing_when_only_default_pool_is_left() -> None:
    bundle = mt.Bundle(pools=(mt.Pool("default_pool", 128),))

    (plan,) = mt.plan_import(bundle, "fail")

    assert plan.body is None
    assert [s.name for s in plan.skipped] == ["default_pool"]


def test_fails_when_on_existing_is_unknown(bundle: mt.Bundle) -> None:
    with pytest.raises(ValueError, match="allowed: fail, skip, overwrite"):
        mt.plan_import(bundle, "replace")  # type: ignore[arg-type]


def test_redacted_body_hides_passwords_extras_and_secret_variables(bundle: mt.Bundle) -> None:
    shown = json.dumps([mt.redacted_body(p) for p in mt.plan_import(bundle, "fail")])

    for secret in bundle.secrets():
        assert secret not in shown
    assert '"password": "***"' in shown
    assert "aws_secret_access_key" in shown  # an extra keeps its keys
    assert "production" in shown  # a variable whose key is not secret-looking stays readable


def test_redacted_body_leaves_the_body_to_send_alone(bundle: mt.Bundle) -> None:
    plan = mt.plan_import(bundle, "fail")[0]

    mt.redacted_body(plan)

    assert "fixture-pg-pass:w/@#" in json.dumps(plan.body)


def test_bundle_secrets_cover_passwords_extras_and_secret_variables(bundle: mt.Bundle) -> None:
    secrets = bundle.secrets()

    assert {
        "fixture-pg-pass:w/@#",
        "fixture-slack-token",
        "fixture-aws-secret-key",
        "AKIAFIXTUREFIXTURE00",
        "fixture-variable-secret",
    } <= secrets
    assert "production" not in secrets
    assert "eu-west-1" not in secrets  # region_name is not a secret-looking key


def test_bundle_secrets_take_everything_under_a_secret_looking_key() -> None:
    extra = {"keyfile_dict": {"private_key_id": "k1-abc", "project": "proj-x"}, "timeout": "30s"}
    bundle = mt.Bundle(
        connections=(mt.Connection("gcp", "google_cloud_platform", extra=json.dumps(extra)),),
        variables=(mt.Variable("partner_token", {"value": "tok-abc"}),),
    )

    assert bundle.secrets() == {json.dumps(extra), "k1-abc", "proj-x", "tok-abc"}


# --------------------------------------------------------------------------------------------
# Responses and the report


def single_plan(names: tuple[str, ...] = ("a", "b", "c")) -> mt.KindPlan:
    entities = [{"key": name, "value": "v"} for name in names]
    return mt.KindPlan("variables", "/api/v2/variables", names, mt.bulk_body(entities, "fail"))


def test_interpret_reports_every_success_as_created() -> None:
    report = mt.interpret_bulk_response(single_plan(), ok_response(["a", "b", "c"]), "fail")

    assert report == mt.KindReport("variables", created=("a", "b", "c"))
    assert report.ok


def test_interpret_fails_the_whole_kind_on_a_conflict_in_fail_mode() -> None:
    # What Airflow 3.3's BulkVariableService answers when one key exists (HTTP 200).
    message = "The variables with these keys: {'b'} already exist."
    error = {"error": message, "status_code": 409}
    body = json.dumps({"create": {"success": [], "errors": [error]}}).encode()

    report = mt.interpret_bulk_response(single_plan(), mt.HttpResponse(200, body), "fail")

    assert not report.ok
    assert report.created == ()
    assert report.failed == ("a", "b", "c")
    assert report.errors == (mt.ApiError(message, 409),)
    lines = mt.Report("fail", (report,)).lines()
    assert lines[0] == "variables: 0 created, 0 skipped, 3 failed"
    assert any("--on-existing skip" in line for line in lines)


def test_interpret_counts_names_left_out_as_skipped_in_skip_mode() -> None:
    report = mt.interpret_bulk_response(single_plan(), ok_response(["a", "c"]), "skip")

    assert report.ok
    assert report.created == ("a", "c")
    assert report.skipped == (mt.Skip("b", "already exists"),)


def test_interpret_fails_names_the_server_left_out_in_overwrite_mode() -> None:
    report = mt.interpret_bulk_response(single_plan(), ok_response(["a"]), "overwrite")

    assert not report.ok
    assert report.failed == ("b", "c")


def test_interpret_keeps_only_location_and_message_of_a_422() -> None:
    # FastAPI's 422 echoes the offending input, here a connection with its password.
    detail = [
        {
            "type": "string_type",
            "loc": ["body", "actions", 0, "create", "entities", 0, "port"],
            "msg": "Input should be a valid integer",
            "input": {"password": "fixture-pg-pass:w/@#", "port": "x"},
        }
    ]
    response = mt.HttpResponse(422, json.dumps({"detail": detail}).encode())

    report = mt.interpret_bulk_response(single_plan(), response, "fail")

    assert report.failed == ("a", "b", "c")
    (error,) = report.errors
    assert error.status == 422
    assert error.message == (
        "body.actions.0.create.entities.0.port: Input should be a valid integer"
    )


def test_interpret_scrubs_secrets_from_error_texts() -> None:
    body = b'<html>proxy error for password "p@ss\\"word-1" and key AKIAFIXTURE</html>'
    secrets = {'p@ss"word-1', "AKIAFIXTURE"}

    report = mt.interpret_bulk_response(single_plan(), mt.HttpResponse(502, body), "fail", secrets)

    (error,) = report.errors
    assert "p@ss" not in error.message
    assert "AKIAFIXTURE" not in error.message
    assert error.message.count("***") == 2


def test_interpret_fails_all_on_an_answer_that_is_not_a_bulk_response() -> None:
    response = mt.HttpResponse(200, b"<html>Sign in</html>")

    report = mt.interpret_bulk_response(single_plan(), response, "fail")

    assert report.failed == ("a", "b", "c")
    assert "unexpected answer" in report.errors[0].message


def test_report_lines_say_overwritten_in_overwrite_mode() -> None:
    report = mt.Report("overwrite", (mt.KindReport("pools", created=("etl",)),))

    assert report.lines() == ["pools: 1 created or overwritten, 0 skipped, 0 failed"]


# --------------------------------------------------------------------------------------------
# Through a transport


class FakeAirflow:
    """Answers like Airflow 3.3's api-server: every entity created, unless told otherwise."""

    def __init__(self, answers: Mapping[str, mt.HttpResponse | Exception] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> mt.HttpResponse:
        payload = json.loads(body or b"null")
        self.calls.append((method, url, dict(headers), payload))
        path = url.split("example.test", 1)[1]
        answer = self.answers.get(path)
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer
        if path == "/auth/token":
            return mt.HttpResponse(201, json.dumps({"access_token": TOKEN}).encode())
        entities = payload["actions"][0]["entities"]
        key = {"connections": "connection_id", "variables": "key", "pools": "name"}
        return ok_response([e[key[path.rsplit("/", 1)[1]]] for e in entities])


def test_import_metadata_sends_one_authenticated_patch_per_kind(bundle: mt.Bundle) -> None:
    airflow = FakeAirflow()

    report = mt.import_metadata("https://example.test/", TOKEN, bundle, "fail", transport=airflow)

    assert [(m, u) for m, u, _, _ in airflow.calls] == [
        ("PATCH", "https://example.test/api/v2/connections"),
        ("PATCH", "https://example.test/api/v2/variables"),
        ("PATCH", "https://example.test/api/v2/pools"),
    ]
    for _, _, headers, _ in airflow.calls:
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["Content-Type"] == "application/json"
    assert [p.body for p in mt.plan_import(bundle, "fail")] == [c[3] for c in airflow.calls]
    assert report.ok
    assert [len(k.created) for k in report.kinds] == [4, 6, 2]
    assert report.kinds[2].skipped[0].name == "default_pool"


def test_import_metadata_sends_the_other_kinds_when_one_gets_no_answer(
    bundle: mt.Bundle,
) -> None:
    airflow = FakeAirflow({"/api/v2/variables": mt.TransportError("PATCH x: timed out")})

    report = mt.import_metadata("https://example.test", TOKEN, bundle, "fail", transport=airflow)

    assert len(airflow.calls) == 3
    assert not report.ok
    assert [k.ok for k in report.kinds] == [True, False, True]
    assert report.kinds[1].errors == (mt.ApiError("PATCH x: timed out"),)


def test_import_metadata_scrubs_the_token_from_errors(bundle: mt.Bundle) -> None:
    echo = mt.HttpResponse(401, json.dumps({"detail": f"bad token {TOKEN}"}).encode())
    airflow = FakeAirflow({"/api/v2/pools": echo})

    report = mt.import_metadata("https://example.test", TOKEN, bundle, "fail", transport=airflow)

    assert TOKEN not in "\n".join(report.lines())
    assert report.kinds[2].errors == (mt.ApiError("bad token ***", 401),)


def test_request_token_posts_the_credentials_and_returns_the_token() -> None:
    airflow = FakeAirflow()

    token = mt.request_token("https://example.test", "admin", "pw-123", transport=airflow)

    assert token == TOKEN
    assert airflow.calls == [
        (
            "POST",
            "https://example.test/auth/token",
            {"Content-Type": "application/json", "Accept": "application/json"},
            {"username": "admin", "password": "pw-123"},
        )
    ]


def test_fails_when_login_is_refused_without_showing_the_password() -> None:
    refused = mt.HttpResponse(401, b'{"detail": "Invalid credentials for pw-123"}')
    airflow = FakeAirflow({"/auth/token": refused})

    with pytest.raises(mt.LoginError) as raised:
        mt.request_token("https://example.test", "admin", "pw-123", transport=airflow)

    assert "login as 'admin' refused" in str(raised.value)
    assert "pw-123" not in str(raised.value)


def test_fails_when_the_url_is_an_airflow2_environment() -> None:
    airflow = FakeAirflow({"/auth/token": mt.HttpResponse(404, b'{"detail": "Not Found"}')})

    with pytest.raises(mt.LoginError, match="Airflow 2 has no /auth/token"):
        mt.request_token("https://example.test", "admin", "pw-123", transport=airflow)


def test_scrub_replaces_escaped_forms_longest_first() -> None:
    secrets = {'a"b\\c', 'a"b\\c-longer'}

    scrubbed = mt.scrub('x a"b\\c-longer y a\\"b\\\\c z', secrets)

    assert scrubbed == "x *** y *** z"
