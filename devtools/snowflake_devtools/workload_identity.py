"""Snowflake's check of an AWS workload identity login, for the emulator's model.

With ``authenticator="WORKLOAD_IDENTITY"`` and ``workload_identity_provider="AWS"`` the
connector logs in with no user and no secret: its login request carries an attestation, a
SigV4-signed STS ``GetCallerIdentity`` request (base64 of ``{"url", "method", "headers"}``)
that the pod's IAM role signed and did not send. Snowflake sends it to STS, reads the
caller's ARN from the answer (an assumed role: ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/
SESSION``) and logs in the one user whose workload identity is that role
(``CREATE USER ... WORKLOAD_IDENTITY = (TYPE = AWS ARN = 'arn:aws:iam::ACCOUNT:role/ROLE')``).

The emulator does the same against an STS emulator (moto's server): it checks the
attestation's shape here, replays it against ``sts_endpoint`` (:meth:`WorkloadIdentities.
caller_arn`, the one piece of I/O) and looks the role up among the users the SQL it ran
registered (:meth:`WorkloadIdentities.statement`: CREATE USER, ALTER USER ... SET/UNSET
WORKLOAD_IDENTITY, DROP USER, GRANT ROLE ... TO USER, which fakesnow cannot run). Any
failure answers as Snowflake answers a failed login: 390100, the connector's credential
rejection (SQLSTATE 28000), with the emulator's reason after the text Snowflake gives.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

AUTHENTICATOR = "WORKLOAD_IDENTITY"
PROVIDER = "AWS"
AUDIENCE = "snowflakecomputing.com"  # the connector signs X-Snowflake-Audience with it
STS_VERSION = "2011-06-15"
# What the signature must cover: the host (so it cannot be sent elsewhere), its time and
# the audience (so a GetCallerIdentity signed for another service cannot log in).
SIGNED_HEADERS = frozenset({"host", "x-amz-date", "x-snowflake-audience"})
# AWS refuses a SigV4 request whose X-Amz-Date is more than 15 minutes off.
SIGNATURE_WINDOW = timedelta(minutes=15)
LOGIN_FAILED_CODE = "390100"  # Snowflake's code for a failed authentication
LOGIN_FAILED_TEXT = "Incorrect username or password was specified."
USER_MISSING = ("002003", "02000")
USER_EXISTS = ("002002", "42710")

_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_ASSUMED_ROLE = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):sts::(?P<account>[0-9]{12}):"
    r"assumed-role/(?P<role>[A-Za-z0-9+=,.@_-]{1,64})/(?P<session>[A-Za-z0-9+=,.@_-]+)"
)
_IAM_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):iam::(?P<account>[0-9]{12}):"
    r"(?P<kind>role|user)/(?:[A-Za-z0-9+=,.@_-]+/)*(?P<name>[A-Za-z0-9+=,.@_-]{1,64})"
)
_NAME = r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*'
_CREATE_USER = re.compile(
    rf"CREATE\s+(?P<replace>OR\s+REPLACE\s+)?USER\s+(?P<if_not_exists>IF\s+NOT\s+EXISTS\s+)?"
    rf"(?P<user>{_NAME})(?P<rest>.*)",
    re.I | re.S,
)
_ALTER_USER = re.compile(
    rf"ALTER\s+USER\s+(?P<if_exists>IF\s+EXISTS\s+)?(?P<user>{_NAME})\s+"
    r"(?P<verb>SET|UNSET)\s+(?P<rest>.*)",
    re.I | re.S,
)
_DROP_USER = re.compile(
    rf"DROP\s+USER\s+(?P<if_exists>IF\s+EXISTS\s+)?(?P<user>{_NAME})\s*", re.I | re.S
)
_GRANT_ROLE = re.compile(
    rf"GRANT\s+ROLE\s+(?:{_NAME})\s+TO\s+USER\s+(?P<user>{_NAME})\s*", re.I | re.S
)
_IDENTITY = re.compile(r"\bWORKLOAD_IDENTITY\s*=\s*\((?P<body>[^)]*)\)", re.I)
_IDENTITY_TYPE = re.compile(r"\bTYPE\s*=\s*(?P<type>[A-Za-z]+)", re.I)
_IDENTITY_ARN = re.compile(r"\bARN\s*=\s*'(?P<arn>[^'\\]*)'", re.I)
_UNSET_IDENTITY = re.compile(r"(?:^|,)\s*WORKLOAD_IDENTITY\s*(?:,|$)", re.I)


class Refused(Exception):
    """A login or statement the emulator refuses; ``reason`` is for the message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- the attestation --------------------------------------------------------------------


@dataclass(frozen=True)
class CallerIdentityRequest:
    """A signed GetCallerIdentity request as the attestation carries it."""

    url: str
    method: str
    headers: Mapping[str, str]
    host: str  # the Host it was signed for
    access_key_id: str
    region: str

    @property
    def path_and_query(self) -> str:
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def decode_attestation(token: str) -> dict[str, Any]:
    """The attestation's JSON object (base64 of ``{"url", "method", "headers"}``)."""
    try:
        document = json.loads(base64.b64decode(token, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise Refused(f"the attestation is not base64 of JSON ({exc})") from None
    if not isinstance(document, dict):
        raise Refused("the attestation is not a JSON object")
    url, method, headers = (document.get(key) for key in ("url", "method", "headers"))
    if not (isinstance(url, str) and isinstance(method, str) and isinstance(headers, dict)):
        raise Refused("the attestation lacks url, method or headers")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise Refused("the attestation's headers are not all strings")
    return document


def caller_identity_request(
    token: str, sts_hosts: frozenset[str], now: datetime
) -> CallerIdentityRequest:
    """The attestation, checked to be a GetCallerIdentity request signed (SigV4, service
    sts) for one of ``sts_hosts`` (host[:port], as Snowflake accepts only AWS's STS hosts),
    covering the host, its date and the Snowflake audience, and signed within the last
    15 minutes of ``now``; Refused says what is wrong."""
    document = decode_attestation(token)
    headers: dict[str, str] = document["headers"]
    lower = {name.lower(): value for name, value in headers.items()}
    method = str(document["method"]).upper()
    if method != "POST":
        raise Refused(f"the attestation's method is {method}, not POST")
    parts = urlsplit(document["url"])
    query = parse_qs(parts.query, keep_blank_values=True)
    if (parts.path or "/") != "/" or query != {
        "Action": ["GetCallerIdentity"],
        "Version": [STS_VERSION],
    }:
        raise Refused("the attestation is not an STS GetCallerIdentity request")
    host = lower.get("host", "")
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
        raise Refused("the attestation's Host header is not its URL's host")
    if host.lower() not in sts_hosts:
        raise Refused(f"the attestation is signed for {host!r}, not an STS endpoint")
    if lower.get("x-snowflake-audience") != AUDIENCE:
        raise Refused(f"the attestation's X-Snowflake-Audience is not {AUDIENCE}")
    access_key_id, region = _check_authorization(lower.get("authorization", ""))
    _check_date(lower.get("x-amz-date", ""), now)
    return CallerIdentityRequest(document["url"], method, headers, host, access_key_id, region)


def _check_authorization(authorization: str) -> tuple[str, str]:
    """The access key id and region of a SigV4 Authorization header for service sts."""
    algorithm, _, fields = authorization.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise Refused("the attestation is not signed with AWS Signature Version 4")
    values = dict(item.strip().partition("=")[::2] for item in fields.split(",") if "=" in item)
    scope = values.get("Credential", "").split("/")
    if len(scope) != 5 or scope[3] != "sts" or scope[4] != "aws4_request" or not scope[0]:
        raise Refused("the attestation's signature is not for the service sts")
    signed = set(values.get("SignedHeaders", "").lower().split(";"))
    missing = sorted(SIGNED_HEADERS - signed)
    if missing:
        raise Refused(f"the attestation's signature does not cover {', '.join(missing)}")
    if not values.get("Signature"):
        raise Refused("the attestation has no signature")
    return scope[0], scope[2]


def _check_date(amz_date: str, now: datetime) -> None:
    try:
        signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise Refused("the attestation has no valid X-Amz-Date") from None
    if abs(now - signed_at) > SIGNATURE_WINDOW:
        raise Refused(f"the attestation was signed at {amz_date}, more than 15 minutes off")


def caller_arn(response_xml: bytes) -> str:
    """The Arn of a GetCallerIdentity answer."""
    try:
        root = ElementTree.fromstring(response_xml)  # noqa: S314 (the STS emulator's answer)
    except ElementTree.ParseError:
        raise Refused("STS answered GetCallerIdentity with no XML") from None
    for element in root.iter():
        if element.tag.rpartition("}")[2] == "Arn" and element.text:
            return element.text.strip()
    raise Refused("STS answered GetCallerIdentity with no Arn")


def sts_error(response_xml: bytes) -> str:
    """The Code (and Message) of an STS error answer, for the refusal's reason."""
    try:
        root = ElementTree.fromstring(response_xml)  # noqa: S314 (the STS emulator's answer)
    except ElementTree.ParseError:
        return response_xml[:200].decode(errors="replace")
    found = {e.tag.rpartition("}")[2]: (e.text or "").strip() for e in root.iter()}
    return ": ".join(part for part in (found.get("Code"), found.get("Message")) if part)


def identity_of(caller: str) -> str:
    """The IAM ARN a caller's identity is registered as: an assumed role's role
    (``arn:aws:iam::ACCOUNT:role/ROLE``), or an IAM user's own ARN."""
    assumed = _ASSUMED_ROLE.fullmatch(caller)
    if assumed:
        return f"arn:{assumed['partition']}:iam::{assumed['account']}:role/{assumed['role']}"
    if _IAM_ARN.fullmatch(caller):
        return caller
    raise Refused(f"the caller {caller!r} is neither an assumed role nor an IAM user")


def identity_key(arn: str) -> tuple[str, str, str, str] | None:
    """(partition, account, role|user, name) of an IAM ARN: an assumed role's ARN has the
    role's name but not its path, so a registered ARN with a path matches by name."""
    match = _IAM_ARN.fullmatch(arn)
    if match is None:
        return None
    return match["partition"], match["account"], match["kind"], match["name"]


# -- the users the SQL registered --------------------------------------------------------


def user_name(text: str) -> str:
    """A user's name as Snowflake keeps it: unquoted upper-cased, quoted as written."""
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text.upper()


@dataclass(frozen=True)
class UserStatement:
    """One statement about users, parsed: ``kind`` is create, set, unset, drop or grant."""

    kind: str
    user: str
    arn: str | None = None  # create and set: the AWS identity's ARN (None: none given)
    if_exists: bool = False  # alter, drop: IF EXISTS; create: IF NOT EXISTS
    replace: bool = False  # create: OR REPLACE


def parse_user_statement(sql: str) -> UserStatement | None:
    """The user statements the setup SQL holds, or None for anything else (fakesnow's).

    CREATE USER and ALTER USER ... SET only when they name a WORKLOAD_IDENTITY (the rest is
    left to fakesnow, which refuses them); ALTER USER ... UNSET WORKLOAD_IDENTITY; DROP USER;
    GRANT ROLE ... TO USER. A WORKLOAD_IDENTITY of another TYPE than AWS, or without an
    ARN, is refused (Refused)."""
    text = re.sub(r"--[^\n]*", "", sql).strip().rstrip(";").strip()
    if match := _CREATE_USER.fullmatch(text):
        arn = _aws_identity(match["rest"])
        if arn is None:
            return None
        return UserStatement(
            "create",
            user_name(match["user"]),
            arn,
            if_exists=bool(match["if_not_exists"]),
            replace=bool(match["replace"]),
        )
    if match := _ALTER_USER.fullmatch(text):
        user, if_exists = user_name(match["user"]), bool(match["if_exists"])
        if match["verb"].upper() == "UNSET":
            if _UNSET_IDENTITY.search(match["rest"]):
                return UserStatement("unset", user, if_exists=if_exists)
            return None
        arn = _aws_identity(match["rest"])
        return None if arn is None else UserStatement("set", user, arn, if_exists=if_exists)
    if match := _DROP_USER.fullmatch(text):
        return UserStatement("drop", user_name(match["user"]), if_exists=bool(match["if_exists"]))
    if match := _GRANT_ROLE.fullmatch(text):
        return UserStatement("grant", user_name(match["user"]))
    return None


def _aws_identity(properties: str) -> str | None:
    """The ARN of a WORKLOAD_IDENTITY = (TYPE = AWS ARN = '...'), None without one."""
    found = _IDENTITY.search(properties)
    if found is None:
        return None
    kind = _IDENTITY_TYPE.search(found["body"])
    arn = _IDENTITY_ARN.search(found["body"])
    if kind is None or kind["type"].upper() != PROVIDER or arn is None:
        raise Refused("the emulator models WORKLOAD_IDENTITY = (TYPE = AWS ARN = '...') only")
    if identity_key(arn["arn"]) is None:
        raise Refused(f"invalid AWS ARN {arn['arn']!r} for a workload identity")
    return arn["arn"]


@dataclass(frozen=True)
class Answer:
    """What a user statement answers: Snowflake's status text, or an error."""

    status: str | None = None
    error: tuple[str, str, str] | None = None  # code, SQLSTATE, message


@dataclass
class WorkloadIdentities:
    """The users the emulator's SQL registered (name -> IAM ARN, None: a user with no
    workload identity left), and how it checks a workload identity login."""

    sts_endpoint: str | None = None  # where attestations are replayed (moto's server)
    sts_hosts: frozenset[str] = frozenset()  # the hosts they may be signed for
    users: dict[str, str | None] = field(default_factory=dict)
    logins: dict[str, int] = field(default_factory=dict)  # user -> logins accepted
    refused: int = 0

    def __post_init__(self) -> None:
        hosts = {host.lower() for host in self.sts_hosts}
        if self.sts_endpoint:
            hosts.add(urlsplit(self.sts_endpoint).netloc.lower())
        self.sts_hosts = frozenset(hosts)

    # -- statements ----------------------------------------------------------------------

    def statement(self, sql: str) -> Answer | None:
        """Run a user statement on the registry; None when ``sql`` is not one."""
        try:
            parsed = parse_user_statement(sql)
        except Refused as exc:
            return Answer(error=("001003", "42000", f"SQL compilation error: {exc.reason}"))
        if parsed is None:
            return None
        known = parsed.user in self.users
        if parsed.kind == "create":
            if known and parsed.if_exists:
                return Answer(f"{parsed.user} already exists, statement succeeded.")
            if known and not parsed.replace:
                code, state = USER_EXISTS
                return Answer(error=(code, state, f"Object '{parsed.user}' already exists."))
            self.users[parsed.user] = parsed.arn
            return Answer(f"User {parsed.user} successfully created.")
        if not known:
            if parsed.if_exists:
                return Answer("Statement executed successfully.")
            code, state = USER_MISSING
            message = (
                f"SQL compilation error:\nUser '{parsed.user}' does not exist or not authorized."
            )
            return Answer(error=(code, state, message))
        if parsed.kind == "set":
            self.users[parsed.user] = parsed.arn
        elif parsed.kind == "unset":
            self.users[parsed.user] = None
        elif parsed.kind == "drop":
            del self.users[parsed.user]
            return Answer(f"{parsed.user} successfully dropped.")
        return Answer("Statement executed successfully.")

    def users_with(self, identity: str) -> list[str]:
        key = identity_key(identity)
        return sorted(
            user for user, arn in self.users.items() if arn is not None and identity_key(arn) == key
        )

    # -- logins --------------------------------------------------------------------------

    async def login(self, data: Mapping[str, Any], now: datetime | None = None) -> str:
        """The user a WORKLOAD_IDENTITY login request logs in as; Refused otherwise."""
        try:
            user = await self._user(data, now or datetime.now(UTC))
        except Refused:
            self.refused += 1
            raise
        self.logins[user] = self.logins.get(user, 0) + 1
        return user

    async def _user(self, data: Mapping[str, Any], now: datetime) -> str:
        provider = str(data.get("PROVIDER", ""))
        if provider != PROVIDER:
            raise Refused(f"the emulator checks AWS workload identities only, not {provider!r}")
        if not self.sts_endpoint:
            raise Refused(
                "the emulator was started without --sts-endpoint, so it cannot check a "
                "workload identity"
            )
        request = caller_identity_request(str(data.get("TOKEN", "")), self.sts_hosts, now)
        identity = identity_of(await asyncio.to_thread(self.caller_arn, request))
        users = self.users_with(identity)
        asked = str(data.get("LOGIN_NAME") or "")
        if asked and users:  # the client named a user: it must be the identity's
            users = [user for user in users if user.upper() == asked.upper()]
            if not users:
                raise Refused(f"the workload identity {identity} is not the user {asked}'s")
        if len(users) != 1:
            which = "no user has" if not users else f"{len(users)} users have"
            raise Refused(f"{which} the workload identity {identity}")
        return users[0]

    def caller_arn(self, request: CallerIdentityRequest) -> str:
        """Send the signed request to the STS emulator, as Snowflake sends it to AWS: same
        method, path, headers (the Host it was signed for included); the caller's ARN."""
        assert self.sts_endpoint is not None
        replay = urllib.request.Request(  # noqa: S310 (the emulator's own STS endpoint)
            self.sts_endpoint.rstrip("/") + request.path_and_query,
            data=b"",
            method=request.method,
            headers=dict(request.headers),
        )
        try:
            with urllib.request.urlopen(replay, timeout=10) as answer:  # noqa: S310
                return caller_arn(answer.read())
        except urllib.error.HTTPError as exc:
            raise Refused(f"STS refused the attestation: {sts_error(exc.read())}") from None
        except OSError as exc:
            raise Refused(f"STS at {self.sts_endpoint} cannot be reached: {exc}") from None

    def stats(self) -> dict[str, Any]:
        return {
            "sts_endpoint": self.sts_endpoint,
            "users": dict(self.users),
            "logins": dict(self.logins),
            "refused": self.refused,
        }


def login_refusal(reason: str) -> dict[str, Any]:
    """A failed login's answer, as Snowflake's login-request answers one (HTTP 200)."""
    return {
        "data": {"nextAction": "RETRY_LOGIN", "errorCode": LOGIN_FAILED_CODE},
        "code": LOGIN_FAILED_CODE,
        "message": f"{LOGIN_FAILED_TEXT} (emulator: workload identity refused: {reason})",
        "success": False,
    }
