"""Normalisers for the fields that link a person across the four source systems.

Each normaliser is pure, total (garbage gives a status and a reason, never an exception), idempotent
on its canonical output, and never puts the value itself into a reason, because reasons go to logs.

- `normalize_id`: ID-card numbers (full, masked, legacy 15-digit, Excel-damaged, passports...)
- `normalize_phones`: phone fields with one or more numbers, to E.164
- `normalize_name`: names to a simplified ``name_key`` and a tone-less ``pinyin_key``
- `parse_address`, `normalize_house`, `house_key`: addresses to estate / building / unit / room
- `normalize_table`: all of the above over an Arrow table, one call per distinct value
- `fold`, `drop_blanks`, `is_placeholder`: the text folding every normaliser starts with (full-width to
  half-width, traditional to simplified, blanks), for display code that must agree with them

See docs/normalisation.md for every quirk handled and the limits. May import only
`islandbridge.config`, `islandbridge.errors` and `islandbridge.perf`: these are the bottom of the house.
"""

from islandbridge.transforms.normalize._text import drop_blanks, fold, is_placeholder
from islandbridge.transforms.normalize.addresses import (
    AddressResult,
    EstateIndex,
    HouseParts,
    estate_key,
    house_key,
    normalize_house,
    parse_address,
)
from islandbridge.transforms.normalize.ids import IdResult, normalize_id
from islandbridge.transforms.normalize.names import NameResult, normalize_name
from islandbridge.transforms.normalize.phones import PhoneResult, normalize_phones
from islandbridge.transforms.normalize.table import NormalizeSpecError, normalize_table

__all__ = [
    "AddressResult",
    "EstateIndex",
    "HouseParts",
    "IdResult",
    "NameResult",
    "NormalizeSpecError",
    "PhoneResult",
    "drop_blanks",
    "estate_key",
    "fold",
    "is_placeholder",
    "house_key",
    "normalize_house",
    "normalize_id",
    "normalize_name",
    "normalize_phones",
    "normalize_table",
    "parse_address",
]
