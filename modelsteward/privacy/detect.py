"""The detectors: each yields ``(start, end, kind)`` spans of one kind of PII or secret in a text.

Maintained libraries do the judging where one exists:
- ``phonenumbers``' ``PhoneNumberMatcher`` (valid numbers in any country's format; national
  formats are tried for the regions in ``PHONE_REGIONS``), plus any ``+CC`` international shape;
- ``python-stdnum`` validates IBANs (``stdnum.iban``), card numbers (Luhn) and national ids
  (US SSN and the ids in ``NATIONAL_IDS``); only candidates that pass the checksum are counted,
  except the dashed US SSN shape (``123-45-6789``), which is redacted on sight;
- ``detect-secrets``' regex plugins (AWS, GitHub, GitLab, Slack, Stripe, SendGrid, Twilio, JWT,
  Basic-auth URLs ...) for provider keys and tokens, and its Shannon entropy for long random tokens.
Hand-written patterns remain only for shapes no library covers: e-mail addresses, IPv4/IPv6
(validated by ``ipaddress``), PEM private-key blocks, ``password=`` / ``pwd:`` style assignments
(several languages), ``Bearer`` tokens and the newer provider key formats (Anthropic ``sk-ant-``,
OpenAI ``sk-proj-``, Google ``AIza``, Hugging Face ``hf_``).
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Span", "DETECTORS", "PHONE_REGIONS", "NATIONAL_IDS", "PREFILTER", "might_contain"]

Span = tuple[int, int, str]

PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "JP", "CN", "AU", "MX", "RU", "KR", "PL")
# (stdnum module, compact length range): national ids with a check digit or a validated date.
NATIONAL_IDS = (
    "stdnum.br.cpf", "stdnum.in_.aadhaar", "stdnum.nl.bsn", "stdnum.fr.nir", "stdnum.es.dni", "stdnum.cn.ric",
    "stdnum.it.codicefiscale", "stdnum.pl.pesel", "stdnum.de.idnr", "stdnum.se.personnummer",
    "stdnum.no.fodselsnummer", "stdnum.ca.sin", "stdnum.kr.rrn", "stdnum.za.idnr", "stdnum.mx.curp",
    "stdnum.fi.hetu", "stdnum.be.nn", "stdnum.ch.ssn",
)

# A cheap test that a text *might* hold something: texts without a match skip every detector.
# Written in the subset RE2 (DuckDB) and Python read alike, so SQL can pre-select rows too.
# Keywords are whole words ("the frozen pass" or "a silver key" is not a reason to look closer).
_KEYWORDS = (r"\b(?:password|passwort|passwd|passphrase|passcode|pwd|pin|secret|token|api[_ -]?key|apikey|bearer"
             r"|authorization|private key|ssn|social security|senha|contrase|kennwort|mot de passe|wachtwoord"
             r"|hasło|haslo|lösenord|salasana)|пароль|密码|口令|パスワード|비밀번호")
PREFILTER = (
    "@|://|[0-9][0-9 ().+/-]{5,}[0-9]|[0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{1,4}"
    "|[A-Za-z0-9_+/=-]{16,}|[A-Za-z][0-9]|[0-9][A-Za-z]|[A-Za-z0-9][!#$%&*+=?^~][A-Za-z0-9]|(?i:" + _KEYWORDS + ")"
)
_PREFILTER = re.compile(PREFILTER)


def might_contain(text: str) -> bool:
    """False when ``text`` certainly holds nothing any detector looks for."""
    return bool(_PREFILTER.search(text))


# ---------------------------------------------------------------------------------------------- helpers
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=")


def _extend(text: str, end: int) -> int:
    """Grow a token span to the end of the token (dots only when a token character follows)."""
    n = len(text)
    while end < n:
        c = text[end]
        if c in _TOKEN_CHARS or (c == "." and end + 1 < n and text[end + 1] in _TOKEN_CHARS):
            end += 1
        else:
            break
    return end


def _regex(kind: str, pattern: str, flags: int = 0, group: int = 0) -> Callable[[str], Iterator[Span]]:
    rx = re.compile(pattern, flags)

    def find(text: str) -> Iterator[Span]:
        for m in rx.finditer(text):
            if m.group(group):
                yield m.start(group), m.end(group), kind

    return find


# ---------------------------------------------------------------------------------------------- secrets
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
                  r"|PuTTY-User-Key-File-\d.*?(?:Private-MAC: *\S+|\Z)", re.DOTALL)


def private_keys(text: str) -> Iterator[Span]:
    for m in _PEM.finditer(text):
        yield m.start(), m.end(), "PRIVATE_KEY"


@functools.lru_cache(maxsize=1)
def _secret_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """detect-secrets' regex plugins (minus the ones handled with spans of their own here)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    skip = {"IPPublicDetector", "PrivateKeyDetector"}
    out = []
    classes: list[Any] = list(get_mapping_from_secret_type_to_class().values())
    for cls in classes:
        if issubclass(cls, RegexBasedDetector) and cls.__name__ not in skip:
            kind = "JWT" if cls.__name__ == "JwtTokenDetector" else "API_KEY"
            kind = "PASSWORD" if cls.__name__ == "BasicAuthDetector" else kind
            out += [(kind, rx) for rx in cls().denylist]
    return out


_HAS_TOKEN = re.compile(r"[A-Za-z0-9_+/=.-]{16,}|://")


def detect_secrets_plugins(text: str) -> Iterator[Span]:
    if not _HAS_TOKEN.search(text):  # every plugin's secret is a long token or sits in a URL
        return
    for kind, rx in _secret_patterns():
        for m in rx.finditer(text):
            # The secret is the last capture group when it is one (not a 3-letter prefix like "ghp").
            g = m.lastindex or 0
            start, end = (m.start(g), m.end(g)) if g and m.end(g) - m.start(g) >= 6 else m.span()
            while start < end and text[start] in " \t\"'=:":
                start += 1
            while end > start and text[end - 1] in " \t\"'\n":
                end -= 1
            if end > start:
                yield start, (end if kind == "PASSWORD" else _extend(text, end)), kind


_PROVIDER_KEYS = re.compile(
    r"sk-ant-[A-Za-z0-9]{2,8}\d{0,2}-[A-Za-z0-9_-]{16,}|sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{16,}"
    r"|\b(?:sk|rk)-[A-Za-z0-9_-]{16,}|\bAIza[0-9A-Za-z_-]{30,}|\bhf_[A-Za-z0-9]{24,}|\b[spr]k_(?:live|test)_[0-9A-Za-z]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{30,}|\bxox[abprse]-[A-Za-z0-9-]{10,}"
    r"|\b(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}\b|\bglpat-[A-Za-z0-9_-]{20,}|\bnpm_[A-Za-z0-9]{30,}"
    r"|\bya29\.[0-9A-Za-z_-]{20,}|\bgsk_[A-Za-z0-9]{30,}|\bxai-[A-Za-z0-9]{30,}|\br8_[A-Za-z0-9]{30,}"
)


def provider_keys(text: str) -> Iterator[Span]:
    if not _HAS_TOKEN.search(text):
        return
    for m in _PROVIDER_KEYS.finditer(text):
        yield m.start(), _extend(text, m.end()), "API_KEY"


_PASSWORD_WORDS = (r"pass(?:word|wd|phrase|code)?|pwd|pin|senha|contrase(?:ñ|n)a|kennwort|passwort|mot de passe"
                   r"|wachtwoord|parola d'ordine|пароль|密码|口令|パスワード|비밀번호|hasło|haslo|lösenord|salasana")
_ASSIGN = re.compile(
    r"(?i)(?:\b|(?<=[_\s\"']))(" + _PASSWORD_WORDS + r")[\"']?(?:\s*(?:[:=]|=>|:=)\s*|\s+(?:is|es|ist|est|é|è|er|is:|=)\s+"
    r"|\s*(?:是|は|：)\s*|\s+(?=\S*\d))[\"'“]?([^\s\"'”,;]{3,})"
)
_KEY_ASSIGN = re.compile(
    r"(?i)\b((?:[a-z0-9]+[_-])*(?:api[_-]?key|apikey|secret(?:[_-]?(?:access[_-]?)?key)?|access[_-]?key|"
    r"(?:access|auth|refresh|bearer|id|session)[_-]?token|token|client[_-]?secret|private[_-]?key))[\"']?"
    r"(?:\s*(?:[:=]|=>|:=)\s*|\s+(?:is|es|ist|est)\s+)[\"']?([^\s\"',;]{8,})"
)
_BEARER = re.compile(r"(?i)\b(?:bearer|token|basic)\s+([A-Za-z0-9_\-.~+/]{16,}=*)")


def assignments(text: str) -> Iterator[Span]:
    for m in _ASSIGN.finditer(text):
        yield m.start(2), m.end(2), "PASSWORD"
    for m in _KEY_ASSIGN.finditer(text):
        yield m.start(2), m.end(2), "SECRET"
    for m in _BEARER.finditer(text):
        yield m.start(1), m.end(1), "SECRET"


_URL_CREDS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^\s:/?#@]+):([^\s@/]+)@")


def url_credentials(text: str) -> Iterator[Span]:
    for m in _URL_CREDS.finditer(text):
        yield m.start(2), m.end(2), "PASSWORD"


_LONG_TOKEN = re.compile(r"[A-Za-z0-9_+/=-]{24,}")


def high_entropy(text: str) -> Iterator[Span]:
    """Long random-looking tokens (letters and digits, Shannon entropy over detect-secrets' limit)."""
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    calc = Base64HighEntropyString().calculate_shannon_entropy
    for m in _LONG_TOKEN.finditer(text):
        tok = m.group()
        if any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok) and calc(tok) >= 3.6:
            yield m.start(), m.end(), "SECRET"


# A credential pasted on its own, with no keyword beside it ("my new one is Xk9#mP2$vL"): judged by
# its shape alone.  A token (no spaces, 8 to 64 characters, no '/', '\\' or ':' that would make
# it a path, an address or a model id) counts when it mixes all four classes (lower, upper, digit,
# symbol), or lower, upper and digits over 12+ characters switching between letters and digits at
# least three times.  Names built of words joined by '-', '_' or '.' (GPT-4o-mini, x86_64,
# COVID-19, Python-3.11) are not credentials.  Measured on bench/pii.py's corpus and prose.
_BARE = re.compile(r"(?<!\S)[\"'(\[]?([^\s\"'()\[\]<>/\\:]{8,64}?)[\"').,;!?\]]*(?!\S)")
_WORDY = re.compile(r"^[A-Za-z]+[0-9]*(?:[-_.][A-Za-z0-9]+)*$|^[0-9]+[A-Za-z]{0,3}(?:[-_.][A-Za-z0-9]+)*$")
_SYMBOLS = frozenset("!#$%&*+=?^~-_.,;|")
_ASSIGNED = re.compile(r"^(?:[A-Z_][A-Z0-9_]*|[a-z_][a-z0-9_]*)=")


def _switches(tok: str) -> int:
    kinds = ["d" if c.isdigit() else "a" if c.isalpha() else "s" for c in tok]
    return sum(1 for a, b in zip(kinds, kinds[1:]) if a != b and "s" not in (a, b))


def bare_credentials(text: str) -> Iterator[Span]:
    for m in _BARE.finditer(text):
        tok, start = m.group(1).rstrip(".,;!?"), m.start(1)
        if (a := _ASSIGNED.match(tok)) is not None:  # NAME=value: judge the value alone
            tok, start = tok[a.end():], start + a.end()
        if len(tok) < 8 or _WORDY.match(tok) or ("@" in tok and (tok[0] == "@" or "." in tok.rsplit("@", 1)[1])):
            continue  # a name, an @handle or an e-mail address (found by its own detector)
        lower, upper = any(c.islower() for c in tok), any(c.isupper() for c in tok)
        digit = any(c.isdigit() for c in tok)
        symbol = any(c in _SYMBOLS for c in tok) and not all(c.isalnum() or c in "-_." for c in tok[:-1])
        strong = lower and upper and digit and (any(c in _SYMBOLS for c in tok) or
                                                 (len(tok) >= 12 and _switches(tok) >= 3))
        if strong and (symbol or _switches(tok) >= 2):
            yield start, start + len(tok), "SECRET"


# ---------------------------------------------------------------------------------------------- PII
email = _regex("EMAIL", r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![\w:])"
                   r"|(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,6}(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")


def ip_addresses(text: str) -> Iterator[Span]:
    for rx in (_IPV4, _IPV6):
        for m in rx.finditer(text):
            raw = m.group().split("%")[0]
            try:
                ipaddress.ip_address(raw)
            except ValueError:
                continue
            if raw.count(":") >= 2 or "." in raw:
                yield m.start(), m.end(), "IP"


_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}\b")


def ibans(text: str) -> Iterator[Span]:
    from stdnum import iban

    for m in _IBAN.finditer(text):
        raw = m.group()
        # A greedy match may run into the next word: try shrinking at group boundaries.
        for end in range(len(raw), 14, -1):
            cand = raw[:end]
            if iban.is_valid(cand.upper()):
                yield m.start(), m.start() + end, "IBAN"
                break


_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")


def cards(text: str) -> Iterator[Span]:
    from stdnum import luhn

    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            yield m.start(), m.end(), "CARD"


_SSN_SHAPE = re.compile(r"(?<![\d-])\d{3}[- ]\d{2}[- ]\d{4}(?![\d-])")
_SSN_CONTEXT = re.compile(r"(?i)(?:ssn|social security(?: number| no\.?)?|sozialversicherungs\w*)\D{0,20}?(\d{9})\b")
_ID_CANDIDATE = re.compile(r"(?<![\w.-])[0-9A-Za-z](?:[0-9A-Za-z]|[ ./-](?=[0-9A-Za-z])){7,24}(?![\w-])")


@functools.lru_cache(maxsize=1)
def _id_modules() -> list[object]:
    return [importlib.import_module(name) for name in NATIONAL_IDS]


def us_ssns(text: str) -> Iterator[Span]:
    """The dashed shape on sight; nine bare digits after "SSN" / "social security" when valid."""
    from stdnum.us import ssn

    for m in _SSN_SHAPE.finditer(text):
        yield m.start(), m.end(), "SSN"
    for m in _SSN_CONTEXT.finditer(text):
        if ssn.is_valid(m.group(1)):
            yield m.start(1), m.end(1), "SSN"


def national_ids(text: str) -> Iterator[Span]:
    taken: list[tuple[int, int]] = []
    for m in _ID_CANDIDATE.finditer(text):
        if sum(c.isdigit() for c in m.group()) < 6:
            continue
        # Windows of whole space-separated parts, longest first ("DNI 54362315K" holds "54362315K").
        parts = [(p.start() + m.start(), p.end() + m.start()) for p in re.finditer(r"\S+", m.group())]
        # A window never splits a run of digit groups ("4111 1111 1111 1112" is one number, not "1111 1112").
        digit = [text[p0:p1].replace(".", "").replace("-", "").isdigit() for p0, p1 in parts]
        windows = sorted(((a, b) for a in range(len(parts)) for b in range(a, len(parts))
                          if not (a > 0 and digit[a] and digit[a - 1]) and not (b + 1 < len(parts) and digit[b] and digit[b + 1])),
                         key=lambda w: w[0] - w[1])
        for a, b in windows:
            start, end = parts[a][0], parts[b][1]
            raw = text[start:end]
            if sum(c.isdigit() for c in raw) < 6 or any(s < end and start < e for s, e in taken):
                continue
            if _valid_id(raw):
                taken.append((start, end))
                yield start, end, "NATIONAL_ID"


def _valid_id(raw: str) -> bool:
    for mod in _id_modules():
        try:
            if mod.is_valid(raw):  # type: ignore[attr-defined]
                return True
        except Exception:  # noqa: BLE001 - a validator that chokes on odd input means "not this id"
            continue
    return False


_INTL_PHONE = re.compile(r"(?<![\w+])\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d(?:[\s.-]?\d){5,13}(?!\d)")
_PHONE_CANDIDATE = re.compile(r"[+(]?\d[\d\s().\-/]{5,}\d")


def phones(text: str) -> Iterator[Span]:
    """``+CC`` shapes on sight; otherwise runs of digits that ``phonenumbers`` finds valid in some region.

    The matcher runs on each digit run alone (with a character of context on each side), not on the
    whole text: 16 regions over a long prompt cost milliseconds, over a short run microseconds.
    """
    for m in _INTL_PHONE.finditer(text):
        yield m.start(), m.end(), "PHONE"
    cands = [m for m in _PHONE_CANDIDATE.finditer(text) if sum(c.isdigit() for c in m.group()) >= 7]
    if not cands:
        return
    import phonenumbers

    for m in cands:
        lo, hi = max(0, m.start() - 1), min(len(text), m.end() + 1)
        window = text[lo:hi]
        for region in PHONE_REGIONS:
            found = [(pm.start, pm.end) for pm in
                     phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.VALID)]
            for start, end in found:
                yield lo + start, lo + end, "PHONE"
            if found:
                break


# Order = precedence when spans overlap (the merged span takes the first detector's kind).
DETECTORS: tuple[tuple[str, Callable[[str], Iterator[Span]]], ...] = (
    ("private_key", private_keys),
    ("url_credentials", url_credentials),
    ("provider_keys", provider_keys),
    ("detect_secrets", detect_secrets_plugins),
    ("assignments", assignments),
    ("email", email),
    ("iban", ibans),
    ("card", cards),
    ("ssn", us_ssns),
    ("phone", phones),
    ("national_id", national_ids),
    ("ip", ip_addresses),
    ("high_entropy", high_entropy),
    ("bare_credentials", bare_credentials),
)
