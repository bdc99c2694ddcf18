"""Who may do what through the API: three roles, each allowed everything the one below it may do."""

import hashlib
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    """Reads: anomalies, scores, models, the live stream, the chatbot and the dashboard's data."""
    OPERATOR = "operator"
    """A viewer who may also act on what they see, such as acknowledging an incident."""
    ADMIN = "admin"
    """An operator who may also change what is stored or served: ingest, training, model promotion."""

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is configured and looked up.

    A fast hash is enough here, unlike for passwords: keys are random tokens of 256 bits (see
    `plantwatch api-key`), so a leaked digest cannot be reversed by guessing, and a lookup per request stays
    cheap.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


KEY_NAME_PREFIX_CHARS = 12


def default_key_name(digest: str) -> str:
    """The name a key without a configured name acts under: `key-` and the start of its digest, which
    tells keys apart in an audit log without letting anyone rebuild the key."""
    return f"key-{digest[:KEY_NAME_PREFIX_CHARS]}"
