"""PRC resident identity for cross-border (CBEC) orders.

Customs needs the buyer's real name and resident id to clear every CBEC parcel and to count the
buyer's annual allowance, so we must check the id at the door. We must not keep it, though: the
domain only ever holds a masked copy for display and a peppered hash to key the annual quota.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from dataclasses import dataclass

RESIDENT_ID_FIELD = "identity.resident_id"
NAME_FIELD = "identity.name"
NAME_MAX_LENGTH = 64

# GB 11643-1999 check digit (ISO 7064 MOD 11-2): weight i is 2**(17 - i) mod 11.
_CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
# ASCII only: str.isdigit() would also accept full-width and other script digits.
_RESIDENT_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)
_EARLIEST_BIRTH_YEAR = 1900


class InvalidResidentId(ValueError):
    """The resident id cannot be a real one; `reason` is safe to show (it never echoes the id)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.field = RESIDENT_ID_FIELD
        self.reason = reason


class InvalidName(ValueError):
    """The buyer's name cannot be used for customs clearance."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.field = NAME_FIELD
        self.reason = reason


def resident_id_check_char(body: str) -> str:
    """The 18th character for a 17-digit body; exposed so tests and fixtures build valid ids."""
    if len(body) != 17 or not body.isascii() or not body.isdigit():
        raise InvalidResidentId("body must be 17 digits")
    total = sum(int(char) * weight for char, weight in zip(body, _CHECK_WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def _normalise_shape(value: str) -> str:
    """Spaces and a lowercase x are how people type ids; they must not make two ids differ."""
    candidate = "".join(value.split()).upper()
    if not _RESIDENT_ID_SHAPE.fullmatch(candidate):
        raise InvalidResidentId("must be 18 characters: 17 digits then a digit or X")
    return candidate


def validate_resident_id(value: str, *, today: datetime.date | None = None) -> str:
    """Return the normalised id, or raise InvalidResidentId.

    The region code (first six digits) is deliberately not checked against a list: codes are
    retired and added over time and an id stays valid for life after its region is renamed.
    """
    candidate = _normalise_shape(value)
    birth = candidate[6:14]
    try:
        birth_date = datetime.date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
    except ValueError:
        raise InvalidResidentId("birth date is not a valid date") from None
    if birth_date.year < _EARLIEST_BIRTH_YEAR:
        raise InvalidResidentId("birth date is before 1900")
    if today is not None and birth_date > today:
        raise InvalidResidentId("birth date is in the future")
    if resident_id_check_char(candidate[:17]) != candidate[17]:
        raise InvalidResidentId("check digit does not match")
    return candidate


def mask_resident_id(rid: str) -> str:
    """Keep region and sequence tail so support staff can match a buyer's own reading of it.

    Only the shape is checked, not the check digit, but anything not id-shaped is refused: first
    six plus last four of a short string would leak all of it.
    """
    candidate = _normalise_shape(rid)
    return f"{candidate[:6]}{'*' * 8}{candidate[-4:]}"


def mask_name(name: str) -> str:
    """Keep the surname initial (what a courier or a buyer recognises) and hide the rest.

    Spaces survive so the masked form keeps the shape of multi-word names.
    """
    stripped = name.strip()
    if not stripped:
        raise InvalidName("must not be empty")
    if len(stripped) > NAME_MAX_LENGTH:
        raise InvalidName(f"must be at most {NAME_MAX_LENGTH} characters")
    rest = "".join(char if char.isspace() else "*" for char in stripped[1:])
    return stripped[0] + rest


def identity_hash(rid: str, pepper: bytes) -> str:
    """Key for "the same buyer" (annual quota, fraud checks) that never stores the id itself.

    A plain SHA-256 would be worthless: there are only about 10**11 plausible ids (a few thousand
    regions x ~45,000 birth dates x 1,000 sequence numbers, the check digit being derived), which
    a laptop enumerates in hours. Keying with a server-side pepper that never sits next to the
    hashes means a leaked table cannot be reversed without also stealing the pepper.
    """
    if not pepper:
        raise ValueError("pepper must not be empty")
    normalised = _normalise_shape(rid)
    return hmac.new(pepper, normalised.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class BuyerIdentity:
    """What we keep about a buyer's identity: enough to show and to count, never the clear id."""

    name_masked: str
    resident_id_masked: str
    identity_hash: str

    @classmethod
    def from_clear(
        cls,
        name: str,
        resident_id: str,
        pepper: bytes,
        today: datetime.date | None = None,
    ) -> BuyerIdentity:
        normalised = validate_resident_id(resident_id, today=today)
        return cls(
            name_masked=mask_name(name),
            resident_id_masked=mask_resident_id(normalised),
            identity_hash=identity_hash(normalised, pepper),
        )
