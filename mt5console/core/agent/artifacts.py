"""An EA version's source for the compile job: ``GET /ea/versions/{id}/artifacts`` -> ``{"mq5_url"}``,
then the file at that signed URL.

The signed URL carries its own authorisation and may point at another host (object storage), so it
is fetched by a separate client that never sends the platform's bearer key, and read no further than
the compile job's size limit.
"""

from __future__ import annotations

import codecs

import httpx

from mt5console.core.agent.platform import PlatformClient
from mt5console.core.agent.reporting import path_part

DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ArtifactError(Exception):
    """The artifact could not be fetched; the message says why (the compile job's error)."""


def decode_source(data: bytes) -> str:
    """MQL5 sources are UTF-8 or UTF-16 LE with a BOM (MetaEditor's own default)."""
    if data.startswith(codecs.BOM_UTF16_LE):
        return data[len(codecs.BOM_UTF16_LE) :].decode("utf-16-le")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ArtifactError("the source is neither UTF-8 nor UTF-16 text") from None


class ArtifactFetcher:
    def __init__(
        self,
        client: PlatformClient,
        max_bytes: int,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = client
        self._max_bytes = max_bytes
        self._transport = transport

    async def __call__(self, version_id: str) -> str:
        path = f"/ea/versions/{path_part(version_id)}/artifacts"
        answer = await self._client.request("GET", path)
        url = answer.body.get("mq5_url") if isinstance(answer.body, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ArtifactError(f"GET {path}: the answer has no mq5_url")
        return decode_source(await self._download(url))

    async def _download(self, url: str) -> bytes:
        # A log names the host only: the query string of a signed URL is a credential.
        where = httpx.URL(url).host
        async with httpx.AsyncClient(
            timeout=DOWNLOAD_TIMEOUT, verify=True, transport=self._transport, follow_redirects=True
        ) as http:
            try:
                async with http.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise ArtifactError(f"the download from {where} answered HTTP {response.status_code}")
                    data = bytearray()
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > self._max_bytes:
                            raise ArtifactError(
                                f"the source is more than the {self._max_bytes:,} bytes allowed "
                                "(--artifact-max-bytes)"
                            )
            except httpx.HTTPError as error:
                raise ArtifactError(f"the download from {where} failed: {type(error).__name__}") from None
        return bytes(data)
