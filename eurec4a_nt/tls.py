"""TLS: the context a site server listens with (``serve --tls-cert/--tls-key``) and the
one its links verify the servers they dial with (``serve --ca-file``)."""

from __future__ import annotations

import ssl
from pathlib import Path

from .errors import BadInput


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context of ``cert`` (PEM, with its chain) and ``key``.

    Raises :class:`BadInput` naming the files when they are missing, unreadable or do
    not belong together.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise BadInput(f"--tls-cert {cert} / --tls-key {key}: {exc.strerror or exc} "
                       "(give a PEM certificate chain and its private key)") from None
    return context


def client_context(ca_file: Path) -> ssl.SSLContext:
    """A TLS 1.2+ context that verifies servers against the CA certificates in ``ca_file``.

    Raises :class:`BadInput` naming the file when it is missing or holds no PEM certificate.
    """
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise BadInput(f"--ca-file {ca_file}: {getattr(exc, 'strerror', None) or exc} "
                       "(give the campaign's CA certificates as PEM)") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
