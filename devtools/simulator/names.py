"""Hand-written name tables and the ways people and clerks get names wrong.

No name library is used on purpose: the tables are small, stable across versions (so a seed always gives
the same street), and hold the kinds of names a Sichuan street really has: an older generation of 桂兰
and 建国, a younger one of 梓萱 and 浩然.
"""

from __future__ import annotations

import functools
import random

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤章"
)

# Given names by generation and sex: (born before 1960, 1960-1989, 1990 on) x (male, female).
GIVEN = {
    (
        "old",
        1,
    ): "建国 国庆 振华 德明 建华 建军 国华 志强 卫东 文 军 明 强 刚 勇 福 德荣 富贵 长林 永福 树林 宝山 光明 大伟".split(),
    (
        "old",
        2,
    ): "桂兰 秀英 淑珍 凤英 玉兰 秀兰 桂英 淑华 玉珍 秀珍 素芬 兰 英 珍 秀芳 春梅 海燕 永红 玉梅 翠花 淑芬 金凤".split(),
    (
        "mid",
        1,
    ): "伟 勇 军 杰 涛 斌 超 明 刚 平 辉 鹏 华 飞 鑫 波 磊 宇 浩 峰 强 志强 建华 海 林 彬 晓东 俊杰 小龙 文 炜".split(),
    (
        "mid",
        2,
    ): "芳 娟 敏 静 丽 艳 霞 燕 玲 萍 红 琳 娜 颖 婷 慧 洁 雪 小红 晓燕 丽娟 春梅 海燕 玉 秀 欣 莉 佳".split(),
    (
        "new",
        1,
    ): "浩然 宇轩 子轩 浩宇 思远 俊杰 一鸣 博文 天佑 梓豪 宇 浩 博 晨 阳 帆 睿 皓轩 子豪 明轩 泽宇".split(),
    (
        "new",
        2,
    ): "子涵 梓萱 欣怡 一诺 诗涵 雨桐 可馨 思彤 梦瑶 佳怡 瑶 琳 欣 悦 萱 彤 语嫣 雨欣 紫涵 若曦".split(),
}

# Foreign residents (registration type 境外): names as the police registration office transcribes them.
FOREIGN = {
    1: "金敏浩 朴俊英 李在勋 佐藤健 铃木一郎 约翰·史密斯 阮文雄 安德烈·彼得罗夫 穆罕默德·阿里".split(),
    2: "朴智贤 金秀妍 田中美咲 玛丽亚·加西亚 安娜·伊万诺娃 阮氏兰 艾米丽·琼斯 山本由美".split(),
}

# Uyghur residents write given name · father's name (阿卜杜拉·买买提): a name form every system must carry.
UYGHUR = {
    1: "阿卜杜拉·买买提 艾尔肯·吐尔逊 买买提·艾力 库尔班·热合曼 阿里木·依明".split(),
    2: "古丽·艾买提 阿依古丽·买买提 热依拉·吐尔逊 帕提古丽·阿不都 努尔古丽·艾山".split(),
}

ETHNICITIES = {"汉族": 90, "回族": 2, "藏族": 3, "彝族": 3, "维吾尔族": 1, "土家族": 1}

# Pinyin-input typos: characters a clerk types for one another because they share a reading.
HOMOPHONES = {
    "张": "章",
    "章": "张",
    "伟": "炜",
    "炜": "伟",
    "林": "琳",
    "琳": "林",
    "静": "婧",
    "杰": "洁",
    "萍": "平",
    "刚": "钢",
    "红": "虹",
    "华": "桦",
    "军": "君",
    "丽": "莉",
    "芳": "方",
    "燕": "艳",
    "艳": "燕",
    "涛": "韬",
    "娟": "鹃",
    "秀": "绣",
    "英": "瑛",
    "霞": "侠",
    "明": "铭",
    "辉": "晖",
    "鑫": "新",
    "浩": "昊",
    "宇": "羽",
    "帆": "凡",
    "博": "波",
    "彬": "斌",
    "颖": "影",
    "婷": "庭",
    "勇": "永",
    "峰": "锋",
    "鹏": "朋",
    "文": "雯",
    "兰": "蓝",
    "珍": "真",
    "王": "汪",
    "杨": "阳",
    "刘": "柳",
    "徐": "许",
    "许": "徐",
    "吴": "伍",
    "何": "贺",
    "贺": "何",
    "罗": "骆",
    "唐": "汤",
    "汤": "唐",
    "冯": "封",
    "于": "余",
    "余": "于",
    "肖": "萧",
    "程": "成",
    "袁": "元",
    "傅": "付",
    "蒋": "姜",
    "姜": "蒋",
    "梅": "玫",
    "敏": "闵",
    "玲": "铃",
    "欣": "昕",
    "晨": "辰",
    "彤": "桐",
}

ESTATE_NAMES = "锦江苑 蜀南花园 彭祖新城 滨江小区 岷江花园 凤鸣苑 观音安置小区 长寿坊 青龙嘉园 江口新居 天府花城 紫薇苑 翠湖湾 丽景华庭 南街老院".split()
ESTATE_PREFIXES = "武阳 牧马 谢家 公义 黄丰 保胜 东坡 寿星 莲花 桂花 金鼎 碧水 龙城 双江 平安 锦绣 望江 书香 和平 新华".split()
ESTATE_SUFFIXES = "苑 花园 新城 小区 家园 坊 嘉园 新居 花城 湾 华庭 雅居 名都 公馆 庭院".split()
COMMUNITY_NAMES = (
    "凤鸣 滨江 长寿 青龙 观音 武阳 牧马 江口 黄龙 公义 双江 彭祖 莲花 桂花 东坡 寿星 金鼎 碧水 龙城 平安 "
    "锦绣 望江 书香 和平 新华 岷山 蜀南 天府 紫薇 翠湖"
).split()
STREET_NAMES = "凤鸣街道 彭溪街道 观音街道 青龙街道 江口街道 锦江街道 岷江街道 谢家街道".split()


def generation(birth_year: int) -> str:
    return "old" if birth_year < 1960 else ("mid" if birth_year < 1990 else "new")


def person_name(rng: random.Random, sex: int, birth_year: int, surname: str | None = None) -> str:
    """A plausible name for someone of this sex and year of birth (``surname`` keeps a family's)."""
    surname = surname or rng.choice(SURNAMES)
    return surname + rng.choice(GIVEN[(generation(birth_year), sex)])


def foreign_name(rng: random.Random, sex: int) -> str:
    return rng.choice(FOREIGN[sex])


def uyghur_name(rng: random.Random, sex: int) -> str:
    return rng.choice(UYGHUR[sex])


def homophone_typo(name: str) -> str | None:
    """The name with its last replaceable character swapped for a homophone, or None if none is known.

    The last character is preferred because given names are where clerks' input methods go wrong most.
    """
    for i in range(len(name) - 1, -1, -1):
        if name[i] in HOMOPHONES:
            return name[:i] + HOMOPHONES[name[i]] + name[i + 1 :]
    return None


@functools.cache
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def traditional(name: str) -> str | None:
    """The name in traditional characters (``郑桂兰`` → ``鄭桂蘭``), or None when it reads the same."""
    converted = _s2t().convert(name)
    return converted if converted != name else None


def pad_two(name: str) -> str:
    """``陈佳`` → ``陈  佳``: two-character names padded to line up with three-character ones in Excel."""
    return f"{name[0]}  {name[1]}" if len(name) == 2 else name


def estate_names(count: int) -> list[str]:
    """``count`` distinct estate names, the familiar ones first."""
    names = list(ESTATE_NAMES)
    for prefix in ESTATE_PREFIXES + [p for p in COMMUNITY_NAMES if p not in ESTATE_PREFIXES]:
        for suffix in ESTATE_SUFFIXES:
            if len(names) >= count:
                return names[:count]
            if prefix + suffix not in names:
                names.append(prefix + suffix)
    return names[:count]


def community_name(index: int) -> str:
    base = COMMUNITY_NAMES[index % len(COMMUNITY_NAMES)]
    return f"{base}社区" if index < len(COMMUNITY_NAMES) else f"{base}{index // len(COMMUNITY_NAMES) + 1}社区"


def street_name(street_code: str) -> str:
    """凤鸣街道 for the sample's street code, a stable pick from the table for any other code."""
    return (
        STREET_NAMES[0] if street_code == "511403001" else STREET_NAMES[int(street_code) % len(STREET_NAMES)]
    )
