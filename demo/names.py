"""Word lists for the demo club and the text made from them: names, addresses, titles, blurbs.

Pure: the functions take the caller's numpy ``Generator`` and return arrays or lists.
(Past 400 lines because most of it is the word lists themselves.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# The most common Chinese surnames, roughly in order of frequency.
SURNAMES = (
    *"王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶",
    *"程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾",
    *"毛郝龚邵万钱严覃武戴莫孔向汤",
    *("欧阳", "司马", "上官", "诸葛"),
)

GIVEN_CHARS = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红鹏飞云辉建国志文斌宇浩然子轩梓涵"
    "欣怡雨婷晨曦思远嘉琪佳慧一诺俊熙博雅若彤宁海林峰晓梅春雪冰心亦凡可馨天佑泽楷诗琪书航"
)

LATIN_FIRST = _words(
    "James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William "
    "Susan Richard Margaret Thomas Sarah Daniel Emily Charles Anna George Laura Peter "
    "Helen Paul Alice Mark Claire Hannah Oliver Julia Simon Kate Martin Rachel Adam "
    "Nora Lucas"
)
LATIN_LAST = _words(
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Taylor Clark Lewis Walker "
    "Hall Young King Wright Green Baker Adams Nelson Hill Campbell Mitchell Roberts "
    "Carter Turner Parker Evans Collins Stewart Morris Murphy Cook Bell Bailey Cooper "
    "Ward Fox Hughes Price Bennett Wood Barnes Ross Fischer Moreau Rossi Tanaka"
)


@dataclass(frozen=True)
class City:
    province: str
    name: str
    postcode: str  # the city's first four digits
    weight: float
    districts: tuple[str, ...]


CITIES: tuple[City, ...] = (
    City("", "北京市", "1000", 10, ("朝阳区", "海淀区", "东城区", "西城区", "丰台区")),
    City("", "上海市", "2000", 10, ("浦东新区", "徐汇区", "静安区", "杨浦区", "闵行区")),
    City("广东省", "广州市", "5100", 8, ("天河区", "越秀区", "海珠区", "番禺区")),
    City("广东省", "深圳市", "5180", 7, ("南山区", "福田区", "罗湖区", "宝安区")),
    City("四川省", "成都市", "6100", 6, ("武侯区", "锦江区", "青羊区", "成华区")),
    City("湖北省", "武汉市", "4300", 6, ("武昌区", "洪山区", "江汉区", "汉阳区")),
    City("浙江省", "杭州市", "3100", 6, ("西湖区", "上城区", "拱墅区", "滨江区")),
    City("江苏省", "南京市", "2100", 5, ("鼓楼区", "玄武区", "秦淮区", "建邺区")),
    City("陕西省", "西安市", "7100", 5, ("雁塔区", "碑林区", "新城区", "未央区")),
    City("", "天津市", "3000", 4, ("和平区", "南开区", "河西区", "河北区")),
    City("", "重庆市", "4000", 5, ("渝中区", "江北区", "沙坪坝区", "南岸区")),
    City("湖南省", "长沙市", "4100", 4, ("岳麓区", "芙蓉区", "天心区", "开福区")),
    City("辽宁省", "沈阳市", "1100", 3, ("和平区", "沈河区", "皇姑区", "铁西区")),
    City("山东省", "济南市", "2500", 3, ("历下区", "市中区", "槐荫区", "天桥区")),
    City("山东省", "青岛市", "2660", 3, ("市南区", "市北区", "崂山区", "黄岛区")),
    City("河南省", "郑州市", "4500", 3, ("金水区", "二七区", "中原区", "管城区")),
    City("福建省", "厦门市", "3610", 2, ("思明区", "湖里区", "集美区")),
    City("云南省", "昆明市", "6500", 2, ("五华区", "盘龙区", "官渡区")),
    City("黑龙江省", "哈尔滨市", "1500", 2, ("南岗区", "道里区", "香坊区")),
    City("吉林省", "长春市", "1300", 2, ("朝阳区", "南关区", "绿园区")),
    City("安徽省", "合肥市", "2300", 2, ("蜀山区", "包河区", "庐阳区")),
    City("江西省", "南昌市", "3300", 2, ("东湖区", "西湖区", "青山湖区")),
    City("广西壮族自治区", "南宁市", "5300", 2, ("青秀区", "兴宁区", "西乡塘区")),
    City("甘肃省", "兰州市", "7300", 1, ("城关区", "七里河区", "安宁区")),
)

STREETS = (
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平路",
    "新华路",
    "长江路",
    "黄河路",
    "学院路",
    "文化路",
    "胜利路",
    "朝阳路",
    "光明街",
    "青年路",
    "育才路",
    "东风路",
    "北京路",
    "南京路",
)

# Publishers by top-level CLC class (code letter, "TP" for computing), Chinese then English.
PUBLISHERS_ZH: dict[str, tuple[str, ...]] = {
    "I": (
        "人民文学出版社",
        "上海译文出版社",
        "译林出版社",
        "作家出版社",
        "北京十月文艺出版社",
        "南海出版公司",
        "长江文艺出版社",
        "浙江文艺出版社",
    ),
    "K": (
        "中华书局",
        "生活·读书·新知三联书店",
        "社会科学文献出版社",
        "上海古籍出版社",
        "广西师范大学出版社",
    ),
    "B": ("商务印书馆", "北京大学出版社", "华东师范大学出版社", "中国人民大学出版社"),
    "J": ("人民美术出版社", "湖南美术出版社", "中国摄影出版社", "人民音乐出版社"),
    "H": ("外语教学与研究出版社", "商务印书馆", "上海外语教育出版社", "语文出版社"),
    "G": ("高等教育出版社", "北京师范大学出版社", "华东师范大学出版社", "教育科学出版社"),
    "F": ("中信出版社", "机械工业出版社", "中国人民大学出版社", "格致出版社"),
    "TP": ("机械工业出版社", "人民邮电出版社", "电子工业出版社", "清华大学出版社"),
    "R": ("人民卫生出版社", "中国中医药出版社", "科学出版社"),
    "*": ("中国友谊出版公司", "科学出版社", "北京联合出版公司", "新星出版社"),
}
PUBLISHERS_EN: dict[str, tuple[str, ...]] = {
    "I": ("Penguin Books", "Vintage", "Faber & Faber", "HarperCollins"),
    "K": ("Oxford University Press", "Cambridge University Press", "Yale University Press"),
    "TP": ("O'Reilly Media", "Addison-Wesley", "Manning", "No Starch Press"),
    "F": ("Harvard Business Review Press", "Wiley", "Portfolio"),
    "*": ("Oxford University Press", "Routledge", "Thames & Hudson", "Bloomsbury"),
}


@dataclass(frozen=True)
class Words:
    """Title vocabulary of one subject: ``patterns`` use {a} {n} {m} {p} slots."""

    patterns_zh: tuple[str, ...]
    adj_zh: tuple[str, ...]
    noun_zh: tuple[str, ...]
    patterns_en: tuple[str, ...]
    adj_en: tuple[str, ...]
    noun_en: tuple[str, ...]
    genre_zh: str
    genre_en: str


_PLACES_ZH = ("长安", "江南", "北平", "西湖", "边城", "山城", "海上", "塞北", "小镇", "故乡")

WORDS: dict[str, Words] = {
    "I": Words(
        ("{p}的{n}", "{a}{n}", "{n}与{m}", "{a}的{n}", "最后的{n}", "{p}{n}记"),
        ("寂静", "遥远", "温柔", "漫长", "燃烧", "沉默", "迟到", "明亮", "孤独", "流动"),
        (
            "河流",
            "月光",
            "少年",
            "雪",
            "夏天",
            "故事",
            "秘密",
            "灯塔",
            "岁月",
            "花园",
            "远方",
            "来信",
        ),
        ("The {a} {n}", "A {n} of {m}", "{n} and {m}", "The Last {n}", "Beyond the {n}"),
        ("Silent", "Distant", "Burning", "Quiet", "Long", "Hidden", "Golden", "Broken", "Winter"),
        ("River", "Garden", "Letter", "Summer", "Lighthouse", "Harbour", "Stranger", "Island"),
        "小说",
        "novel",
    ),
    "K": Words(
        ("{p}{n}", "{n}的兴衰", "{a}{n}", "{n}：{m}史", "大{n}时代"),
        ("丝绸之路上的", "失落的", "帝国的", "被遗忘的", "变革中的", "全球"),
        ("王朝", "帝国", "商路", "城市", "海洋", "边疆", "革命", "文明"),
        ("A History of the {n}", "The {a} {n}", "{n} and {m}", "The Rise and Fall of the {n}"),
        ("Forgotten", "Great", "Silk", "Lost", "Early Modern", "Global"),
        ("Empire", "Dynasty", "Ocean", "Frontier", "City", "Revolution", "Road"),
        "历史读物",
        "history",
    ),
    "B": Words(
        ("{n}十讲", "{a}{n}", "论{n}", "{n}与{m}", "{n}的意义"),
        ("日常的", "中国", "西方", "存在的", "幸福的", "自由的"),
        ("哲学", "伦理", "心灵", "自我", "思维", "美学", "逻辑", "宽容"),
        ("On {n}", "The {a} {n}", "{n} and {m}", "Thinking About {n}"),
        ("Examined", "Good", "Open", "Moral", "Free"),
        ("Mind", "Freedom", "Virtue", "Happiness", "Reason", "Meaning"),
        "思想读物",
        "philosophy",
    ),
    "J": Words(
        ("{a}{n}", "{n}入门", "{n}的故事", "{n}之美", "看{n}"),
        ("中国", "西方", "现代", "古典", "日常"),
        ("绘画", "书法", "摄影", "音乐", "电影", "设计", "色彩", "建筑"),
        ("The Story of {n}", "Ways of Seeing {n}", "The {a} {n}", "{n} in Colour"),
        ("Modern", "Classical", "Hidden", "Everyday"),
        ("Art", "Photography", "Music", "Film", "Design", "Painting"),
        "艺术图书",
        "art book",
    ),
    "H": Words(
        ("{n}{m}", "{a}{n}", "{n}一本通", "{n}速成"),
        ("实用", "地道", "高频", "图解", "零基础"),
        ("英语", "日语", "汉语", "词汇", "语法", "口语", "写作", "阅读"),
        ("{a} {n}", "{n} in Use", "The {n} Handbook"),
        ("Practical", "Essential", "Advanced", "Everyday"),
        ("English", "Grammar", "Vocabulary", "Writing", "Reading"),
        "语言学习书",
        "language guide",
    ),
    "G": Words(
        ("{a}{n}", "{n}的艺术", "给{p}的{n}", "{n}手册"),
        ("好的", "终身", "快乐", "高效", "自主"),
        ("教育", "学习", "阅读", "课堂", "思考", "成长"),
        ("The {a} {n}", "{n} for Life", "How {n} Works"),
        ("Good", "Lifelong", "Curious", "Effective"),
        ("Learning", "Teaching", "School", "Reading", "Mind"),
        "教育读物",
        "education",
    ),
    "F": Words(
        ("{a}{n}", "{n}的逻辑", "{n}与{m}", "看懂{n}"),
        ("增长的", "看不见的", "聪明的", "长期的", "全球"),
        ("经济", "金融", "市场", "货币", "企业", "投资", "贸易"),
        ("The {a} {n}", "{n} and {m}", "The Logic of {n}", "Understanding {n}"),
        ("Invisible", "Great", "Smart", "Long-Term", "Global"),
        ("Economy", "Markets", "Money", "Growth", "Trade", "Finance"),
        "经济读物",
        "economics",
    ),
    "TP": Words(
        ("{n}实战", "{a}{n}", "深入理解{n}", "{n}入门与实践", "{n}设计"),
        ("高性能", "分布式", "现代", "精通", "简明"),
        ("Python", "数据库", "机器学习", "算法", "操作系统", "网络", "编程", "Java"),
        ("{a} {n}", "Learning {n}", "{n} in Action", "Designing {n}", "The {n} Book"),
        ("Practical", "Modern", "High Performance", "Effective", "Programming"),
        ("Python", "Databases", "Algorithms", "Systems", "Networks", "Machine Learning"),
        "技术图书",
        "technical book",
    ),
    "R": Words(
        ("{a}{n}", "{n}指南", "{n}百问", "家庭{n}"),
        ("实用", "临床", "简明", "图解"),
        ("健康", "养生", "营养", "护理", "中医", "睡眠", "心理"),
        ("The {a} {n}", "{n}: A Guide", "Understanding {n}"),
        ("Practical", "Clinical", "Healthy"),
        ("Health", "Nutrition", "Sleep", "Medicine", "Care"),
        "健康读物",
        "health guide",
    ),
    "*": Words(
        ("{a}{n}", "{n}简史", "{n}的世界", "{n}与{m}"),
        ("有趣的", "新", "小", "大", "奇妙的"),
        ("科学", "自然", "城市", "生活", "宇宙", "技术"),
        ("The {a} {n}", "A Short History of {n}", "{n} and {m}"),
        ("Curious", "Wonderful", "New", "Small"),
        ("Science", "Nature", "Cities", "Life", "Universe"),
        "通识读物",
        "general book",
    ),
}
PLACES_ZH = _PLACES_ZH

BLURB_ZH = (
    "一部关于{t}的{g}，{x}。",
    "{x}：这本{g}带你走进{t}。",
    "本书以{t}为线索，{x}。",
)
BLURB_PRAISE_ZH = ("细腻动人", "通俗易懂", "资料翔实", "深入浅出", "广受读者好评", "值得反复阅读")
BLURB_EN = (
    "A {x} {g} about {t}.",
    "{t}, told in a {x} {g}.",
)
BLURB_PRAISE_EN = ("moving", "clear", "richly researched", "accessible", "widely praised")


def subject_key(code: str) -> str:
    """The word-list key of a category code: 'TP' for computing, else its letter."""
    if code.startswith("TP"):
        return "TP"
    return code[:1] if code[:1] in WORDS else "*"


@dataclass(frozen=True)
class CategorySpec:
    code: str
    weight: float  # share of titles and of interest
    price: tuple[float, float]  # list-price range in yuan
    english: float = 0.05  # share of English-language titles


# Level-2 CLC codes a general book club sells, weighted like its list.
CLUB_CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec("I2", 18, (25, 89), 0.0),
    CategorySpec("I3/7", 12, (29, 98), 0.25),
    CategorySpec("I1", 2, (32, 88)),
    CategorySpec("I0", 1, (28, 68)),
    CategorySpec("K2", 5, (38, 168)),
    CategorySpec("K1", 3, (42, 158), 0.2),
    CategorySpec("K81", 3, (36, 98)),
    CategorySpec("K5", 1, (45, 128), 0.2),
    CategorySpec("K9", 1, (39, 128)),
    CategorySpec("B2", 2, (32, 98)),
    CategorySpec("B84", 3, (32, 79), 0.1),
    CategorySpec("B5", 1, (36, 98), 0.15),
    CategorySpec("B82", 1, (32, 69)),
    CategorySpec("J2", 1.5, (58, 198)),
    CategorySpec("J29", 1, (28, 128)),
    CategorySpec("J4", 1, (68, 198), 0.15),
    CategorySpec("J6", 1, (36, 98)),
    CategorySpec("J9", 1, (39, 99), 0.1),
    CategorySpec("H3", 3, (19, 69), 0.3),
    CategorySpec("H1", 1.5, (15, 49)),
    CategorySpec("G4", 3, (15, 58)),
    CategorySpec("G8", 1, (22, 59)),
    CategorySpec("F0", 2, (39, 99), 0.15),
    CategorySpec("F2", 2, (39, 89)),
    CategorySpec("F8", 3, (42, 98), 0.15),
    CategorySpec("F7", 1, (38, 88)),
    CategorySpec("TP", 5, (49, 149), 0.3),
    CategorySpec("R2", 1, (22, 88)),
    CategorySpec("R4", 1, (48, 198)),
    CategorySpec("R1", 1.5, (22, 59)),
    CategorySpec("C93", 1.5, (35, 89), 0.15),
    CategorySpec("C91", 1, (35, 79)),
)


def isbn13(prefix: str, numbers: NDArray[np.int64]) -> list[str]:
    """ISBN-13s ``prefix`` + 8 digits of ``numbers`` + check digit."""
    digits = [prefix + f"{n:08d}" for n in numbers.tolist()]
    table = np.array([list(map(int, d)) for d in digits], dtype=np.int64).reshape(len(digits), 12)
    check = (10 - (table * np.tile([1, 3], 6)).sum(axis=1) % 10) % 10
    return [d + str(c) for d, c in zip(digits, check.tolist(), strict=True)]


def publisher(rng: np.random.Generator, subject: str, english: bool) -> str:
    table = PUBLISHERS_EN if english else PUBLISHERS_ZH
    options = table.get(subject, table["*"])
    return options[int(rng.integers(len(options)))]


# --- text from index arrays (pure: the caller passes the Generator) ---------------------------


def chinese_names(rng: np.random.Generator, n: int) -> NDArray[np.str_]:
    """``n`` Chinese personal names: a surname (Zipf-weighted) and one or two given characters."""
    weights = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8
    surname = np.asarray(SURNAMES)[rng.choice(len(SURNAMES), n, p=weights / weights.sum())]
    chars = np.asarray(GIVEN_CHARS)
    first = chars[rng.integers(0, len(chars), n)]
    second = np.where(rng.random(n) < 0.65, chars[rng.integers(0, len(chars), n)], "")
    return np.strings.add(np.strings.add(surname, first), second)


def latin_names(rng: np.random.Generator, n: int) -> NDArray[np.str_]:
    first = np.asarray(LATIN_FIRST)[rng.integers(0, len(LATIN_FIRST), n)]
    last = np.asarray(LATIN_LAST)[rng.integers(0, len(LATIN_LAST), n)]
    return np.strings.add(np.strings.add(first, " "), last)


def addresses(
    rng: np.random.Generator, city_idx: NDArray[np.intp]
) -> tuple[NDArray[np.str_], NDArray[np.str_], NDArray[np.str_]]:
    """(address, postcode, city) for members living in ``CITIES[city_idx]``."""
    n = len(city_idx)
    city = np.asarray([c.name for c in CITIES])[city_idx]
    province = np.asarray([c.province for c in CITIES])[city_idx]
    districts = [c.districts for c in CITIES]
    pick = rng.integers(0, 1 << 30, n)
    district = np.asarray(
        [districts[c][p % len(districts[c])] for c, p in zip(city_idx, pick, strict=True)]
    )
    street = np.asarray(STREETS)[rng.integers(0, len(STREETS), n)]
    number = rng.integers(1, 400, n).astype("U")
    building = rng.integers(1, 30, n).astype("U")
    room = (rng.integers(1, 30, n) * 100 + rng.integers(1, 8, n)).astype("U")
    parts = (province, city, district, street, number, "号", building, "栋", room, "室")
    address = parts[0]
    for part in parts[1:]:
        address = np.strings.add(address, part)
    postcode = np.strings.add(
        np.asarray([c.postcode for c in CITIES])[city_idx],
        np.strings.zfill(rng.integers(0, 100, n).astype("U"), 2),
    )
    return address, postcode, city


def _fill(rng: np.random.Generator, pattern: str, words: Words, zh: bool) -> str:
    adj, noun = (words.adj_zh, words.noun_zh) if zh else (words.adj_en, words.noun_en)
    i, j, k = rng.integers(0, 1 << 30, 3)
    second = noun[(j + 1 + k % (len(noun) - 1)) % len(noun)]
    return pattern.format(
        a=adj[i % len(adj)], n=noun[j % len(noun)], m=second, p=PLACES_ZH[k % len(PLACES_ZH)]
    )


def title_texts(
    rng: np.random.Generator, subjects: list[str], languages: NDArray[np.str_]
) -> tuple[list[str], list[str]]:
    """(title, blurb) for each title, from its subject's word list and its language."""
    titles: list[str] = []
    blurbs: list[str] = []
    for subject, language in zip(subjects, languages.tolist(), strict=True):
        words = WORDS[subject]
        zh = language == "zh"
        patterns = words.patterns_zh if zh else words.patterns_en
        title = _fill(rng, patterns[int(rng.integers(len(patterns)))], words, zh)
        theme = _fill(rng, "{a}{n}" if zh else "the {a} {n}".lower(), words, zh)
        if zh:
            template = BLURB_ZH[int(rng.integers(len(BLURB_ZH)))]
            praise = BLURB_PRAISE_ZH[int(rng.integers(len(BLURB_PRAISE_ZH)))]
            blurb = template.format(t=theme, g=words.genre_zh, x=praise)
        else:
            template = BLURB_EN[int(rng.integers(len(BLURB_EN)))]
            praise = BLURB_PRAISE_EN[int(rng.integers(len(BLURB_PRAISE_EN)))]
            blurb = template.format(t=theme, g=words.genre_en, x=praise)
            blurb = blurb[0].upper() + blurb[1:]
        titles.append(title)
        blurbs.append(blurb)
    return titles, blurbs
