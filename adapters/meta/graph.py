"""Meta's Graph API as the WhatsApp and Messenger channels call it.

One `httpx.AsyncClient` serves every deployment of a channel: the token travels in each request's
`Authorization` header, never in a URL, so nothing that logs URLs can leak it. Graph's error body
(`{"error": {"message", "type", "code", "error_subcode"?, "error_data"?: {"details"},
"fbtrace_id"}}`) is read into a `GraphError`. A rate limit is an HTTP 429 or one of Graph's
throttling codes whatever the HTTP status (Meta's own tables disagree on 400 and 429, and Meta
says to read `code`); it is waited out where Meta says how long (`Retry-After`, or the business
use case header's minutes) or briefly where it does not, and given up when the wait is too long
to hold a conversation for.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from runtime.channel import SendError
from runtime.metrics import RATE_LIMITED
from runtime.net import read_capped

logger = logging.getLogger(__name__)

GRAPH_API_URL = "https://graph.facebook.com/v21.0"  # the version the channels are written for
# Graph's throttling codes: #4 app, #17 user, #32 Page, #613 calls per time, #80007 WhatsApp
# business account, #130429 Cloud API throughput, #131056 too many messages to one person.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80007, 130429, 131056})
TOKEN_REFUSED = 190  # the access token is invalid, expired or revoked
# Meta's own failures, worth another attempt: #1 unknown, #2 service down, #131000 "something
# went wrong" (WhatsApp).
TRANSIENT_CODES = frozenset({1, 2, 131000})
MAX_RETRY_AFTER_S = 30.0  # a longer wait is not worth holding the conversation for
ATTEMPTS = 3  # of one call that Meta rate-limits
TIMEOUT = httpx.Timeout(20.0, connect=5.0)  # an upload of a few MB fits; a hung Graph does not
FETCH_TIMEOUT_S = 60.0  # a whole media download
# Where Meta serves media (a download URL gets the token, so it must be Meta's).
MEDIA_HOSTS = ("fbsbx.com", "facebook.com", "fbcdn.net", "whatsapp.net")


def checked_api_url(value: str) -> str:
    """A channel's Graph API URL setting, or `ValueError` (a settings validator): http(s), with
    its version, since every path is relative to it."""
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be the Graph API's http(s) URL, with its version")
    return value


class GraphError(Exception):
    """Graph refused a call (`code`: Graph's error code), or no Graph answer came (`status`
    0: the network, a timeout, a body that is not Graph's)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: int = 0,
        subcode: int | None = None,
        details: str | None = None,
        trace: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.subcode = subcode
        self.details = details
        self.trace = trace  # fbtrace_id: what Meta's support asks for
        self.retry_after = retry_after  # seconds Meta asked to wait, when it said

    @property
    def reason(self) -> str:
        """Meta's words: the message, and its details where they say more."""
        if self.details and self.details not in self.message:
            return f"{self.message}: {self.details}"
        return self.message

    @property
    def rate_limited(self) -> bool:
        return self.status == 429 or self.code in RATE_LIMIT_CODES

    @property
    def token_refused(self) -> bool:
        return self.code == TOKEN_REFUSED

    @property
    def transient(self) -> bool:
        """Worth another attempt: Meta failed, or could not be reached, this time."""
        return self.status == 0 or self.status >= 500 or self.code in TRANSIENT_CODES


def failure(error: GraphError, *, platform: str, out: bool = False) -> SendError:
    """`error` as the runtime takes it: a refused token, and anything Meta refuses, fail for
    good; a rate limit or Meta's own failure is worth a retry, unless part of the message is
    `out` already (a retry of the whole would repeat it)."""
    if error.token_refused:
        return SendError(
            f"Meta refused the access token ({error.reason}): deploy again with a new token",
            permanent=True,
        )
    if error.rate_limited:
        return SendError(f"{platform} kept rate-limiting: {error.reason}", permanent=out)
    if error.transient:
        return SendError(f"{platform} failed: {error.reason}", permanent=out)
    return SendError(f"{platform} refused it: {error.reason}", permanent=True)


class _ErrorData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    details: str | None = None


class _Error(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = ""
    code: int = 0
    error_subcode: int | None = None
    # An object on WhatsApp's errors; some Graph errors give a string here instead.
    error_data: _ErrorData | str | None = None
    fbtrace_id: str | None = None


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    error: _Error


def read_error(response: httpx.Response) -> GraphError:
    """The `GraphError` of an error answer (with Graph's body, or only its HTTP status)."""
    wait = _retry_after(response.headers)
    try:
        body = _ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        return GraphError(
            f"HTTP {response.status_code} without Graph's error body",
            status=response.status_code,
            retry_after=wait,
        )
    data = body.error_data
    return GraphError(
        body.message or f"(#{body.code}) HTTP {response.status_code}",
        status=response.status_code,
        code=body.code,
        subcode=body.error_subcode,
        details=data.details if isinstance(data, _ErrorData) else data,
        trace=body.fbtrace_id,
        retry_after=wait,
    )


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds Meta asked to wait: `Retry-After`, or the longest `estimated_time_to_regain_access`
    (minutes) in `X-Business-Use-Case-Usage`; None when it said nothing."""
    given = headers.get("retry-after", "")
    try:
        return max(0.0, float(given))
    except ValueError:
        pass
    usage = headers.get("x-business-use-case-usage")
    if not usage:
        return None
    try:
        accounts = json.loads(usage)
        minutes = [
            float(item.get("estimated_time_to_regain_access") or 0)
            for items in accounts.values()
            for item in items
        ]
    except (ValueError, AttributeError, TypeError):
        return None
    return max(minutes) * 60 if minutes and max(minutes) > 0 else None


class GraphClient:
    """Graph API calls for one channel (`channel` names it in the metrics), on one HTTP client
    for every deployment, made on first use (its TLS set-up costs ~30 ms of CPU, which a
    service with no deployment on the channel never pays); `close` lets go of it."""

    def __init__(self, api_url: str, *, channel: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.channel = channel
        self._client: httpx.AsyncClient | None = None

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.api_url + "/", timeout=TIMEOUT)
        return self._client

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str,
        json: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Graph's JSON answer to `method path` (relative to the API URL, version included),
        or `GraphError`. A rate limit is retried after Meta's wait (or 1 s, then 2 s), at most
        `ATTEMPTS` times: Meta did nothing with a throttled call, so the retry repeats nothing."""
        headers = {"Authorization": f"Bearer {token}"}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await self._http.request(
                    method,
                    path.lstrip("/"),
                    headers=headers,
                    json=json,
                    data=data,
                    files=files,
                    params=params,
                )
            except httpx.HTTPError as exc:
                raise GraphError(
                    f"Meta could not be reached ({type(exc).__name__})", status=0
                ) from None
            if response.is_success:
                return _answer(response)
            error = read_error(response)
            if not error.rate_limited:
                raise error
            RATE_LIMITED.labels(self.channel).inc()
            wait = error.retry_after if error.retry_after is not None else float(attempt)
            if attempt == ATTEMPTS or wait > MAX_RETRY_AFTER_S:
                raise error
            logger.info("Meta rate-limited a call; again in %.1f s: %s", wait, error.reason)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def fetch(self, url: str, *, token: str, max_bytes: int) -> bytes:
        """The body at `url` (a media URL Meta gave, which wants the token too), at most
        `max_bytes` (`runtime.net.TooLargeError` beyond); `GraphError` when it is refused (404:
        the URL expired) or Meta cannot be reached. The caller checks `trusts(url)` first."""
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with (
                asyncio.timeout(FETCH_TIMEOUT_S),
                self._http.stream("GET", url, headers=headers) as response,
            ):
                if not response.is_success:  # its body unread: the connection is dropped
                    raise GraphError(
                        f"HTTP {response.status_code} for the media", status=response.status_code
                    )
                return await read_capped(response, max_bytes, shown="the file")
        except (TimeoutError, httpx.HTTPError) as exc:
            raise GraphError(
                f"Meta could not be reached ({type(exc).__name__})", status=0
            ) from None

    def trusts(self, url: str) -> bool:
        """Whether `url` is Meta's (https on one of its media hosts) or on the API's own host (a
        local fake in tests), so that the token may go there."""
        where, api = urlsplit(url), urlsplit(self.api_url)
        if (where.scheme, where.netloc) == (api.scheme, api.netloc):
            return True
        host = where.hostname or ""
        return where.scheme == "https" and any(
            host == name or host.endswith(f".{name}") for name in MEDIA_HOSTS
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GraphError("Meta answered with something other than a JSON object", status=0)
    return body
