"""An incident's reporter phone from its description: the number the text gives beside the reporter's name.

The grid platform's `GET /events` gives ``reporter_name``, ``reporter_phone`` and a ``description``, "free
text that may contain names and phone numbers" (the source-system spec). Workers type the caller's contact
into it, as the spec's own sample does (``楼道堆放杂物，联系人朱国华电话15196546205``, an incident whose
reporter is 朱国华 with that number). A number written right beside a name is that person's; when the name
is the reporter's, the number is the reporter's. So when ``reporter_phone`` gives no valid number, the
numbers the description writes beside the reporter's own name are the incident's phone for matching — as
if the platform had filled the field — and travel as ``reporter_phone`` does: normalised into the record's
``phones``, in memory, in the sealed kept records and in keyed fingerprints only (docs/identity.md).

What counts as "beside":

- the number is one the scrubber finds (`privacy.scrub.phone_spans`: never an ID number or a bank card);
- between the name and the number stand at most a phone label (``电话``, ``手机``, ``联系电话``,
  ``联系方式``…, after an optional comma or ``的``), then an optional ``号码``/``是``/``为``/colon and
  an opening bracket, and blanks: ``张三电话138…``, ``张三，电话：138…``, ``张三(138…)``, ``张三 138…``.
  A bare comma is not (``找张三，138…``: whose number follows is not said);
- the name, after the project's name normalisation (`normalize_name`: padding, full-width forms,
  traditional characters), is exactly the reporter's ``name_key`` — not its pinyin: a homophone in the
  text is another written name;
- the name starts the text or follows a word that introduces the caller (``联系人``, ``报告人``,
  ``反映人``, ``本人``, ``我是``…, then an optional colon and blank), or a character that, blanks
  skipped, is not part of a name (a Han character, ``·``, ``.``, ``-``) and not a list's separator
  (``、``, ``/``, ``&``, ``+``). A name character before it may end a longer name (``朱国华`` and
  ``朱 国华`` hold ``国华``, ``阿依古丽·买买提`` holds ``买买提``) or be a relation (``邻居 张三``); a
  separator makes it the last of a list (``李四、张三，电话…``), whose number is not said to be its own;
  so is a comma in a clause (since ``。``, ``；``, ``！``, ``？``, a line break) that introduces someone
  (``联系人：李四，张三，电话…``). The number is then not taken;
- the number is not followed, blanks skipped, by an opening bracket: a note there may say whose it is
  (``张三电话138…（其女儿）``).

Runs of blanks count as one blank and the connector is sought in the last 40 characters before the number,
so reading a text costs time linear in its length, whatever blanks it holds.

A number beside another name (``邻居李四电话…``) is someone else's and is never taken; nor is a second
number in the text when ``reporter_phone`` gives one (the platform's field is the reporter's line; a number
the text adds may be a relative's or the household's, and the rules that read an incident's phone treat
each number as its reporter's). Nothing here raises or logs: a text that cannot be read gives no number.

Example::

    contact_phones("漏水，联系人张三电话13800138000", "张三")   # '13800138000'
    contact_phones("邻居李四电话13800138000", "张三")           # None
"""

from __future__ import annotations

import re

import pyarrow as pa

from islandbridge.privacy.scrub import phone_spans
from islandbridge.transforms.normalize import normalize_name, normalize_phones

_BLANKS = re.compile(r"\s+")
_PHONE_LABEL = "(?:联系电话|联系方式|电话号码|手机号码|手机号|电话|手机)"
# What may stand between a name and its number; anchored at the number, so the longest such tail is cut.
# Searched in a text whose runs of blanks are one blank, over its last `_TAIL` characters only: each `\s?`
# then takes at most one character and the search costs the same whatever the text's length.
_BETWEEN = re.compile(rf"(?:\s?[,，]?\s?的?{_PHONE_LABEL})?\s?(?:号码)?\s?(?:是|为)?\s?[:：]?\s?[(（]?\s?\Z")
_TAIL = 40  # longer than any connector `_BETWEEN` matches, with a blank between each of its parts
# Words that introduce the person whose contact follows (the caller, the reporter, oneself).
_INTRODUCER = (
    "(?:联系人|报告人|报事人|反映人|来电人|求助人|报警人|申报人|投诉人|举报人|当事人|姓名|本人|我是|我叫)"
)
_INTRODUCED = re.compile(rf"{_INTRODUCER}\s?[:：]?\s?\Z")
_INTRODUCER_ANYWHERE = re.compile(_INTRODUCER)
# What a typed name is made of: Han characters, blanks (padding) and the separators of transliterated names.
_IN_NAME = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f〇\s.·•・‧∙⋅\-‐‑–—]")
_LONGEST = 40  # a name of 30 characters (`normalize_name`'s limit) with its padding
# Separators of a list of names: a number after the list is not said to be the last one's.
_LISTS = "、/／&＆+＋"
_CLAUSE_ENDS = "。！？；;!?\n"
_OPENING = "(（[［【〔〈《{｛"  # a note in brackets right after a number may say whose it is (``（其女儿）``)


def contact_phones(note: object, name: object) -> str | None:
    """The numbers ``note`` writes beside ``name`` (see the module docstring), joined by ``/`` as a phone
    field joins several, or None. ``name`` is compared after name normalisation."""
    key = normalize_name(name).name_key if isinstance(name, str) else None
    if key is None or not isinstance(note, str):
        return None
    found = [
        note[start:end]
        for start, end in phone_spans(note)
        if not note[end:].lstrip().startswith(tuple(_OPENING)) and _names(_collapsed(note[:start]), key)
    ]
    return "/".join(found) or None


def _collapsed(text: str) -> str:
    """``text`` with each run of blanks one blank (a line break if the run holds one)."""
    return _BLANKS.sub(lambda run: "\n" if "\n" in run.group() else " ", text)


def _names(before: str, key: str) -> bool:
    """Whether the text ``before`` a number (its blanks collapsed) ends with the name ``key`` and a connector
    (`_BETWEEN`), the name starting where a name may start (`_starts_a_name`)."""
    tail = before[-_TAIL:]
    head = before[: len(before) - len(tail) + _BETWEEN.search(tail).start()]
    for length in range(1, min(len(head), _LONGEST) + 1):
        if not _IN_NAME.match(head[-length]):
            return False  # no name reaches past a digit or a punctuation mark
        if length > 1 and normalize_name(head[-length:]).name_key == key:
            return _starts_a_name(head[:-length])
    return False


def _starts_a_name(rest: str) -> bool:
    """Whether a name may start after the text ``rest``: at the start of the text; right after an introducing
    word; or after a character that is neither part of a name (a Han character, ``·``, ``-``: ``朱国华``
    holds ``国华``, ``阿依古丽·买买提`` holds ``买买提``, ``邻居张三`` is a relation), blanks skipped, nor a
    list's separator (``李四、张三``, ``李四/张三``), nor a comma in a clause that introduces someone
    (``联系人：李四，张三``)."""
    if _INTRODUCED.search(rest[-_TAIL:]) is not None:
        return True
    stripped = rest.rstrip()
    if not stripped:
        return True
    last = stripped[-1]
    if (last.strip() and _IN_NAME.match(last)) or last in _LISTS:
        return False
    if last in ",，":
        clause = stripped[max(stripped.rfind(end) for end in _CLAUSE_ENDS) + 1 :]
        return _INTRODUCER_ANYWHERE.search(clause) is None
    return True


def with_contact_phones(table: pa.Table, phone: str, note: str, name: str) -> pa.Table:
    """``table`` with column ``phone`` filled from column ``note`` (`contact_phones` beside column ``name``)
    where it gives no valid number, and without ``note``. A ``phone`` that gives one is kept as it is."""
    if name not in table.column_names:
        return table.drop_columns([note])
    phones = table[phone].to_pylist() if phone in table.column_names else [None] * table.num_rows
    filled = [
        p if normalize_phones(p).numbers else (contact_phones(text, who) or p)
        for p, text, who in zip(phones, table[note].to_pylist(), table[name].to_pylist(), strict=True)
    ]
    table = table.drop_columns([note])
    column = pa.array(filled, pa.string())
    if phone in table.column_names:
        return table.set_column(table.column_names.index(phone), phone, column)
    return table.append_column(phone, column)
