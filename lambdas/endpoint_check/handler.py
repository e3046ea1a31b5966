"""Lambda entry point ``endpoint_check.handler.handler``: a thin adapter of
:mod:`endpoint_check.core`, invoked by CloudFormation as a custom resource.

Create and Update read EC2 ``DescribeVpcEndpoints`` for the VPC (every page, filtered by
``vpc-id``; botocore's standard retry mode backs off on throttling) and answer SUCCESS, or
FAILED naming every missing endpoint. Delete answers SUCCESS without reading anything. A
malformed event, a failed AWS call or any other error answers FAILED with the reason: the
response is always sent to the event's ``ResponseURL`` (an HTTPS PUT), so CloudFormation never
waits for an answer that will not come. The function runs outside the VPC: it must reach the
EC2 API and the response URL, which a private VPC cannot.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from endpoint_check import core

logger = logging.getLogger("endpoint_check")
logger.setLevel(logging.INFO)

RESPONSE_TIMEOUT_SECONDS = 30
"""The PUT of the response to CloudFormation's presigned S3 URL."""
TIME_MARGIN_MS = 90_000
"""No further DescribeVpcEndpoints page is read with less time left than this (one call,
its retries included, fits in it): the FAILED answer must still be sent before the time-out."""

UNLIMITED_MS = 10**9
"""The time left when no Lambda context tells it (tests)."""

_CLIENTS: dict[str, Any] = {}

Send = Callable[[str, bytes], None]


class AwsCallError(RuntimeError):
    """DescribeVpcEndpoints failed (after botocore's retries), or answered something unusable."""


class OutOfTimeError(RuntimeError):
    """Too little of the function's time is left to read another page."""


def _client(name: str) -> Any:
    """A boto3 client, created on first use and reused across warm invocations."""
    if name not in _CLIENTS:
        import boto3
        from botocore.config import Config

        _CLIENTS[name] = boto3.client(
            name,
            config=Config(
                retries={"max_attempts": 4, "mode": "standard"},
                connect_timeout=5,
                read_timeout=10,
            ),
        )
    return _CLIENTS[name]


def vpc_endpoints(
    ec2: Any, vpc_id: str, remaining_ms: Callable[[], int] = lambda: UNLIMITED_MS
) -> list[Mapping[str, Any]]:
    """Every endpoint of `vpc_id`, page by page."""
    found: list[Mapping[str, Any]] = []
    for page in _pages(ec2, vpc_id, remaining_ms):
        endpoints = page.get("VpcEndpoints")
        if not isinstance(endpoints, list):
            raise AwsCallError(f"ec2:DescribeVpcEndpoints {vpc_id}: no VpcEndpoints in the answer")
        found.extend(endpoints)
    return found


def _pages(ec2: Any, vpc_id: str, remaining_ms: Callable[[], int]) -> Iterator[Mapping[str, Any]]:
    token: str | None = None
    while True:
        if remaining_ms() < TIME_MARGIN_MS:
            raise OutOfTimeError(
                f"ec2:DescribeVpcEndpoints {vpc_id}: the function ran out of time reading pages"
            )
        arguments: dict[str, Any] = {"Filters": [{"Name": "vpc-id", "Values": [vpc_id]}]}
        if token:
            arguments["NextToken"] = token
        try:
            page = ec2.describe_vpc_endpoints(**arguments)
        except Exception as error:  # botocore ClientError, BotoCoreError, timeouts
            response = getattr(error, "response", None)
            details = response.get("Error", {}) if isinstance(response, dict) else {}
            detail = (
                f"{details.get('Code', type(error).__name__)}: {details.get('Message', error)}"
                if details
                else f"{type(error).__name__}: {error}"
            )
            raise AwsCallError(f"ec2:DescribeVpcEndpoints {vpc_id}: {detail}") from error
        yield page
        token = page.get("NextToken")
        if not token:
            return


def put_response(url: str, body: bytes) -> None:
    """PUT `body` to CloudFormation's presigned URL (an empty content type, as it is signed)."""
    request = urllib.request.Request(
        url,
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_SECONDS) as answer:
        answer.read()


def outcome(event: Any, ec2: Any, remaining_ms: Callable[[], int]) -> tuple[bool, str]:
    """(success, reason) for `event`; never raises."""
    if core.is_delete(event):
        return True, "nothing to check on delete"
    try:
        request = core.parse_request(event)
        enforced = core.must_hold(request, core.parse_previous(event))
        endpoints = vpc_endpoints(ec2, request.vpc_id, remaining_ms)
        unmet = core.missing(request.needs, endpoints, request.route_tables)
    except core.EventError as error:
        return False, f"endpoint check: malformed event: {error}"
    except (AwsCallError, OutOfTimeError) as error:
        return False, f"endpoint check: {error}"
    except Exception as error:
        logger.exception("endpoint check failed")
        return False, f"endpoint check: unexpected error: {type(error).__name__}: {error}"
    blocking = [need for need in unmet if need in enforced]
    if blocking:
        return False, core.failure_message(request.vpc_id, blocking, request.route_tables)
    return True, core.success_message(request.vpc_id, request.needs, unmet, request.route_tables)


def run(
    event: Any,
    *,
    ec2: Any,
    send: Send = put_response,
    remaining_ms: Callable[[], int] = lambda: UNLIMITED_MS,
) -> dict[str, Any]:
    """Check, answer CloudFormation, and return what was answered."""
    target = core.response_target(event)
    if target is None:
        logger.error("endpoint check: the event has no ResponseURL; nothing can be answered")
        return {"Status": "FAILED", "Reason": "no ResponseURL"}
    success, reason = outcome(event, ec2, remaining_ms)
    (logger.info if success else logger.error)("%s", reason)
    body = core.response(target, success=success, reason=reason)
    try:
        send(target.response_url, body)
    except Exception:
        # Raised so that Lambda retries the asynchronous invocation (check and answer again).
        logger.exception("endpoint check: the response could not be sent to CloudFormation")
        raise
    return {"Status": "SUCCESS" if success else "FAILED", "Reason": core.truncate(reason)}


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: a CloudFormation custom resource event."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    try:
        ec2: Any = _client("ec2")
    except Exception as error:
        ec2 = _Unavailable(error)
    return run(
        event, ec2=ec2, remaining_ms=remaining if callable(remaining) else lambda: UNLIMITED_MS
    )


class _Unavailable:
    """Stands in for a client that could not be created, so the error is answered as FAILED."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def describe_vpc_endpoints(self, **_: Any) -> Any:
        raise self._error
