"""Update announcements (issue 13): the pure-Python Ed25519 verifier against RFC 8032's test
vectors (section 7.1) and against `cryptography`'s signatures."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ed25519 import verify

# (public key, message, signature) from RFC 8032, 7.1: TEST 1, 2, 3 and SHA(abc).
RFC_8032 = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e"
        "458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290"
        "ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a8"
        "36ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ec"
        "fdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]


@pytest.mark.parametrize(("key", "message", "signature"), RFC_8032)
def test_rfc_8032_vectors_verify(key: str, message: str, signature: str) -> None:
    assert verify(bytes.fromhex(key), bytes.fromhex(message), bytes.fromhex(signature))


@pytest.mark.parametrize(("key", "message", "signature"), RFC_8032)
def test_any_flipped_bit_is_refused(key: str, message: str, signature: str) -> None:
    k, m, s = bytes.fromhex(key), bytes.fromhex(message), bytes.fromhex(signature)
    for i in range(0, 64, 7):
        bad = bytearray(s)
        bad[i] ^= 0x01
        assert not verify(k, m, bytes(bad))
    for i in range(0, 32, 5):
        bad = bytearray(k)
        bad[i] ^= 0x04
        assert not verify(bytes(bad), m, s)
    assert not verify(k, m + b"x", s)


def test_malformed_inputs_are_refused_not_raised() -> None:
    key, message, signature = (bytes.fromhex(x) for x in RFC_8032[0])
    assert not verify(key[:31], message, signature)
    assert not verify(key, message, signature[:63])
    assert not verify(b"\xff" * 32, message, signature)  # y >= p: not a point
    # s >= L (a malleated signature: s + L) is refused, as RFC 8032 requires.
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little") + order
    assert not verify(key, message, signature[:32] + s.to_bytes(32, "little"))


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_agrees_with_cryptography(seed: bytes, message: bytes) -> None:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = private.sign(message)
    assert verify(public, message, signature)
    assert not verify(public, message + b"!", signature)
