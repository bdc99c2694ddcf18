"""The opaque keyset cursor of anomaly and incident pages: where the last page ended, as (time, id)."""

import base64
import binascii
from datetime import datetime

from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.errors import InvalidInputError


def encode_cursor(anomaly: Anomaly) -> str:
    return encode_position(anomaly.window_end, anomaly.id)


def encode_position(at: datetime, item_id: str) -> str:
    """The cursor of an item sorted by (at, id): anomalies by window_end, incidents by start."""
    key = f"{at.isoformat()}|{item_id}"
    return base64.urlsafe_b64encode(key.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (window_end, id) a page ended on; the next page holds what sorts strictly after it (older)."""
    try:
        window_end_text, anomaly_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        window_end = datetime.fromisoformat(window_end_text)
        if window_end.tzinfo is not None or not anomaly_id:
            raise ValueError("encode_cursor writes a naive window_end and an id")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidInputError(
            f"cursor {cursor!r} is not one a previous page returned", field="cursor"
        ) from None
    return window_end, anomaly_id
