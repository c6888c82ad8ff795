"""Known-answer tests: the software cryptography gives the published results (GB/T 32905, GB/T 32907,
GM/T 0042, RFC 8998), so a build that computes something else fails here, not in an assessment."""

from __future__ import annotations

import pytest

from ggzy.security.cipher import CipherError, Keyring, SoftwareCipher, open_sealed, seal
from ggzy.security.crypto import Aead, Digest, InvalidTag, aead_available


def test_sm3_gbt_32905_examples() -> None:
    assert Digest.SM3.hash_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert (
        Digest.SM3.hash_hex(b"abcd" * 16)
        == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


def test_hmac_sm3_gmt_0042_appendix_d3() -> None:
    key = bytes(range(1, 33))
    message = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" * 2
    assert (
        Digest.SM3.mac_hex(key, message) == "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a"
    )
    assert (
        Digest.SM3.mac_hex(bytes(range(1, 38)), b"\xcd" * 50)
        == "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae"
    )


def test_sm4_gbt_32907_example_1() -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert (encryptor.update(key) + encryptor.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"


RFC8998_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
RFC8998_NONCE = bytes.fromhex("00001234567800000000ABCD")
RFC8998_PLAIN = bytes.fromhex(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)
RFC8998_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
RFC8998_SEALED = bytes.fromhex(
    "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    "83DE3541E4C2B58177E065A9BF7B62EC"  # tag
)


def test_sm4_gcm_rfc_8998_appendix_a1() -> None:
    assert aead_available(Aead.SM4_GCM)
    sealed = Aead.SM4_GCM.encrypt(RFC8998_KEY, RFC8998_NONCE, RFC8998_PLAIN, RFC8998_AAD)
    assert sealed == RFC8998_SEALED
    assert Aead.SM4_GCM.decrypt(RFC8998_KEY, RFC8998_NONCE, sealed, RFC8998_AAD) == RFC8998_PLAIN
    flipped = bytearray(sealed)
    flipped[0] ^= 1
    with pytest.raises(InvalidTag):
        Aead.SM4_GCM.decrypt(RFC8998_KEY, RFC8998_NONCE, bytes(flipped), RFC8998_AAD)


def test_aes_256_gcm_nist_test_case_14() -> None:
    # McGrew & Viega GCM specification, test case 14: 256-bit zero key, zero nonce, one zero block.
    sealed = Aead.AES256_GCM.encrypt(bytes(32), bytes(12), bytes(16))
    assert sealed.hex() == "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919"


@pytest.mark.parametrize("algorithm", list(Aead))
def test_sealed_values_name_their_key_and_refuse_any_change(algorithm: Aead) -> None:
    old = SoftwareCipher(algorithm, bytes([1]) * algorithm.key_size)
    new = SoftwareCipher(algorithm, bytes([2]) * algorithm.key_size)
    sealed_old = seal(old, b"350102199001011234", b"context")
    ring = Keyring(new, retired=[old])
    assert ring.open(sealed_old, b"context") == b"350102199001011234"  # rotation keeps old data readable
    assert ring.open(ring.seal(b"x", b"c"), b"c") == b"x"
    with pytest.raises(CipherError):
        ring.open(sealed_old, b"another context")  # moved to another field or record
    with pytest.raises(CipherError):
        open_sealed(new, sealed_old, b"context")  # wrong key is named, not guessed
    with pytest.raises(CipherError):
        Keyring(new).open(sealed_old, b"context")
    tampered = bytearray(sealed_old)
    tampered[3] = Aead.AES256_GCM.code if algorithm is Aead.SM4_GCM else Aead.SM4_GCM.code
    with pytest.raises(CipherError):
        ring.open(bytes(tampered), b"context")  # the header is authenticated too
    assert seal(old, b"same", b"") != seal(old, b"same", b"")  # fresh nonce each time
