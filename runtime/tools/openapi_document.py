"""Reading an OpenAPI 3.0/3.1 document into a tool (the parsing half of `runtime.tools.openapi`).

The document is untrusted input, parsed off the event loop. Operations are chosen by
operationId; each becomes a `ToolOperation` whose arguments are one JSON schema object: its path,
query and header parameters, and its JSON body's properties (or the body as one `body` argument),
with `places` saying where each goes (references and schemas: `runtime.tools.openapi_schema`).
Calls go to the first server, which must be on the document's host; the secret goes as a bearer
token or in the header of an API-key scheme. Every refusal is a one-line `ToolSetupError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import yaml
from pydantic import JsonValue, ValidationError

from builders.spec import ArgumentPlace, HttpMethod, ToolOperation, ToolSpec
from runtime.net import UnsafeUrlError, parse_url, same_service
from runtime.tools.base import ToolSetupError, function_names
from runtime.tools.openapi_schema import MAX_SCHEMA_DESCRIPTION, Reader, Schemas, read_only

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
MAX_OPERATIONS = 100  # in one tool (the spec's limit)
MAX_DESCRIPTION = 2000
SHOWN_IDS = 20  # operation ids named when one asked for does not exist
METHODS: dict[str, HttpMethod] = {  # offered as tools
    "get": "GET",
    "post": "POST",
    "put": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
}
OTHER_METHODS = ("head", "options", "trace")  # not offered
# Headers a model may never set: the platform sends them, or they must not be sent at all.
REFUSED_HEADERS = frozenset(
    {
        "host",
        "authorization",
        "cookie",
        "proxy-authorization",
        "content-length",
        "transfer-encoding",
        "connection",
    }
)
IGNORED_HEADERS = frozenset({"accept", "content-type"})  # OpenAPI: "SHALL be ignored"
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")  # what ToolSpec.auth_header allows too
BODY = "body"  # the argument holding the whole request body, when it is not flattened
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")  # `{name}` in a path or a server's URL
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_document(content: bytes, *, shown: str) -> dict[str, Any]:
    """The document (JSON or YAML) as a mapping, once it proves to be OpenAPI 3.0 or 3.1.
    CPU work: run it in a thread."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ToolSetupError(f"{shown} is not UTF-8 text, so not an OpenAPI document") from None
    try:
        if text.lstrip().startswith("{"):
            document = json.loads(text)
        else:
            document = yaml.load(text, Loader=_Loader)  # a safe loader (C when built)
    except json.JSONDecodeError as exc:
        raise ToolSetupError(
            f"{shown} does not parse as JSON (line {exc.lineno}: {exc.msg})"
        ) from None
    except yaml.YAMLError as exc:
        raise ToolSetupError(f"{shown} does not parse as YAML ({_yaml_reason(exc)})") from None
    except (ValueError, TypeError, RecursionError):
        raise ToolSetupError(f"{shown} does not parse as JSON or YAML") from None
    if not isinstance(document, dict):
        raise ToolSetupError(f"{shown} is not an OpenAPI document")
    if "swagger" in document:
        raise ToolSetupError(
            f"{shown} is Swagger {str(document['swagger'])[:20]}: only OpenAPI 3.0 and 3.1 are "
            "read (convert it first, e.g. with swagger2openapi)"
        )
    version = document.get("openapi")
    if isinstance(version, float):  # `openapi: 3.1` in YAML
        version = str(version)
    if not isinstance(version, str):
        raise ToolSetupError(f"{shown} is not an OpenAPI document (it has no 'openapi' version)")
    if not re.fullmatch(r"3\.[01](\.\d+.*)?", version):
        raise ToolSetupError(f"{shown} is OpenAPI {version[:20]}: only 3.0 and 3.1 are read")
    if not isinstance(document.get("paths"), dict):
        raise ToolSetupError(f"{shown} has no paths: it offers no operation")
    return document


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["invalid"])[0]
    return f"line {mark.line + 1}: {problem}" if mark is not None else str(problem)


def tool_from_document(
    document: dict[str, Any],
    *,
    name: str,
    url: str,
    document_url: httpx.URL,
    wanted: Sequence[str],
    auth: str | None,
) -> ToolSpec:
    """The tool `document` (read from `document_url`, given as `url`) offers: the operations
    `wanted` by id (all that have one when none), called at its first server, which must be on
    the document's host. CPU work: run it in a thread."""
    reader = Reader(document, shown=url)
    chosen = _chosen(reader, wanted)
    base = _server(reader, document.get("servers"), document_url)
    auth_header = _auth_header(reader, chosen, auth)
    functions = function_names(str(found.id) for found in chosen)
    operations = []
    for found, function in zip(chosen, functions, strict=True):
        own = found.operation.get("servers") or found.item.get("servers")
        if own and _server(reader, own, document_url) != base:
            raise ToolSetupError(
                f"'{found.id}' is served from another address than the document's first server"
            )
        operations.append(_operation(reader, found, function, auth_header))
    info = reader.follow(document.get("info"))
    info = info if isinstance(info, dict) else {}
    description = "\n\n".join(_texts(info, "title", "description"))[:MAX_DESCRIPTION]
    try:
        return ToolSpec(
            name=name,
            kind="openapi",
            url=url,
            base_url=base,
            auth=auth,
            auth_header=auth_header,
            description=description,
            operations=operations,
        )
    except ValidationError as exc:
        raise ToolSetupError(_first_error(exc)) from None


@dataclass(frozen=True, slots=True)
class _Found:
    """An operation of the document: its id (None when it has none usable), method (lower
    case), path, its path item and itself."""

    id: str | None
    method: str
    path: str
    item: dict[str, Any]
    operation: dict[str, Any]


def _operations(reader: Reader) -> Iterator[_Found]:
    for path, item in reader.document["paths"].items():
        item = reader.follow(item)
        if not isinstance(item, dict):
            continue
        for method in (*METHODS, *OTHER_METHODS):
            operation = item.get(method)
            if isinstance(operation, dict):
                found_id = operation.get("operationId")
                usable = isinstance(found_id, str) and 0 < len(found_id) <= 200
                yield _Found(found_id if usable else None, method, str(path), item, operation)


def _chosen(reader: Reader, wanted: Sequence[str]) -> list[_Found]:
    shown = reader.shown
    by_id: dict[str, list[_Found]] = {}
    for found in _operations(reader):
        if found.id is not None:
            by_id.setdefault(found.id, []).append(found)
    if not wanted:
        wanted = [found_id for found_id, same in by_id.items() if same[0].method in METHODS]
        if not wanted:
            raise ToolSetupError(
                f"{shown} has no operation with an operationId (only those can be tools)"
            )
        if len(wanted) > MAX_OPERATIONS:
            raise ToolSetupError(
                f"{shown} has {len(wanted)} operations: choose at most {MAX_OPERATIONS} by id "
                f"(e.g. {', '.join(wanted[:5])})"
            )
    wanted = list(dict.fromkeys(wanted))
    if len(wanted) > MAX_OPERATIONS:
        raise ToolSetupError(
            f"a tool has at most {MAX_OPERATIONS} operations ({len(wanted)} asked for)"
        )
    chosen = []
    for wanted_id in wanted:
        same = by_id.get(wanted_id, [])
        if not same:
            raise ToolSetupError(
                f"{shown} has no operation '{wanted_id}' (its operations: {_listed(by_id)})"
            )
        if len(same) > 1:
            raise ToolSetupError(f"{shown} has {len(same)} operations with the id '{wanted_id}'")
        if same[0].method not in METHODS:
            raise ToolSetupError(
                f"'{wanted_id}' is a {same[0].method.upper()} operation: only GET, POST, PUT, "
                "PATCH and DELETE operations can be tools"
            )
        chosen.append(same[0])
    return chosen


def _listed(ids: Sequence[str] | dict[str, Any]) -> str:
    names = list(ids)
    if not names:
        return "none has an operationId"
    more = f" and {len(names) - SHOWN_IDS} more" if len(names) > SHOWN_IDS else ""
    return ", ".join(names[:SHOWN_IDS]) + more


def _server(reader: Reader, servers: Any, document_url: httpx.URL) -> str:
    """Where operations are called: the first of `servers` (variables at their defaults),
    resolved against the document's URL ("/" when there is none), on the document's host."""
    servers = reader.follow(servers)
    server = reader.follow(servers[0]) if isinstance(servers, list) and servers else {}
    server = server if isinstance(server, dict) else {}
    raw = server.get("url", "/")
    raw = raw if isinstance(raw, str) else "/"
    variables = server.get("variables")
    variables = variables if isinstance(variables, dict) else {}

    def default(match: re.Match[str]) -> str:
        variable = variables.get(match[1])
        value = variable.get("default") if isinstance(variable, dict) else None
        if not isinstance(value, str):
            raise ToolSetupError(
                f"{reader.shown}: the server {raw[:200]} has no default for {{{match[1]}}}"
            )
        return value

    filled = PLACEHOLDER.sub(default, raw)
    try:
        base = parse_url(str(document_url.join(filled)), verb="called")
    except (UnsafeUrlError, httpx.InvalidURL) as exc:
        raise ToolSetupError(
            f"{reader.shown}: its server {raw[:200]} is not usable ({exc})"
        ) from None
    if not same_service(document_url, base):
        raise ToolSetupError(
            f"{reader.shown} sends its calls to {base.netloc.decode('ascii')}: only the "
            f"document's host ({document_url.netloc.decode('ascii')}) is called"
        )
    return str(base.copy_with(query=None, fragment=None)).rstrip("/")


def _auth_header(reader: Reader, chosen: Sequence[_Found], auth: str | None) -> str | None:
    """The header a key goes in, when the operations' security scheme is an API key in a
    header (None: a bearer token, or no security). With a secret, an operation's first
    scheme that takes a credential is the one used; a scheme no single secret can satisfy
    (basic, a key in the query or a cookie) is refused then."""
    components = reader.follow(reader.document.get("components"))
    schemes = (
        reader.follow(components.get("securitySchemes")) if isinstance(components, dict) else None
    )
    schemes = schemes if isinstance(schemes, dict) else {}
    headers: set[str] = set()
    for found in chosen:
        requirements = reader.follow(
            found.operation.get("security", reader.document.get("security"))
        )
        if not isinstance(requirements, list) or auth is None:
            continue
        usable: list[str] = []  # "bearer" or the name of a header
        unusable: list[str] = []
        for requirement in map(reader.follow, requirements):
            if not isinstance(requirement, dict) or not requirement:
                continue  # anonymous access: no use for the secret
            if len(requirement) > 1:
                unusable.append(" and ".join(map(str, requirement)))
                continue
            scheme = reader.follow(schemes.get(next(iter(requirement))))
            kind = _scheme(scheme)
            if kind is None:
                unusable.append(_scheme_name(scheme))
            else:
                usable.append(kind)
        if not usable and unusable:
            raise ToolSetupError(
                f"'{found.id}' takes its credential as {', '.join(unusable)}: a tool sends a "
                "bearer token or a key in a header"
            )
        if usable and usable[0] != "bearer":
            headers.add(usable[0])
    if len(headers) > 1:
        raise ToolSetupError(
            f"the operations take different keys ({', '.join(sorted(headers))}): add them as "
            "separate tools"
        )
    header = headers.pop() if headers else None
    if header is not None and not HEADER_NAME.fullmatch(header):
        raise ToolSetupError(f"the key's header {header[:100]!r} is not one a tool can send")
    return header


def _scheme(scheme: Any) -> str | None:
    """'bearer', the header name of a key in a header, or None (not something one secret
    can be sent as)."""
    if not isinstance(scheme, dict):
        return None
    kind = scheme.get("type")
    if kind in ("oauth2", "openIdConnect"):
        return "bearer"
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
        return "bearer"
    if kind == "apiKey" and scheme.get("in") == "header" and isinstance(scheme.get("name"), str):
        return str(scheme["name"])
    return None


def _scheme_name(scheme: Any) -> str:
    if not isinstance(scheme, dict):
        return "an undefined security scheme"
    if scheme.get("type") == "apiKey":
        return f"a key in the {scheme.get('in', '?')}"
    if scheme.get("type") == "http":
        return f"HTTP {scheme.get('scheme', '?')} authentication"
    return f"{str(scheme.get('type', '?'))[:40]} security"


def _operation(
    reader: Reader, found: _Found, function: str, auth_header: str | None
) -> ToolOperation:
    operation_id = str(found.id)
    schemas = Schemas(reader, operation_id)
    properties: dict[str, JsonValue] = {}
    required: list[str] = []
    places: dict[str, ArgumentPlace] = {}
    for parameter in _parameters(reader, found):
        name, where = parameter["name"], parameter["in"]
        if where == "header":
            lowered = name.lower()
            if lowered in IGNORED_HEADERS:
                continue
            if lowered in REFUSED_HEADERS or lowered == (auth_header or "").lower():
                raise ToolSetupError(
                    f"'{operation_id}' takes the header {name} as an argument, which only the "
                    "platform may set"
                )
            if not HEADER_NAME.fullmatch(name):
                raise ToolSetupError(f"'{operation_id}': {name[:100]!r} is not a header name")
        elif where == "cookie":
            if parameter.get("required") is True:
                raise ToolSetupError(f"'{operation_id}' needs the cookie {name}: tools send none")
            continue
        elif where not in ("path", "query"):
            raise ToolSetupError(f"'{operation_id}': the parameter {name} is in '{where}'")
        if name in places:
            raise ToolSetupError(f"'{operation_id}' has two parameters called {name}")
        schema = schemas.convert(_parameter_schema(reader, parameter), depth=3)
        description = parameter.get("description")
        if isinstance(description, str) and description.strip() and "description" not in schema:
            schema["description"] = description.strip()[:MAX_SCHEMA_DESCRIPTION]
        properties[name] = schema
        places[name] = where
        if where == "path" or parameter.get("required") is True:
            required.append(name)
    _check_path(found, places)
    body = _request_body(reader, found)
    if body is not None:
        schema, body_required = body
        flat = _flattened(reader, schema)
        if flat is not None and not set(flat[0]) & set(places) and list(flat[0]) != [BODY]:
            above = frozenset(reader.chain(schema)[1])  # the body's own references
            for name, part in flat[0].items():
                if read_only(reader, part):
                    continue
                properties[name] = schemas.convert(part, depth=3, active=above)
                places[name] = "body"
                if body_required and name in flat[1]:
                    required.append(name)
        else:
            if BODY in places:
                raise ToolSetupError(
                    f"'{operation_id}' has a parameter called {BODY} besides its request body"
                )
            properties[BODY] = schemas.convert(schema, depth=3)
            places[BODY] = "body"
            if body_required:
                required.append(BODY)
    parameters: dict[str, JsonValue] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        parameters["required"] = list(dict.fromkeys(required))
    try:
        return ToolOperation(
            function=function,
            id=operation_id,
            description="\n\n".join(_texts(found.operation, "summary", "description"))[
                :MAX_DESCRIPTION
            ],
            parameters=parameters,
            method=METHODS[found.method],
            path=found.path,
            places=places,
            changes=found.method != "get",
        )
    except ValidationError as exc:
        raise ToolSetupError(f"'{operation_id}': {_first_error(exc)}") from None


def _parameters(reader: Reader, found: _Found) -> list[dict[str, Any]]:
    """The operation's parameters over its path's (same name and place: the operation's)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for source in (found.item.get("parameters"), found.operation.get("parameters")):
        listed = reader.follow(source)
        for parameter in listed if isinstance(listed, list) else []:
            parameter = reader.follow(parameter)
            if not isinstance(parameter, dict):
                continue
            name, where = parameter.get("name"), parameter.get("in")
            if not isinstance(name, str) or not name or not isinstance(where, str):
                raise ToolSetupError(f"'{found.id}' has a parameter without a name or place")
            merged[(name, where)] = parameter
    return list(merged.values())


def _parameter_schema(reader: Reader, parameter: dict[str, Any]) -> Any:
    if "schema" in parameter:
        return parameter["schema"]
    content = reader.follow(parameter.get("content"))
    if isinstance(content, dict) and content:
        media = reader.follow(next(iter(content.values())))
        if isinstance(media, dict):
            return media.get("schema", {})
    return {"type": "string"}


def _check_path(found: _Found, places: dict[str, ArgumentPlace]) -> None:
    if not found.path.startswith("/"):
        raise ToolSetupError(f"'{found.id}': its path {found.path[:200]} does not start with /")
    named = set(PLACEHOLDER.findall(found.path))
    declared = {name for name, place in places.items() if place == "path"}
    unmatched = sorted(named ^ declared)
    if unmatched:
        name = unmatched[0]
        where = "no path parameter" if name in named else "no place in the path"
        raise ToolSetupError(f"'{found.id}': {{{name}}} has {where} ({found.path[:200]})")


def _request_body(reader: Reader, found: _Found) -> tuple[Any, bool] | None:
    """The JSON request body's schema and whether it is required (None: no JSON body)."""
    body = reader.follow(found.operation.get("requestBody"))
    if not isinstance(body, dict):
        return None
    content = reader.follow(body.get("content"))
    content = content if isinstance(content, dict) else {}
    for media, value in content.items():
        kind = str(media).partition(";")[0].strip().lower()
        if kind == "application/json" or kind.endswith("+json"):
            value = reader.follow(value)
            return (value.get("schema", {}) if isinstance(value, dict) else {}), body.get(
                "required"
            ) is True
    if body.get("required") is True:
        raise ToolSetupError(
            f"'{found.id}' takes a {', '.join(map(str, content)) or 'non-JSON'} body: only JSON "
            "bodies can be sent"
        )
    return None


def _flattened(reader: Reader, schema: Any) -> tuple[dict[str, Any], list[str]] | None:
    """An object body's properties and required names, merged over `allOf`, when each can be
    an argument of its own (None: the body stays one argument)."""
    schema = reader.follow(schema)
    if not isinstance(schema, dict) or any(key in schema for key in ("anyOf", "oneOf")):
        return None
    properties: dict[str, Any] = {}
    required: list[str] = []
    for part in schema.get("allOf") or []:
        merged = _flattened(reader, part)
        if merged is None:
            return None
        properties.update(merged[0])
        required += merged[1]
    if schema.get("type", "object") != "object":
        return None
    own = reader.follow(schema.get("properties"))
    if isinstance(own, dict):
        properties.update({str(name): part for name, part in own.items()})
    names = reader.follow(schema.get("required"))
    if isinstance(names, list):
        required += [name for name in names if isinstance(name, str)]
    return (properties, required) if properties else None


def _texts(node: dict[str, Any], *keys: str) -> list[str]:
    found = [node.get(key) for key in keys]
    return list(
        dict.fromkeys(text.strip() for text in found if isinstance(text, str) and text.strip())
    )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"[:300] if where else message[:300]
