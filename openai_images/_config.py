"""Client settings: from arguments first, then the environment, then defaults."""

from __future__ import annotations

import os
import platform
import ssl
import warnings
from collections.abc import Mapping

import attrs

from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "ClientCertificate",
    "Settings",
    "Timeout",
    "Verify",
    "custom_headers",
    "tls_setting",
    "user_agent",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@attrs.frozen(kw_only=True)
class Timeout:
    """How long to wait, in seconds (``None`` waits forever).

    Image work is slow: a generation can take minutes, so the default allows a long
    ``total`` while failing fast on an unreachable host.

    Attributes:
        connect: To open a connection: the TCP connect, a proxy's tunnel and the TLS
            handshake.
        read: Between two reads of the response (a stalled body fails after this).
        total: For the whole exchange, upload and download included, once a connection
            is free.
        pool: To wait for a free connection when ``max_connections`` are all busy
            (default 10 minutes: other calls' generations may take minutes). Not part
            of ``total``.

    Example:
        >>> Timeout(total=30.0)
        Timeout(connect=10.0, read=300.0, total=30.0, pool=600.0)
    """

    connect: float | None = 10.0
    read: float | None = 300.0
    total: float | None = 900.0
    pool: float | None = 600.0

    @classmethod
    def coerce(cls, value: float | Timeout | None, *, default: Timeout) -> Timeout:
        """A ``Timeout`` from a number of seconds (the total), a Timeout, or the default.

        A number bounds the exchange (``total``, and ``connect`` and ``read`` within it);
        the wait for a free connection keeps the default's ``pool``.
        """
        if value is None:
            return default
        if isinstance(value, Timeout):
            return value
        seconds = float(value)
        return cls(
            connect=min(seconds, default.connect) if default.connect is not None else seconds,
            read=min(seconds, default.read) if default.read is not None else seconds,
            total=seconds,
            pool=default.pool,
        )


DEFAULT_TIMEOUT = Timeout()


def _redacted(key: str | None) -> str:
    if not key:
        return "None"
    return f"'{key[:3]}...{key[-2:]}'" if len(key) > 12 else "'***'"


@attrs.frozen(kw_only=True)
class Settings:
    """Resolved settings of one client. The key never appears in a repr."""

    api_key: str | None = attrs.field(repr=_redacted)
    base_url: str
    organization: str | None = None
    project: str | None = None
    timeout: Timeout = DEFAULT_TIMEOUT
    max_retries: int = 2
    default_headers: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_arguments(
        cls,
        *,
        api_key: str | None,
        base_url: str | None,
        organization: str | None,
        project: str | None,
        timeout: float | Timeout | None,
        max_retries: int,
        default_headers: Mapping[str, str] | None,
        environ: Mapping[str, str] = os.environ,
    ) -> Settings:
        """Fill unset settings from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
        ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID``."""
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {max_retries}")
        return cls(
            api_key=api_key if api_key is not None else environ.get("OPENAI_API_KEY") or None,
            base_url=(base_url or environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            organization=organization or environ.get("OPENAI_ORG_ID") or None,
            project=project or environ.get("OPENAI_PROJECT_ID") or None,
            timeout=Timeout.coerce(timeout, default=DEFAULT_TIMEOUT),
            max_retries=max_retries,
            default_headers=dict(default_headers or {}),
        )


@attrs.frozen(kw_only=True)
class ClientCertificate:
    """A client certificate for mutual TLS (a gateway that asks who is calling).

    Attributes:
        cert_file: The certificate in PEM, possibly followed by its chain (and the key).
        key_file: The private key in PEM, when not in ``cert_file``.
        password: The key's password, when it is encrypted. Never shown in a repr.

    Example:
        >>> ClientCertificate(cert_file="client.pem", key_file="client.key", password="pw")
        ClientCertificate(cert_file='client.pem', key_file='client.key', password='***')
    """

    cert_file: str | os.PathLike[str]
    key_file: str | os.PathLike[str] | None = None
    password: str | None = attrs.field(
        default=None, repr=lambda value: "None" if value is None else "'***'"
    )


Verify = bool | str | os.PathLike[str] | ssl.SSLContext
"""How to check the server's certificate: the system's CAs (``True``), a CA bundle file,
a ready ``ssl.SSLContext``, or not at all (``False``)."""


def tls_setting(
    *, verify: Verify = True, client_cert: ClientCertificate | None = None
) -> ssl.SSLContext | bool:
    """What the transport's connections use for TLS: ``True`` for the default context.

    A CA bundle or a client certificate is loaded now, so a wrong path fails when the
    client is made rather than at the first request. ``verify=False`` warns.

    Example:
        >>> tls_setting()
        True
        >>> tls_setting(verify="/nonexistent/ca.pem")
        Traceback (most recent call last):
        ...
        FileNotFoundError: [Errno 2] No such file or directory
    """
    if isinstance(verify, ssl.SSLContext):
        if client_cert is not None:
            raise ValueError(
                "pass the client certificate in your SSLContext (load_cert_chain), "
                "or pass verify=<CA bundle path> with client_cert="
            )
        return verify
    if verify is False:
        warnings.warn(
            "TLS certificate verification is OFF (verify=False): anyone on the network "
            "path can read and change these requests, and take the API key. Pass "
            "verify='/path/to/ca.pem' to trust a private CA instead.",
            UserWarning,
            stacklevel=3,
        )
        if client_cert is None:
            return False
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify is True:
        if client_cert is None:
            return True
        context = ssl.create_default_context()
    else:
        context = ssl.create_default_context(cafile=os.fspath(verify))
    if client_cert is not None:
        context.load_cert_chain(
            os.fspath(client_cert.cert_file),
            os.fspath(client_cert.key_file) if client_cert.key_file is not None else None,
            client_cert.password,
        )
    return context


def user_agent(http_library: str) -> str:
    """The ``User-Agent`` naming this library, Python and the HTTP library with versions."""
    return f"openai-images/{__version__} Python/{platform.python_version()} {http_library}"


def custom_headers(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The headers in ``OPENAI_CUSTOM_HEADERS`` (``Name: value`` lines), as the official SDK
    reads them; headers given to the client win over these.

    Example:
        >>> custom_headers({"OPENAI_CUSTOM_HEADERS": "X-Team: images\\nX-Env: test"})
        {'X-Team': 'images', 'X-Env': 'test'}
    """
    found: dict[str, str] = {}
    for line in environ.get("OPENAI_CUSTOM_HEADERS", "").splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip():
            found[name.strip()] = value.strip()
    return found
