"""Key material for the privacy layer, built from configuration and never from the repository.

Each key has a *purpose* and a *key id* (kid). The purposes are kept apart so that one key never serves
two roles:

- ``person_key`` — the MAC key that turns a canonical identity into a ``person_key``. Exactly one key.
  Changing it changes every ``person_key`` in the warehouse and the vault, so it is never rotated as
  routine (see docs/privacy.md, "Re-keying person_key").
- ``vault`` — the AES-256-GCM keyring of the identifier vault. Rotatable: the active key encrypts new
  values, every key in the ring decrypts.
- ``dept:<name>`` — one MAC key per department for its ``person_ref`` pseudonyms. Exactly one key each.

A keyring is written as compact text, in a secret (``{env: NAME}`` or ``{file: PATH}``)::

    k2026b:3q2+7w...=,k2026a:q83v...=      # the first entry is active
    k2026a:q83v...=,*k2026b:3q2+7w...=     # or mark the active one with '*'

Entries are separated by commas or white space; a key is 32 bytes in standard or URL-safe base64.
Errors name the purpose, the kid and the configuration reference — never the key material.

Example::

    keys = load_keys(settings.keys, departments=["grid_centre", "civil_affairs"])
    keys.vault.active.kid             # 'k2026b'
    keys.department("grid_centre")    # Key(purpose='dept:grid_centre', kid='g1')
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from islandbridge.config import Secret
from islandbridge.errors import ConfigError, count
from islandbridge.privacy.masking import mask_typed

PERSON_KEY = "person_key"
VAULT = "vault"
DEPT_PREFIX = "dept:"
KEY_BYTES = 32

_KID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$")
_SEPARATORS = re.compile(r"[,\s]+")


def keyring_entries(text: str) -> list[str]:
    """The entries of keyring text as written (``kid:base64``, a ``*`` marking the active one), split as
    `KeyRing.parse` reads them: at commas and white space, a file of one key per line included.

    >>> keyring_entries("*k2:AAA=,\\n k1:BBB=")
    ['*k2:AAA=', 'k1:BBB=']
    """
    return [e for e in _SEPARATORS.split(text.strip()) if e]


def is_kid(text: str) -> bool:
    """Whether ``text`` has the form of a key id."""
    return bool(_KID.match(text))


class KeyringError(ConfigError):
    """A key is missing or malformed in the configuration; fix the secret it names and run again."""


class UnknownKeyIdError(KeyringError):
    """Data was written under a key id that the configured keyring does not hold."""

    def __init__(self, purpose: str, kid: str, known: Sequence[str]) -> None:
        self.purpose, self.kid = purpose, kid
        held = ", ".join(repr(k) for k in known) or "(none)"
        super().__init__(
            f"key id {kid!r} (purpose {purpose!r}) is not in the configured keyring, which holds {held}; "
            f"add the key for {kid!r} back to the {purpose!r} keyring (it is still in use)"
        )


def dept_purpose(department: str) -> str:
    """The purpose name, and configuration key, of a department's pseudonym key: ``dept:<name>``."""
    return f"{DEPT_PREFIX}{department}"


@dataclass(frozen=True, repr=False)
class Key:
    """One key: its purpose, its id and 32 bytes of material (never printed)."""

    purpose: str
    kid: str
    material: bytes = field(compare=False)

    def __post_init__(self) -> None:
        _check_key(self.kid, self.material, f"purpose {self.purpose!r}, key id {self.kid!r}")

    def __repr__(self) -> str:
        return f"Key(purpose={self.purpose!r}, kid={self.kid!r})"

    __str__ = __repr__


class KeyRing:
    """The keys of one purpose: the active one encrypts, all of them decrypt.

    >>> ring = KeyRing.parse(new_keyring_text(kid="k1"), VAULT)
    >>> ring.active.kid
    'k1'
    """

    def __init__(self, purpose: str, keys: Sequence[Key], active_kid: str) -> None:
        if not keys:
            raise KeyringError(f"purpose {purpose!r}: the keyring holds no key")
        self.purpose = purpose
        self._keys = {k.kid: k for k in keys}
        if len(self._keys) != len(keys):
            raise KeyringError(f"purpose {purpose!r}: a key id appears twice in the keyring")
        if active_kid not in self._keys:
            raise UnknownKeyIdError(purpose, active_kid, self.kids)
        self.active = self._keys[active_kid]

    @classmethod
    def parse(cls, text: str, purpose: str, *, reference: str = "keyring") -> KeyRing:
        """Read ``kid:base64[,kid:base64...]``; the first or the ``*``-marked entry is active.

        Raises ``KeyringError`` naming the entry number and kid (never the material).
        """
        entries = keyring_entries(text)
        where = f"{reference} (purpose {purpose!r})"
        if not entries:
            raise KeyringError(f"{where}: empty; expected 'kid:base64key[,kid:base64key...]'")
        keys, marked = [], []
        for n, entry in enumerate(entries, 1):
            kid, sep, b64 = entry.partition(":")
            if not sep:
                raise KeyringError(f"{where}: entry {n} has no 'kid:' prefix; expected 'kid:base64key'")
            if kid.startswith("*"):
                kid = kid[1:]
                marked.append(kid)
            at = f"{where}, entry {n} (key id {kid!r})"
            material = _decode(b64, at)
            _check_key(kid, material, at)
            keys.append(Key(purpose, kid, material))
        if len(marked) > 1:
            raise KeyringError(f"{where}: more than one key is marked active with '*': {marked}")
        return cls(purpose, keys, marked[0] if marked else keys[0].kid)

    @classmethod
    def from_secret(cls, secret: Secret, purpose: str) -> KeyRing:
        """Parse a configured ``Secret``; errors name its reference (``env:NAME``), not its value."""
        return cls.parse(secret.reveal(), purpose, reference=secret.reference)

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def key(self, kid: str) -> Key:
        """The key with this id; ``UnknownKeyIdError`` (naming kid and purpose) when absent."""
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKeyIdError(self.purpose, kid, self.kids) from None

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def merged(self, newer: KeyRing) -> KeyRing:
        """This ring's keys plus ``newer``'s, with ``newer``'s active key active (used during rotation)."""
        if newer.purpose != self.purpose:
            raise KeyringError(f"cannot merge a {newer.purpose!r} keyring into a {self.purpose!r} keyring")
        for kid in set(self.kids) & set(newer.kids):
            if self._keys[kid].material != newer.key(kid).material:
                raise KeyringError(f"purpose {self.purpose!r}: key id {kid!r} has two different keys")
        keys = {**self._keys, **newer._keys}
        return KeyRing(self.purpose, list(keys.values()), newer.active.kid)

    def single(self) -> Key:
        """The only key of a MAC purpose; refuses a ring of several (a MAC key is not rotated in place)."""
        if len(self._keys) != 1:
            raise KeyringError(
                f"purpose {self.purpose!r} must hold exactly one key, found {len(self._keys)} "
                f"(key ids {', '.join(self.kids)}); changing it re-keys every pseudonym — see docs/privacy.md"
            )
        return self.active

    def __repr__(self) -> str:
        kids = ", ".join(("*" if k == self.active.kid else "") + k for k in self.kids)
        return f"KeyRing(purpose={self.purpose!r}, kids=[{kids}])"

    __str__ = __repr__


@dataclass(frozen=True)
class Keys:
    """Every key the privacy layer uses, resolved once at the edge and passed in."""

    person_key: Key
    vault: KeyRing
    departments: Mapping[str, Key]

    def department(self, name: str) -> Key:
        try:
            return self.departments[name]
        except KeyError:
            known = ", ".join(sorted(self.departments)) or "(none)"
            raise KeyringError(
                f"no pseudonym key for department {name!r} (configuration key {dept_purpose(name)!r}); "
                f"configured departments: {known}"
            ) from None


def load_keys(
    secrets_: Mapping[str, Secret],
    departments: Iterable[str] = (),
    unresolved: Mapping[str, str] | None = None,
) -> Keys:
    """Build ``Keys`` from ``Settings.keys``; every missing or malformed key is reported at once.

    Expected configuration names: ``person_key``, ``vault`` and ``dept:<name>`` for each department.
    ``unresolved`` (``Settings.unresolved_keys``) says why a configured key has no value (a missing file).
    Raises ``KeyringError`` listing each problem.
    """
    problems: list[str] = []
    unresolved = unresolved or {}

    def ring(name: str) -> KeyRing | None:
        if name in unresolved and name not in secrets_:
            problems.append(unresolved[name])
            return None
        if name not in secrets_:
            near = difflib.get_close_matches(name, [*secrets_, *unresolved], n=1)
            hint = f" (the section has `{near[0]}`: misspelt?)" if near else ""
            problems.append(
                f"keys.{name}: not configured; add '{name}: {{env: NAME}}' to the keys section{hint}"
            )
            return None
        try:
            return KeyRing.from_secret(secrets_[name], name)
        except KeyringError as exc:
            problems.append(str(exc))
            return None

    def single(name: str) -> Key | None:
        found = ring(name)
        try:
            return found.single() if found else None
        except KeyringError as exc:
            problems.append(str(exc))
            return None

    person = single(PERSON_KEY)
    vault = ring(VAULT)
    depts = {d: single(dept_purpose(d)) for d in departments}
    if problems:
        raise KeyringError(f"{count(len(problems), 'key problem')}:\n  - " + "\n  - ".join(problems))
    assert person is not None and vault is not None
    return Keys(person, vault, {d: k for d, k in depts.items() if k is not None})


def generate_key() -> bytes:
    """32 bytes from the operating system's CSPRNG, suitable for any purpose here."""
    return secrets.token_bytes(KEY_BYTES)


def new_keyring_text(existing: str | None = None, *, kid: str | None = None) -> str:
    """Keyring text with a fresh key first (active), followed by ``existing``'s entries, if any.

    For operators: the result holds key material — write it only to the secret store, never to a log
    or the repository. ``kid`` defaults to ``k`` + 8 random hex digits.

    >>> text = new_keyring_text(kid="k1")
    >>> KeyRing.parse(new_keyring_text(text, kid="k2"), VAULT).kids
    ('k2', 'k1')
    """
    kid = kid or f"k{secrets.token_hex(4)}"
    _check_key(kid, bytes(KEY_BYTES), f"key id {mask_typed(kid)!r}")  # typed: `keys add --kid`
    entry = f"{kid}:{base64.b64encode(generate_key()).decode('ascii')}"
    if not existing:
        return entry
    old = KeyRing.parse(existing, "existing")
    if kid in old:
        raise KeyringError(f"key id {kid!r} is already in the keyring; choose another")
    rest = [e.lstrip("*") for e in keyring_entries(existing)]
    return ",".join([entry, *rest])


def _check_key(kid: str, material: bytes, where: str) -> None:
    if not _KID.match(kid):
        raise KeyringError(f"{where}: a key id must match {_KID.pattern}")
    if len(material) != KEY_BYTES:
        raise KeyringError(
            f"{where}: a key must be {KEY_BYTES} bytes, got {len(material)}; make one with new_keyring_text()"
        )


def _decode(text: str, where: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded.encode("ascii"))
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise KeyringError(f"{where}: the key is not valid base64") from None
