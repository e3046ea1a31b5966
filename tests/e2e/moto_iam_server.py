"""moto server that authorizes every call as AWS would, and records each decision.

    python tests/e2e/moto_iam_server.py --record calls.jsonl -H 127.0.0.1 -p 5000

It is moto's own server with one change: when moto enforces IAM (after ``POST
/moto-api/reset-auth`` with ``0``), the decision for each call is made by ``iam.py`` beside
this file (the resource ARN and condition keys AWS uses, and AWS's evaluation logic) instead
of moto's (which authorizes most services against ``*`` and denies conditioned statements).
Signatures are still checked by moto. Each decision is appended to the ``--record`` file as
one JSON line: principal, action, resource, condition keys, allowed, reason, modelled.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import iam
from moto import server, settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.access_control import IAMPolicy

_LOCK = threading.Lock()


def _params(response: Any) -> dict[str, Any]:
    """The request's parameters, whatever its protocol (query, JSON, CBOR)."""
    if getattr(response, "automated_parameter_parsing", False) and getattr(
        response, "params", None
    ):
        return dict(response.params)
    body = getattr(response, "body", None)
    if body:
        try:
            data = json.loads(body)
            if isinstance(data, dict):
                return data
        except (ValueError, TypeError):
            pass
    querystring = getattr(response, "querystring", {}) or {}
    return {k: v[0] if isinstance(v, list) and v else v for k, v in querystring.items()}


def install(record: Path) -> None:
    """Replace moto's authorization decision with :mod:`iam`'s."""

    def authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ActionAuthenticatorMixin.request_count += 1
            return
        path = self.raw_path + ("?" + self.uri.split("?", 1)[1] if "?" in self.uri else "")
        request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=path,
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=self._get_action(),
        )
        request.check_signature()
        service, _, operation = request._action.partition(":")
        context = iam.authorization_context(
            service,
            operation,
            _params(self),
            region=request._region,
            account=request.account_id,
            moto_resource=resource,
        )
        policies = [IAMPolicy(p)._policy_json for p in request._access_key.collect_policies()]
        try:
            decision = iam.evaluate_context(policies, context)
        except iam.UnsupportedPolicyError as error:
            decision = iam.Decision(False, f"unsupported policy: {error}")
        entry = {
            "principal": getattr(request._access_key, "_owner_user_name", "?"),
            "action": context.action,
            "resource": context.resource,
            "condition_keys": dict(context.condition_keys),
            "allowed": decision.allowed,
            "reason": decision.reason,
            "modelled": context.modelled,
        }
        with _LOCK, record.open("a") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")
        if not decision.allowed:
            request._raise_access_denied()

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", required=True, type=Path)
    args, rest = parser.parse_known_args()
    install(args.record)
    server.main(rest)


if __name__ == "__main__":
    main()
