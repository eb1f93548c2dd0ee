"""Password policy: what a new password must not be. No web framework here.

There is no breached-password corpus on the machines this ships to, so the check is a rule set: a short list of
the passwords that top every published leak ranking, each also refused with digits or symbols around it
('Password123!'), plus shapes a guesser tries first: one character repeated, runs along the alphabet, the digits
or a keyboard row, and a password that contains the username.
"""

from __future__ import annotations

import re

MIN_LENGTH = 12

# The base words of the most common leaked passwords (lower case, digits and symbols around them stripped).
_COMMON_WORDS = frozenset({
    "password", "passw0rd", "p@ssword", "p@ssw0rd", "pass", "letmein", "welcome", "admin", "administrator",
    "qwerty", "qwertyuiop", "asdfgh", "asdfghjkl", "zxcvbnm", "iloveyou", "monkey", "dragon", "master", "login",
    "football", "baseball", "superman", "batman", "trustno", "sunshine", "princess", "shadow", "michael",
    "charlie", "jennifer", "jordan", "hunter", "freedom", "whatever", "starwars", "secret", "changeme",
    "default", "hello", "abc", "loancrm", "bank", "banking", "loan", "summer", "winter", "spring",
    "autumn", "test", "testing", "guest", "root", "user", "access", "mustang", "killer", "soccer", "hockey",
    "ranger", "buster", "thomas", "robert", "daniel", "computer", "internet", "samsung", "google", "apple",
    "china", "woaini", "nihao", "aini", "qazwsx", "zaq", "1qaz2wsx", "q1w2e3r4", "q1w2e3r4t5y6", "1q2w3e4r",
})
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890", "0987654321")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "01234567890"


def _is_run(text: str) -> bool:
    """The whole text is one stretch of a known sequence, forwards or backwards, wrapping around."""
    for line in (_ALPHABET, _DIGITS, *_KEYBOARD_ROWS):
        for source in (line, line[::-1]):
            doubled = source * (len(text) // len(source) + 2)
            if text in doubled:
                return True
    return False


def _repeats_a_short_unit(text: str) -> bool:
    """'aaaaaaaaaaaa', 'abababababab', 'abcabcabcabc': a unit of up to three characters said over and over."""
    return any(len(text) % n == 0 and text == text[:n] * (len(text) // n) for n in (1, 2, 3))


def password_problem(password: str, username: str) -> str | None:
    """Why this password is refused for this user, or None when it may be used."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    lowered = password.lower()
    if username and username.lower() in lowered:
        return "must not contain the username"
    if _repeats_a_short_unit(lowered) or _is_run(lowered):
        return "must not be a repeated character, a repeated pattern or a run like 'abcdef…' or '123456…'"
    core = re.sub(r"^[\d\W_]+|[\d\W_]+$", "", lowered)
    if core in _COMMON_WORDS or lowered in _COMMON_WORDS or (core and _is_run(core) and len(core) >= 4):
        return "is one of the most commonly used passwords"
    if len(set(lowered)) < 5:
        return "must use at least 5 different characters"
    return None
