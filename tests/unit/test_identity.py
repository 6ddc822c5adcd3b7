from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commerce.domain.identity import (
    BuyerIdentity,
    InvalidName,
    InvalidResidentId,
    identity_hash,
    mask_name,
    mask_resident_id,
    resident_id_check_char,
    validate_resident_id,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
KNOWN_VALID = "11010519491231002X"  # the example printed in many references to GB 11643-1999
PEPPER = b"test-pepper-not-a-secret"


def expected_check_char(body: str) -> str:
    """Independent restatement of ISO 7064 MOD 11-2 as GB 11643-1999 prints it."""
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS, strict=True)) % 11]


def make_id(region: str = "110101", birth: str = "19900307", sequence: str = "123") -> str:
    body = region + birth + sequence
    return body + expected_check_char(body)


def test_known_example_is_valid() -> None:
    assert expected_check_char(KNOWN_VALID[:17]) == "X"
    assert validate_resident_id(KNOWN_VALID) == KNOWN_VALID


@pytest.mark.parametrize(
    "rid",
    [make_id(), make_id("440305", "20000229", "001"), make_id("650102", "19000101", "998")],
)
def test_constructed_ids_are_valid(rid: str) -> None:
    assert validate_resident_id(rid) == rid


def test_lowercase_x_and_spaces_are_normalised() -> None:
    assert validate_resident_id(" 110105 19491231 002x ") == KNOWN_VALID


def test_wrong_check_digit_is_rejected() -> None:
    with pytest.raises(InvalidResidentId) as caught:
        validate_resident_id("110105194912310021")
    assert caught.value.field == "identity.resident_id"
    assert caught.value.reason == "check digit does not match"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "11010519491231002",  # 17
        "11010519491231002X1",  # 19
        "1101051949123100XX",  # X not last
        "X1010519491231002X",
        "11010519491231002Y",
        "1101051949123100２X",  # full-width digit
        "11010519491231-02X",
    ],
)
def test_bad_shape_is_rejected(value: str) -> None:
    with pytest.raises(InvalidResidentId) as caught:
        validate_resident_id(value)
    assert caught.value.reason == "must be 18 characters: 17 digits then a digit or X"


@pytest.mark.parametrize("birth", ["19490230", "20230229", "19901301", "19900000", "00000000"])
def test_impossible_birth_date_is_rejected(birth: str) -> None:
    with pytest.raises(InvalidResidentId) as caught:
        validate_resident_id(make_id(birth=birth))
    assert caught.value.reason == "birth date is not a valid date"


def test_birth_before_1900_is_rejected() -> None:
    with pytest.raises(InvalidResidentId, match="before 1900"):
        validate_resident_id(make_id(birth="18991231"))


def test_birth_after_today_is_rejected_only_when_today_is_given() -> None:
    rid = make_id(birth="20300101")
    assert validate_resident_id(rid) == rid
    assert validate_resident_id(rid, today=datetime.date(2030, 1, 1)) == rid
    with pytest.raises(InvalidResidentId, match="future"):
        validate_resident_id(rid, today=datetime.date(2029, 12, 31))


def test_error_message_does_not_echo_the_id() -> None:
    with pytest.raises(InvalidResidentId) as caught:
        validate_resident_id("110105194912310021")
    assert "110105" not in str(caught.value)


def test_mask_resident_id() -> None:
    assert mask_resident_id(KNOWN_VALID) == "110105********002X"
    assert mask_resident_id("110101199003071234") == "110101********1234"
    assert mask_resident_id("11010119900307123x") == "110101********123X"


def test_mask_resident_id_refuses_non_id_shapes() -> None:
    with pytest.raises(InvalidResidentId):
        mask_resident_id("1234567890")


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("李", "李"),
        ("  王小明 ", "王**"),
        ("Zhang San", "Z**** ***"),
        ("阿依古丽·买买提", "阿*******"),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize("name", ["", "   ", "名" * 65])
def test_mask_name_rejects_empty_and_overlong(name: str) -> None:
    with pytest.raises(InvalidName) as caught:
        mask_name(name)
    assert caught.value.field == "identity.name"
    assert isinstance(caught.value, ValueError)


def test_mask_name_accepts_64_characters() -> None:
    assert mask_name("名" * 64) == "名" + "*" * 63


def test_identity_hash_is_a_peppered_hmac() -> None:
    digest = identity_hash(KNOWN_VALID, PEPPER)
    assert digest == hmac.new(PEPPER, KNOWN_VALID.encode(), hashlib.sha256).hexdigest()
    assert len(digest) == 64
    assert digest != hashlib.sha256(KNOWN_VALID.encode()).hexdigest()


def test_identity_hash_is_stable_across_spellings_and_depends_on_pepper() -> None:
    assert identity_hash(KNOWN_VALID, PEPPER) == identity_hash("110105 19491231 002x", PEPPER)
    assert identity_hash(KNOWN_VALID, PEPPER) != identity_hash(KNOWN_VALID, b"other-pepper")
    assert identity_hash(KNOWN_VALID, PEPPER) != identity_hash(make_id(), PEPPER)


def test_identity_hash_refuses_empty_pepper() -> None:
    with pytest.raises(ValueError, match="pepper"):
        identity_hash(KNOWN_VALID, b"")


def test_buyer_identity_from_clear_keeps_no_clear_values() -> None:
    buyer = BuyerIdentity.from_clear("欧阳娜娜", "110105 19491231 002x", PEPPER)
    assert buyer == BuyerIdentity(
        name_masked="欧***",
        resident_id_masked="110105********002X",
        identity_hash=identity_hash(KNOWN_VALID, PEPPER),
    )
    stored = " ".join(str(value) for value in dataclasses.astuple(buyer)) + repr(buyer)
    assert KNOWN_VALID not in stored
    assert "欧阳娜娜" not in stored
    with pytest.raises(dataclasses.FrozenInstanceError):
        buyer.name_masked = "x"  # type: ignore[misc]


def test_buyer_identity_from_clear_validates() -> None:
    with pytest.raises(InvalidResidentId):
        BuyerIdentity.from_clear("张三", "110105194912310021", PEPPER)
    with pytest.raises(InvalidName):
        BuyerIdentity.from_clear("", KNOWN_VALID, PEPPER)
    with pytest.raises(InvalidResidentId, match="future"):
        BuyerIdentity.from_clear(
            "张三", make_id(birth="20300101"), PEPPER, today=datetime.date(2026, 1, 1)
        )


bodies = st.builds(
    lambda region, birth, sequence: f"{region:06d}{birth:%Y%m%d}{sequence:03d}",
    st.integers(0, 999_999),
    st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(9999, 12, 31)),
    st.integers(0, 999),
)


@given(body=bodies, other=st.sampled_from("0123456789X"))
def test_only_the_computed_check_char_validates(body: str, other: str) -> None:
    check = expected_check_char(body)
    assert resident_id_check_char(body) == check
    assert validate_resident_id(body + check) == body + check
    if other != check:
        with pytest.raises(InvalidResidentId, match="check digit"):
            validate_resident_id(body + other)
