"""Hostile text shared by the sources' cases: Unicode tricks, injections, number and clock extremes.

Each entry is ``(id, text)``. None of it is personal data; all of it is what a careless vendor or an
attacker could put into a field. The sources' case tables apply them to their own fields.
"""

from __future__ import annotations

UNICODE_TRICKS: tuple[tuple[str, str], ...] = (
    ("bidi_override", "测试\u202eabc\u202c"),
    ("bidi_isolate", "\u2067测试\u2069"),
    ("zero_width_joiner", "测\u200d试"),
    ("zero_width_space", "测\u200b试"),
    ("inner_bom", "测\ufeff试"),
    ("soft_hyphen", "测\u00ad试"),
    ("cyrillic_homoglyph", "Аlice"),  # the A is U+0410
    ("traditional_form", "測試"),
    ("fullwidth_latin", "ＴＥＳＴ"),
    ("combining_marks", "测试\u0301\u0302\u0303"),
    ("nfd_latin", "Jose\u0301"),
    ("nfc_latin", "José"),
    ("emoji", "测试👵🏻"),
    ("emoji_zwj_family", "👨\u200d👩\u200d👧"),
    ("astral_cjk", "𠀀𪚥"),
    ("variation_selector", "测试\ufe0f"),
    ("ideographic_space", "测\u3000试"),
    ("nbsp", "测\u00a0试"),
    ("line_separator", "测\u2028试"),
    ("arabic_indic_digits", "٥١١٤٠٣"),
    ("very_long", "测" * 5000),
    ("private_use", "\ue000\uf8ff"),
)

INJECTIONS: tuple[tuple[str, str], ...] = (
    ("dde_cmd", "=cmd|' /C calc'!A0"),
    ("formula_plus", "+1+1"),
    ("formula_minus", "-2+3"),
    ("formula_at", "@SUM(1+1)"),
    ("formula_hyperlink", '=HYPERLINK("http://x.invalid","点我")'),
    ("sql_quote", "'; DROP TABLE t_jm; --"),
    ("sql_union", "1 UNION SELECT * FROM vault--"),
    ("html_script", "<script>alert(1)</script>"),
    ("path_traversal", "../../etc/passwd"),
    ("printf_format", "%s%n%x%d"),
    ("python_format", "{0.__class__.__mro__}"),
    ("jndi", "${jndi:ldap://x.invalid/a}"),
    ("json_breaker", '"},{"x":"'),
)
