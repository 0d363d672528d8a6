"""The Kubernetes API the tests talk to: kmock's stateful emulator plus the fixes that kopf and
the ``kubernetes`` client need (see docs/test-emulators.md).

kmock 0.8 is pinned; this module relies on kmock internals that the pin keeps stable:
``KubernetesEmulator._handle`` (every parsed request passes through it), the default list/watch
handlers ``_serve_list`` / ``_serve_watch`` (registered as fallbacks by name, so overriding them
here takes effect), the per-resource event buses ``_buses``, and ``kmock._internal.dicts.
patch_dict`` (the very function kmock patches with, reused to check a patch before it lands).

Not emulated: PUT (neither kopf nor this project's operator uses it; it answers 404), schema
validation, ownerReference garbage collection, a Job controller (tests set Job status),
watching namespaces, watch bookmarks, 410 Gone. A watch sends the current objects newer than
its ``resourceVersion`` as ADDED, then the changes.

Requests are logged in memory; ``GET /_emulator/requests`` returns the log as JSON (method,
path, query, action, resource, namespace, name, subresource, status, and identity: the
Authorization and Impersonate-* headers as sent) and
``POST /_emulator/reset`` clears it. ``POST /_emulator/delay?action=create&resource=secrets
&seconds=3`` holds every such write that long before it is applied, so that writers racing
for one object meet as they would on a slow API server. These are answered before kmock
parses the request, so they never reach kmock's routing and are not logged themselves.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import datetime
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
from kmock._internal.dicts import patch_dict

GROUP, VERSION, PLURAL = "snowflake-processor.dev", "v1alpha1", "snowflakeprocessors"
VERBS = {"get", "list", "watch", "create", "patch", "delete", "deletecollection"}
_WRITES = {kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE}
_SPLIT = re.compile(r",(?![^()]*\))")  # commas, except inside "in (a,b)"
_LABEL_TERM = re.compile(
    r"^\s*(!?)\s*([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$"
)
_FIELD_TERM = re.compile(r"^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$")
log = logging.getLogger(__name__)
# A request log entry: method, path, query, then what kmock parsed, then the HTTP status.
_PARSED = ("action", "resource", "namespace", "name", "subresource", "status")
_entry: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("_entry")


IDENTITY_HEADERS = ("Authorization", "Impersonate-User", "Impersonate-Group")


def _bad_request(message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=400, reason="BadRequest", message=message)


def labels_match(labels: dict[str, str], selector: str) -> bool:
    """``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x,y)``; ANDed."""
    for term in filter(str.strip, _SPLIT.split(selector)):
        found = _LABEL_TERM.match(term)
        if found is None:
            raise _bad_request(f"unable to parse requirement: {term!r}")
        negated, key, op, value, set_op, values = found.groups()
        choices = {v.strip() for v in (values or "").split(",")}
        ok = (
            key not in labels if negated
            else labels.get(key) == value if op in ("=", "==")
            else labels.get(key) != value if op == "!="
            else labels.get(key) in choices if set_op == "in"
            else labels.get(key) not in choices if set_op == "notin"
            else key in labels
        )  # fmt: skip
        if not ok:
            return False
    return True


def fields_match(obj: dict[str, Any], selector: str) -> bool:
    """``metadata.name=x``, ``metadata.namespace!=y``, any dotted path; ANDed."""
    for term in filter(str.strip, _SPLIT.split(selector)):
        found = _FIELD_TERM.match(term)
        if found is None:
            raise _bad_request(f"invalid field selector: {term!r}")
        path, op, expected = found.groups()
        value: Any = obj
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        actual = "" if value is None else str(value)
        if (actual == expected) == (op == "!="):
            return False
    return True


@attrs.define(kw_only=True)
class SnowflakeKubeEmulator(kmock.KubernetesEmulator):
    request_log: list[dict[str, Any]] = attrs.field(factory=list, init=False)
    _revision: int = attrs.field(default=0, init=False)
    # Serialises writes, so the state a patch is checked against is the state it lands on.
    _write_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    # (action, plural) -> seconds each such write waits before it is applied.
    write_delays: dict[tuple[str, str], float] = attrs.field(factory=dict, init=False)
    # False: a cluster where the SnowflakeProcessor CRD is not installed.
    serve_processors: bool = True

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # A POSTed CRD is only stored, its group stays 404: declare the kinds up front.
        # The bundled list has Secrets, Events (v1 and events.k8s.io/v1), Jobs, Pods, Leases...
        self.resources.load_bundled()
        if not self.serve_processors:
            return
        self.resources[f"{GROUP}/{VERSION}/{PLURAL}"] = kmock.ResourceInfo(
            kind="SnowflakeProcessor",
            singular="snowflakeprocessor",
            namespaced=True,
            subresources={"status"},
            verbs=VERBS,
        )

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        path, query = raw.path, dict(raw.query)
        if path == "/_emulator/requests" and raw.method == "GET":
            return aiohttp.web.json_response(self.request_log)
        if path == "/_emulator/reset" and raw.method == "POST":
            self.request_log.clear()
            return aiohttp.web.json_response({})
        if path == "/_emulator/delay" and raw.method == "POST":
            key = (query.get("action", ""), query.get("resource", ""))
            self.write_delays[key] = float(query.get("seconds", "0"))
            return aiohttp.web.json_response({})
        entry = {"method": raw.method, "path": path, "query": query, **dict.fromkeys(_PARSED)}
        # Who the client says it is (test credentials only), for tests of kubectl's flags.
        entry["identity"] = {k: v for k, v in raw.headers.items() if k in IDENTITY_HEADERS}
        self.request_log.append(entry)
        # The kubernetes client's VersionApi asks for "/version/"; kmock only serves "/version".
        if path == "/version/" and raw.method == "GET":
            response = aiohttp.web.json_response(await self._serve_server_version(None))  # type: ignore[arg-type]
        # kmock's URL parser raises on "/api/v1/namespaces" (a 500): list the namespaces in use.
        elif path == "/api/v1/namespaces" and raw.method == "GET" and "watch" not in query:
            entry.update(action="list", resource="namespaces")
            response = aiohttp.web.json_response(self._namespace_list())
        else:
            _entry.set(entry)  # read in _handle(), in this task: no other request between
            response = await super().__call__(raw)
        entry["status"] = response.status  # a watch's only when it ends
        if response.status >= 500:  # an emulator bug or gap: the body has kmock's traceback
            log.error("%s %s -> %d", raw.method, raw.path_qs, response.status)
        return response

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        _entry.get().update(
            action=request.action.value.lower() if request.action else None,
            resource=request.resource.plural if request.resource else None,
            namespace=request.namespace,
            name=request.name,
            subresource=request.subresource,
        )
        if request.resource is None or request.action not in _WRITES:
            return await super()._handle(request)
        delay = self.write_delays.get((request.action.value.lower(), request.resource.plural))
        if delay:
            await asyncio.sleep(delay)
        async with self._write_lock:
            self._prepare_write(request)
            response = await super()._handle(request)
        # kmock answers POST with 200; the kubernetes client's create_* then returns None.
        if request.action == kmock.action.CREATE and response.status == 200:
            response.set_status(201)
        return response

    def _prepare_write(self, request: kmock.Request) -> None:
        """Fill in what the API server owns, by mutating ``request.data`` in place (kmock
        stores that very object; a replaced copy makes kmock answer 500)."""
        data = request.data
        if request.action == kmock.action.CREATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            # kopf posts Events with generateName only; without a name the 2nd Event is a 409.
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            if request.namespace:  # kmock does not copy the URL's namespace into the object
                meta["namespace"] = request.namespace
            # Without uid kopf mixes objects up; without resourceVersion its patches misfire.
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = self._next_revision()
            meta["creationTimestamp"] = datetime.datetime.now(datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            meta["generation"] = 1
            if self._has_status(request):  # the API server ignores status on create
                data.pop("status", None)
            return

        obj = self._stored(request)
        if obj is None:
            return  # kmock answers 404
        if request.action == kmock.action.DELETE:
            # With finalizers, DELETE only sets deletionTimestamp: a change, so a new version.
            meta = obj.raw["metadata"]
            if meta.get("finalizers") and not meta.get("deletionTimestamp"):
                obj["metadata"] = {**meta, "resourceVersion": self._next_revision()}
            return

        self._check_precondition(request, obj)
        self._scope_patch(request)
        old = obj.raw
        try:
            new = patch_dict(copy.deepcopy(old), data)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, ValueError) as e:
            # kmock lets a failed JSON-patch "test" escape as a 500; kopf retries only on 422.
            raise kmock.KubernetesError(
                status=422, reason="Invalid", message=str(e), details={"name": request.name}
            ) from e
        # Every change gets a new resourceVersion (kopf runs on.create twice otherwise);
        # generation counts spec changes only.
        stamps: dict[str, Any] = {"resourceVersion": self._next_revision()}
        if new.get("spec") != old.get("spec"):
            stamps["generation"] = int(old["metadata"].get("generation") or 0) + 1
        if isinstance(data, list):
            data.extend(
                {"op": "add", "path": f"/metadata/{k}", "value": v} for k, v in stamps.items()
            )
        else:
            data["metadata"] = {**(data.get("metadata") or {}), **stamps}

    @staticmethod
    def _check_precondition(request: kmock.Request, obj: kmock.Object) -> None:
        """A merge patch that names a resourceVersion applies only to that version, as on
        the API server: 409 Conflict when the object changed since (optimistic locking)."""
        data = request.data
        wanted = (
            (data.get("metadata") or {}).get("resourceVersion") if isinstance(data, dict) else None
        )
        current = obj.raw["metadata"].get("resourceVersion")
        if wanted is not None and str(wanted) != str(current):
            kind = request.resource.plural if request.resource else "objects"
            raise kmock.KubernetesError(
                status=409,
                reason="Conflict",
                message=(
                    f'Operation cannot be fulfilled on {kind} "{request.name}": the object has '
                    "been modified; please apply your changes to the latest version and try again"
                ),
            )

    def _scope_patch(self, request: kmock.Request) -> None:
        """kmock applies a patch to the whole object whatever the URL: make ``/status`` change
        only status, and the main endpoint leave status alone (when status is a subresource)."""
        if not self._has_status(request):
            return
        to_status = request.subresource == "status"
        data = request.data
        if isinstance(data, list):
            data[:] = [
                op
                for op in data
                if op.get("op") == "test"
                or (str(op.get("path", "")).split("/")[1:2] == ["status"]) == to_status
            ]
        elif isinstance(data, dict):
            for key in list(data):
                if (key == "status") != to_status:
                    del data[key]

    async def _serve_list(self, request: kmock.Request) -> Any:
        # kmock ignores labelSelector and fieldSelector, and answers resourceVersion "...".
        async with self._write_lock:  # no write in flight: the revision matches the items
            revision = str(self._revision)
            result: dict[str, Any] = await super()._serve_list(request)  # type: ignore[assignment]
        result["items"] = [obj for obj in result["items"] if self._selected(request, obj)]
        result["metadata"] = {"resourceVersion": revision}
        resource = request.resource
        if resource is not None and resource in self.resources:
            # As the API server answers, <Kind>List: Helm's lookup refuses a list without.
            group = f"{resource.group}/" if resource.group else ""
            result["apiVersion"] = f"{group}{resource.version}"
            result["kind"] = f"{self.resources[resource].kind}List"
        return result

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        """Replaces kmock's watch, which sends the current objects and only then subscribes to
        changes (changes made in between are lost: kopf would miss a new object until its
        next re-list), and ignores selectors, ``timeoutSeconds`` and ``resourceVersion``."""
        assert request.resource is not None  # kmock routes only Kubernetes URLs here
        yield b""  # send the headers now, as kmock does
        timeout = float(request.params.get("timeoutSeconds") or 0)
        deadline = asyncio.get_running_loop().time() + timeout if timeout > 0 else None
        since = int(request.params.get("resourceVersion") or 0)
        bus = self._buses[request.resource]
        async with self._write_lock:  # subscribe and take the snapshot at one point in time
            mark = await bus.mark()
            current = [
                obj.raw
                for (resource, _, _), obj in self.objects.items()
                if resource == request.resource and not obj.deleted
            ]
        changes = bus.stream(since=mark)
        try:
            for raw in current:  # what the client has not seen: newer than its resourceVersion
                newer = int(raw["metadata"].get("resourceVersion") or 0) > since
                if newer and self._selected(request, raw):
                    yield {"type": "ADDED", "object": raw}
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await anext(changes)
                except TimeoutError:
                    return
                if self._selected(request, event["object"]):
                    yield event
        finally:
            await changes.aclose()
            await bus.unmark(mark)

    def _selected(self, request: kmock.Request, obj: dict[str, Any]) -> bool:
        """The URL's namespace and name, then labelSelector and fieldSelector."""
        meta = obj.get("metadata") or {}
        return (
            request.namespace in (None, meta.get("namespace"))
            and request.name in (None, meta.get("name"))
            and labels_match(meta.get("labels") or {}, request.params.get("labelSelector", ""))
            and fields_match(obj, request.params.get("fieldSelector", ""))
        )

    def _stored(self, request: kmock.Request) -> kmock.Object | None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        obj: kmock.Object = self.objects[key]
        return obj

    def _has_status(self, request: kmock.Request) -> bool:
        resource = request.resource
        return resource in self.resources and "status" in self.resources[resource].subresources

    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    def _namespace_list(self) -> dict[str, Any]:
        names = {"default"} | {
            ns for (_, ns, _), obj in self.objects.items() if ns and not obj.deleted
        }
        return {
            "apiVersion": "v1",
            "kind": "NamespaceList",
            "metadata": {"resourceVersion": str(self._revision)},
            "items": [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": name},
                    "status": {"phase": "Active"},
                }
                for name in sorted(names)
            ],
        }
