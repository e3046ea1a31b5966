"""Lambda entry point ``api_access.handler.handler``: a thin adapter of :mod:`api_access.core`.

It reads the settings, the machine key from Secrets Manager (once per container, with
botocore's standard retries, which back off on throttling) and calls Airflow with urllib
(:data:`api_access.core.HTTP_TIMEOUT_SECONDS` per call). Each request logs one JSON line:
caller ARN, route, role, status, duration; never a token, password or key.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from api_access import core
from api_access.core import (
    HttpRequest,
    HttpResponse,
    KeyUnavailableError,
    Settings,
    State,
    TimedOutError,
    UnreachableError,
)

logger = logging.getLogger("api_access")
logger.setLevel(logging.INFO)

_CLIENTS: dict[str, Any] = {}
_KEY: dict[str, str] = {}
_STATE = State()


def _client(name: str) -> Any:
    """A boto3 client, created on first use and reused across warm invocations."""
    if name not in _CLIENTS:
        import boto3
        from botocore.config import Config

        _CLIENTS[name] = boto3.client(
            name,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=2,
                read_timeout=5,
            ),
        )
    return _CLIENTS[name]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Airflow's answer is passed on as it is: a redirect is never followed (the credentials
    must not travel to another URL)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class AwsPorts:
    """The machine key from Secrets Manager, HTTP with urllib."""

    def __init__(self, settings: Settings, secrets: Any | None = None) -> None:
        self._settings = settings
        self._secrets = secrets

    def machine_key(self) -> str:
        """The machine key: the whole SecretString, read once per container."""
        arn = self._settings.machine_key_secret_arn
        if arn not in _KEY:
            from botocore.exceptions import BotoCoreError, ClientError

            secrets = self._secrets or _client("secretsmanager")
            try:
                value = secrets.get_secret_value(SecretId=arn).get("SecretString")
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "error")
                raise KeyUnavailableError(f"secretsmanager:GetSecretValue failed: {code}") from None
            except BotoCoreError as error:
                raise KeyUnavailableError(
                    f"secretsmanager:GetSecretValue failed: {type(error).__name__}"
                ) from None
            if not isinstance(value, str) or not value:
                raise KeyUnavailableError("the machine key secret has no SecretString")
            _KEY[arn] = value
        return _KEY[arn]

    def forget_machine_key(self) -> None:
        """Read the secret again at the next :meth:`machine_key`."""
        _KEY.pop(self._settings.machine_key_secret_arn, None)

    def send(self, request: HttpRequest) -> HttpResponse:
        """One HTTP call with a timeout; UnreachableError or TimedOutError without an answer."""
        http_request = urllib.request.Request(
            request.url, data=request.body, headers=dict(request.headers), method=request.method
        )
        try:
            with _OPENER.open(http_request, timeout=core.HTTP_TIMEOUT_SECONDS) as answer:
                return _response(answer.status, answer.headers, answer)
        except urllib.error.HTTPError as answer:
            return _response(answer.code, answer.headers, answer)
        except TimeoutError as error:
            raise TimedOutError(str(error)) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise TimedOutError(str(error.reason)) from None
            raise UnreachableError(f"{self._settings.airflow_url}: {error.reason}") from None
        except (OSError, ValueError) as error:
            raise UnreachableError(f"{self._settings.airflow_url}: {error}") from None


def _response(status: int, headers: Any, body: Any) -> HttpResponse:
    data = body.read(core.MAX_RESPONSE_BYTES + 1)
    names = {name.lower(): value for name, value in (headers or {}).items()}
    return HttpResponse(status, names, data)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway REST proxy event in, proxy response out; one log line per request."""
    start = time.monotonic()
    try:
        settings = Settings.from_env(os.environ)
    except core.ConfigError as error:
        outcome = core.Outcome(core.error_response(500, str(error)), 500, None, error=str(error))
    else:
        outcome = core.handle(event, settings, AwsPorts(settings), _STATE)
    logger.info(
        core.log_line(
            caller=core.caller_of(event),
            route=event.get("resource"),
            role=outcome.role,
            status=outcome.status,
            duration_ms=int((time.monotonic() - start) * 1000),
            airflow_status=outcome.airflow_status,
            error=outcome.error,
        )
    )
    return outcome.response
