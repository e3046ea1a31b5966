"""A real OpenID Connect identity provider for the end-to-end test, on 127.0.0.1.

:class:`OidcProvider` serves, on a free port, what an organisation's provider (Okta, Entra ID,
Keycloak...) serves to an OIDC relying party such as Airflow's FAB auth manager (authlib):

- ``/.well-known/openid-configuration``: the discovery document;
- ``/jwks``: the public half of an RSA key generated at start (``kid`` set);
- ``/authorize``: the authorization code flow's sign-in page, a small HTML form (user name and
  password) that checks the user's password and redirects back with a one-time code (and the
  client's ``state``); an unknown user or a wrong password gets the form again, no code;
- ``/token``: the code for tokens, with the client authenticated by ``client_secret_basic`` or
  ``client_secret_post``, PKCE (S256 and plain) checked when the authorization request carried
  a challenge, the ``redirect_uri`` checked against the authorization request's; the ID token
  is an RS256 JWT with ``iss``, ``aud``, ``exp``, ``iat``, ``auth_time``, ``nonce`` (when
  given), ``sub``, ``email``, ``name``, ``preferred_username`` and ``groups`` (only for users
  that have groups: :data:`TEST_USERS`' ``nogroups`` has no groups claim at all);
- ``/userinfo``: the same claims, for the access token.

JWTs are made with joserfc (the JOSE library authlib uses and recommends since 1.7), PKCE's
S256 with authlib's own helper. :attr:`OidcProvider.events` records what happened (sign-ins,
refused sign-ins, token requests and the client authentication method used), so a test can
check the flow it drove really went through the provider.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import html
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CODE_LIFETIME = 120
"""Seconds an authorization code may wait before the client redeems it."""
TOKEN_LIFETIME = 3600
"""Seconds an ID token and access token are valid."""


@dataclass(frozen=True)
class TestUser:
    """A user the provider signs in: ``groups`` None means the token has no groups claim."""

    username: str
    password: str
    email: str
    name: str
    groups: tuple[str, ...] | None

    def claims(self) -> dict[str, Any]:
        """The identity claims of the user's ID token and userinfo."""
        claims: dict[str, Any] = {
            "sub": f"sub-{self.username}",
            "email": self.email,
            "email_verified": True,
            "name": self.name,
            "given_name": self.name.split(" ", 1)[0],
            "family_name": self.name.split(" ", 1)[-1],
            "preferred_username": self.username,
        }
        if self.groups is not None:
            claims["groups"] = list(self.groups)
        return claims


TEST_USERS = (
    TestUser("viewer", "viewer-password-1", "viewer@example.com", "Vera Viewer", ("analysts",)),
    TestUser(
        "operator", "operator-password-1", "operator@example.com", "Otto Operator", ("data-eng",)
    ),
    TestUser("nogroups", "nogroups-password-1", "nogroups@example.com", "Nora Nogroups", None),
)
"""The pre-registered users: a Viewer's group, an Op's group, and one without groups."""


@dataclass(frozen=True)
class Client:
    """A registered relying party."""

    client_id: str
    client_secret: str
    redirect_uri_prefixes: tuple[str, ...] = ("http://127.0.0.1:",)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    user: TestUser
    nonce: str | None
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass
class OidcProvider:
    """The provider; :meth:`start` it (or use it as a context manager), then point a client at
    :attr:`issuer`."""

    client: Client
    users: tuple[TestUser, ...] = TEST_USERS
    host: str = "127.0.0.1"
    port: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    _key: RSAKey | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _codes: dict[str, _Grant] = field(default_factory=dict)
    _access_tokens: dict[str, TestUser] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        """The issuer URL (``iss``), where the discovery document lives."""
        return f"http://{self.host}:{self.port}"

    @property
    def metadata_url(self) -> str:
        """The discovery document's URL."""
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def key(self) -> RSAKey:
        """The signing key (private)."""
        if self._key is None:
            raise RuntimeError("the provider is not started")
        return self._key

    def user(self, username: str) -> TestUser:
        """The registered user named ``username``."""
        return next(u for u in self.users if u.username == username)

    def start(self) -> OidcProvider:
        """Generate the key and serve on a free port (if ``port`` is 0) in a thread."""
        self._key = RSAKey.generate_key(2048, auto_kid=True)
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oidc-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- documents --------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider metadata."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256", "plain"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "nonce",
                "email",
                "name",
                "preferred_username",
                "groups",
            ],
        }

    def jwks(self) -> dict[str, Any]:
        """The public key set."""
        return dict(KeySet([self.key]).as_dict(private=False))

    def id_token(self, user: TestUser, audience: str, nonce: str | None) -> str:
        """An RS256 ID token for ``user``."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "auth_time": now,
            "exp": now + TOKEN_LIFETIME,
            **user.claims(),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)

    # --- protocol ---------------------------------------------------------------------

    def _record(self, event: str, **details: Any) -> None:
        with self._lock:
            self.events.append({"event": event, "at": time.time(), **details})

    def check_authorization_request(self, params: dict[str, str]) -> str | None:
        """Why the authorization request is refused (None: it is fine)."""
        if params.get("response_type") != "code":
            return "unsupported_response_type"
        if params.get("client_id") != self.client.client_id:
            return "unauthorized_client"
        redirect = params.get("redirect_uri", "")
        if not redirect.startswith(self.client.redirect_uri_prefixes):
            return "invalid_redirect_uri"
        if "openid" not in params.get("scope", "").split():
            return "invalid_scope"
        method = params.get("code_challenge_method")
        if params.get("code_challenge") and method not in (None, "S256", "plain"):
            return "invalid_request"
        return None

    def sign_in(self, params: dict[str, str], username: str, password: str) -> str | None:
        """A one-time code for a correct password (None for a wrong one)."""
        user = next((u for u in self.users if u.username == username), None)
        if user is None or not hmac.compare_digest(user.password, password):
            self._record("sign-in refused", username=username)
            return None
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                client_id=params["client_id"],
                redirect_uri=params["redirect_uri"],
                user=user,
                nonce=params.get("nonce"),
                scope=params.get("scope", ""),
                code_challenge=params.get("code_challenge") or None,
                code_challenge_method=params.get("code_challenge_method") or None,
                expires_at=time.time() + CODE_LIFETIME,
            )
        self._record("signed in", username=username, pkce=bool(params.get("code_challenge")))
        return code

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        """The token endpoint: (HTTP status, JSON body)."""
        method, client_id, client_secret = "none", form.get("client_id"), None
        if authorization and authorization.lower().startswith("basic "):
            try:
                raw = base64.b64decode(authorization[6:]).decode()
            except (ValueError, UnicodeDecodeError):
                return 401, {"error": "invalid_client"}
            user_part, _, secret_part = raw.partition(":")
            method = "client_secret_basic"
            client_id = urllib.parse.unquote_plus(user_part)
            client_secret = urllib.parse.unquote_plus(secret_part)
        elif "client_secret" in form:
            method, client_secret = "client_secret_post", form["client_secret"]
        if client_id != self.client.client_id or not hmac.compare_digest(
            client_secret or "", self.client.client_secret
        ):
            self._record("token refused", reason="invalid_client", method=method)
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at < time.time() or grant.client_id != client_id:
            self._record("token refused", reason="invalid_grant", method=method)
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            expected = (
                create_s256_code_challenge(verifier)
                if (grant.code_challenge_method or "plain") == "S256"
                else verifier
            )
            if not verifier or not hmac.compare_digest(expected, grant.code_challenge):
                self._record("token refused", reason="pkce", method=method)
                return 400, {"error": "invalid_grant", "error_description": "code_verifier"}
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access_token] = grant.user
        self._record(
            "token issued",
            username=grant.user.username,
            method=method,
            pkce=grant.code_challenge is not None,
        )
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": grant.scope,
            "id_token": self.id_token(grant.user, client_id or "", grant.nonce),
        }

    def userinfo(self, authorization: str | None) -> tuple[int, dict[str, Any]]:
        """The userinfo endpoint: (HTTP status, JSON body)."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        with self._lock:
            user = self._access_tokens.get(token)
        if user is None:
            return 401, {"error": "invalid_token"}
        return 200, user.claims()


LOGIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Test identity provider</title>
<style>body{{font-family:sans-serif;margin:3em}} .error{{color:#b00}}</style></head>
<body><h1>Test identity provider</h1><p>Sign in to continue to {client_id}.</p>
<p class="error" id="error">{error}</p>
<form method="post" action="/authorize">
{hidden}
<label>User name <input id="username" name="username" autocomplete="off"></label><br>
<label>Password <input id="password" name="password" type="password"></label><br>
<button id="sign-in" type="submit">Sign in</button>
</form></body></html>
"""
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


class _Handler(BaseHTTPRequestHandler):
    owner: OidcProvider

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the provider's events are the record."""

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))

    def _login_page(self, params: dict[str, str], error: str = "") -> None:
        hidden = "\n".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
            for name in AUTHORIZE_PARAMS
            if name in params
        )
        page = LOGIN_PAGE.format(
            client_id=html.escape(params.get("client_id", "")), hidden=hidden, error=error
        )
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def do_GET(self) -> None:
        """Discovery, JWKS, the sign-in page and userinfo."""
        owner = self.owner
        parts = urllib.parse.urlsplit(self.path)
        if parts.path == "/.well-known/openid-configuration":
            self._json(200, owner.discovery())
        elif parts.path == "/jwks":
            self._json(200, owner.jwks())
        elif parts.path == "/authorize":
            params = dict(urllib.parse.parse_qsl(parts.query))
            problem = owner.check_authorization_request(params)
            if problem:
                self._json(400, {"error": problem})
            else:
                self._login_page(params)
        elif parts.path == "/userinfo":
            self._json(*owner.userinfo(self.headers.get("Authorization")))
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        """The sign-in form, the token endpoint and userinfo."""
        owner = self.owner
        path = urllib.parse.urlsplit(self.path).path
        if path == "/authorize":
            form = self._form()
            params = {k: form[k] for k in AUTHORIZE_PARAMS if k in form}
            problem = owner.check_authorization_request(params)
            if problem:
                self._json(400, {"error": problem})
                return
            code = owner.sign_in(params, form.get("username", ""), form.get("password", ""))
            if code is None:
                self._login_page(params, "Wrong user name or password.")
                return
            query = {"code": code}
            if "state" in params:
                query["state"] = params["state"]
            separator = "&" if "?" in params["redirect_uri"] else "?"
            location = params["redirect_uri"] + separator + urllib.parse.urlencode(query)
            self._send(302, b"", "text/plain", Location=location)
        elif path == "/token":
            self._json(*owner.token(self._form(), self.headers.get("Authorization")))
        elif path == "/userinfo":
            self._json(*owner.userinfo(self.headers.get("Authorization")))
        else:
            self._json(404, {"error": "not_found"})


def run_code_flow(
    provider: OidcProvider, username: str, password: str, *, auth_method: str
) -> dict[str, Any]:
    """One authorization code flow as a relying party does it, with authlib's client (PKCE
    S256, nonce): the tokens, with ``userinfo`` set to the ID token's validated claims."""
    import requests
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session
    from joserfc.jwk import KeySet as ClientKeySet

    redirect_uri = "http://127.0.0.1:9/callback"
    metadata = requests.get(provider.metadata_url, timeout=10).json()
    session = OAuth2Session(
        provider.client.client_id,
        provider.client.client_secret,
        scope="openid email profile",
        redirect_uri=redirect_uri,
        token_endpoint_auth_method=auth_method,
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], nonce=nonce, code_verifier=verifier
    )
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    response = requests.post(
        metadata["authorization_endpoint"],
        data={**query, "username": username, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != 302:
        raise PermissionError(f"sign-in refused for {username}")
    callback = response.headers["Location"]
    token = session.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    keys = ClientKeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": provider.client.client_id},
        nonce={"essential": True, "value": nonce},
    )
    registry.validate(decoded.claims)
    with contextlib.suppress(KeyError):
        assert query["state"] == state
    return {**token, "userinfo": decoded.claims}
