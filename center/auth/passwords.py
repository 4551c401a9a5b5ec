"""Password hashing with argon2id (argon2-cffi, its RFC 9106 low-memory profile), and the
rules a new password must meet. A hash made with older parameters is upgraded at the next
successful login (`needs_rehash`)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; a megabyte "password" is an attack

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
# Verified against when the user does not exist, so both paths cost one argon2 run and
# the time taken does not tell which usernames exist.
_DUMMY = _hasher.hash("not-a-password-of-anyone")


class WeakPassword(ValueError):
    """A new password that does not meet the rules."""


def check_new(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password: expected at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password: expected at most {MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_new(password))


def rehash(password: str) -> str:
    """A fresh hash of a password that was just verified (rules are not re-applied)."""
    return _hasher.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
