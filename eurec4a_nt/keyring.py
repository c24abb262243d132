"""Site keys and the campaign keyring.

Each site signs its log with an Ed25519 key. The keyring (a YAML file) lists every
site's public key and URLs; a commit is accepted only if it verifies against it.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .entries import check_site
from .errors import BadCommit, BadInput, NotFound
from .schema import canonical
from .settings import KeyringFile, load

_PREFIX = "ed25519:"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class SiteKey:
    """A site's private signing key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> SiteKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SiteKey:
        """Load a key file written by :meth:`save`."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no site key at {path}: run 'eurec4a-nt init SITE' first") from None
        private = serialization.load_pem_private_key(data, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise BadInput(f"{path} does not hold an Ed25519 key")
        return cls(private)

    def save(self, path: Path) -> None:
        """Write the key with mode 0600, refusing to overwrite an existing key."""
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)

    @property
    def public_key(self) -> str:
        """The public key as ``ed25519:<base64>``."""
        raw = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return _PREFIX + _b64(raw)

    def sign(self, message: bytes) -> str:
        return _b64(self._private.sign(message))

    def signed(self, body: dict[str, Any]) -> bytes:
        """The canonical JSON of ``body`` with a ``signature`` over the canonical JSON
        of the rest (a commit, a checkpoint; see :meth:`Keyring.verify`)."""
        return canonical({**body, "signature": self.sign(canonical(body))})


def verify_signature(public_key: str, message: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) over ``message`` verifies with ``public_key``."""
    try:
        raw = base64.b64decode(public_key.removeprefix(_PREFIX), validate=True)
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(signature), message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@dataclass
class KeyringSite:
    """One site as the keyring knows it."""

    name: str
    public_key: str
    urls: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        """The lines to paste into a keyring's ``sites:`` mapping."""
        body = {self.name: {"public_key": self.public_key, "urls": self.urls}}
        text = yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
        return "".join("  " + line + "\n" for line in text.splitlines())


class Keyring:
    """The public keys of every site this one trusts."""

    def __init__(self, sites: dict[str, KeyringSite] | None = None) -> None:
        self.sites: dict[str, KeyringSite] = dict(sites or {})

    @classmethod
    def load(cls, path: Path, *, missing_ok: bool = True) -> Keyring:
        """Read a keyring file strictly; a missing file is an empty keyring with
        ``missing_ok``, else :class:`BadInput` (so is an unknown key or a bad value)."""
        body = load(path, KeyringFile, "keyring", missing_ok=missing_ok)
        keyring = cls()
        for name, spec in body.sites.items():
            keyring.add(KeyringSite(check_site(name), spec.public_key, list(spec.urls)))
        return keyring

    def save(self, path: Path) -> None:
        body = {"sites": {s.name: {"public_key": s.public_key, "urls": s.urls}
                          for s in sorted(self.sites.values(), key=lambda s: s.name)}}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(body, sort_keys=False))
        os.replace(tmp, path)

    def add(self, site: KeyringSite) -> None:
        """Add a site; raise :class:`BadInput` if it is listed with another key."""
        known = self.sites.get(site.name)
        if known and known.public_key != site.public_key:
            raise BadInput(
                f"site {site.name} is already in the keyring with another key; "
                "a site's key never changes during a campaign (remove the old line first)"
            )
        if known:
            known.urls = list(dict.fromkeys(known.urls + site.urls))
        else:
            self.sites[site.name] = site

    def site_at(self, url: str) -> str:
        """The one site whose ``urls`` list ``url`` (a trailing ``/`` aside), ``""`` if
        none or several do."""
        names = [s.name for s in self.sites.values() if url.rstrip("/") in (u.rstrip("/") for u in s.urls)]
        return names[0] if len(names) == 1 else ""

    def merge(self, other: Keyring) -> None:
        for site in other.sites.values():
            self.add(KeyringSite(site.name, site.public_key, list(site.urls)))

    def verify(self, body: dict[str, Any], site: str, seq: int) -> None:
        """Raise :class:`BadCommit` unless ``body`` (as made by :meth:`SiteKey.signed`)
        carries ``site``'s signature over the canonical JSON of the rest of it."""
        signature = body["signature"]
        message = canonical({k: v for k, v in body.items() if k != "signature"})
        known = self.sites.get(site)
        if known is None:
            raise BadCommit(f"commit {site}#{seq}: site {site} is not in the keyring "
                            "(add its line from 'eurec4a-nt init' to the campaign keyring)")
        if not verify_signature(known.public_key, message, signature):
            raise BadCommit(f"commit {site}#{seq}: its signature does not verify "
                            "(forged or altered on the way)")
