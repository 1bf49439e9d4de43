"""An incident reported away from home joins the street's one person of its reporter's name only when the
street's own records make that near-certain (`identity.reporters`).

Each test builds a small street: 300 residents, one flat each, named from 30 surnames and 100 given names
(each surname borne by 10 of them, each given name by 3), each of whom reported one incident at home;
some tests let the first of them report one more incident away from home.
Names here are pinyin only; every name is synthetic. No model link is given: what joins is the rules.
"""

from __future__ import annotations

import numpy as np

from islandbridge.identity.clusters import build_clusters, identity_evidence
from islandbridge.identity.deterministic import id_links
from islandbridge.identity.links import fingerprints, kept_links, links_table
from islandbridge.identity.profiles import home_mask
from islandbridge.identity.reporters import NameCounts, _seekers, outsider_share
from tests.identity.strategies import pairs, record, table
from tests.privacy.helpers import mac_key

REGISTRY = "resident_registry/t_jm:current"
ADULT_BY = "2010-11-20"  # a reporter is at least 16 on 2026-11-20
FAR = "XQ009|9|9|909"  # a flat where nobody of these names lives


def _name(surname: str, given: str) -> dict:
    return {"pinyin_key": surname + given, "surname_pinyin": surname, "given_pinyin": given}


def _street(extra_residents=(), outsiders: int = 0, away: int = 0) -> list[dict]:
    """The street above, ``extra_residents`` ((surname, given, birth) at flats of their own),
    ``outsiders`` incidents by people of names nobody on the street bears and ``away`` incidents of the
    first residents at a flat not theirs."""
    rows: list[dict] = []
    people = [(f"s{i % 30}", f"g{i % 100}", "1970-01-01") for i in range(300)] + list(extra_residents)
    for i, (surname, given, birth) in enumerate(people):
        flat = f"XQ001|{i // 100}|1|{i % 100 + 101}"
        rows.append(
            record(
                len(rows), **_name(surname, given), name_key="x", house_key=flat, scope=REGISTRY, birth=birth
            )
        )
        rows.append(_incident(len(rows), surname, given, flat))
    for i in range(outsiders):
        rows.append(_incident(len(rows), f"w{i}", f"v{i}", FAR))
    for surname, given, _ in people[:away]:
        rows.append(_incident(len(rows), surname, given, FAR))
    return rows


def _incident(uid: int, surname: str, given: str, house: str = FAR, **fields) -> dict:
    fields = {"name_key": "x", **fields}
    return record(uid, **_name(surname, given), house_key=house, is_home=False, born_by=ADULT_BY, **fields)


def _cluster(rows):
    records = table(rows)
    return build_clusters(records, id_links(records), pairs([]))


def test_an_incident_away_from_home_joins_the_streets_only_person_of_a_rare_name():
    """200 residents reported away from home too and 5 outsiders: of the 206 incidents that joined no
    home, only the outsiders' bear a name nobody here has, so few reporters away come from elsewhere and
    the street's one 诸葛孔明 (a rare name) is near-certainly the reporter."""
    rows = _street([("zhuge", "kongming", "1960-05-05")], outsiders=5, away=200)
    person = 600  # the registry row of 诸葛孔明
    rows.append(_incident(len(rows), "zhuge", "kongming"))
    found = _cluster(rows)
    assert found.cluster[-1] == found.cluster[person]
    assert found.matched_by[-1] == "street_reporter"


def test_where_residents_report_at_home_a_rare_name_away_is_an_outsiders():
    """Every resident's incident is at their own flat (as in the source systems' sample); the incidents
    elsewhere are outsiders', ten of names nobody here bears and one of the name of the street's one
    诸葛孔明. Among all 312 incidents few name nobody; among the 11 that joined no home most do: the
    reporter of 诸葛孔明 away from his flat is most likely an outsider, and stays alone."""
    rows = _street([("zhuge", "kongming", "1960-05-05")], outsiders=10)
    rows.append(_incident(len(rows), "zhuge", "kongming"))
    found = _cluster(rows)
    assert found.cluster[-1] == len(rows) - 1
    assert found.cluster[600] == found.cluster[601]  # his own incident at home joins him


def test_two_persons_of_that_name_on_the_street_leave_the_incident_alone():
    """The namesake case: two 诸葛孔明 in two flats of the street; the reporter could be either."""
    rows = _street([("zhuge", "kongming", "1960-05-05"), ("zhuge", "kongming", "1982-03-03")])
    rows.append(_incident(len(rows), "zhuge", "kongming"))
    found = _cluster(rows)
    assert found.cluster[-1] == len(rows) - 1


def test_a_name_made_of_a_common_surname_and_given_name_is_not_enough():
    """s0 + g1: nobody else bears it, but 11 people bear s0 and 4 bear g1, so about 0.15 people would
    bear it if names were paired at random — a visitor of that name is too likely."""
    rows = _street([("s0", "g1", "1960-05-05")])
    rows.append(_incident(len(rows), "s0", "g1"))
    found = _cluster(rows)
    assert found.cluster[-1] == len(rows) - 1


def test_an_incident_whose_split_of_the_name_nobody_bears_is_weighed_by_the_holders_split():
    """Pinyin keys run together: s0|g1 and s0g|1 are one key. The incident's split (surname s0g, which
    nobody bears) would make the name look unique; the holder's split s0|g1 is common, so no join."""
    rows = _street([("s0", "g1", "1960-05-05")])
    rows.append(_incident(len(rows), "s0g", "1"))
    found = _cluster(rows)
    assert found.cluster[-1] == len(rows) - 1


def test_a_street_whose_incidents_often_name_nobody_there_links_no_name_alone():
    """A hundred of the 301 incidents that joined no home name nobody of the street: many reporters away
    come from elsewhere."""
    rows = _street([("zhuge", "kongming", "1960-05-05")], outsiders=100, away=200)
    rows.append(_incident(len(rows), "zhuge", "kongming"))
    found = _cluster(rows)
    assert found.cluster[-1] == len(rows) - 1
    assert _outsider_share(rows) > 0.2
    assert _outsider_share(_street(away=200)) < 0.02


def _outsider_share(rows: list[dict]) -> float:
    """The share the rule would weigh, on a street where it joins nothing (the seekers are those left)."""
    records = table(rows)
    found = _cluster(rows)
    home = home_mask(records)
    cluster = np.asarray(found.cluster)
    seekers = _seekers(records, cluster, np.flatnonzero(~home), cluster[home])
    return outsider_share([pinyin for _, pinyin, _ in seekers], NameCounts(records, cluster, home))


def test_the_only_person_of_that_name_is_a_child_so_the_incident_stays_alone():
    rows = _street([("zhuge", "kongming", "2016-05-05")])
    rows.append(_incident(len(rows), "zhuge", "kongming"))
    found = _cluster(rows)
    assert found.cluster[-1] == len(rows) - 1


def test_an_incident_with_another_persons_phone_stays_alone():
    """The incident gives a phone the street's 诸葛孔明 does not hold and another resident does."""
    phone = ["+8613800138000"]
    rows = _street([("zhuge", "kongming", "1960-05-05")])
    rows[0]["phones"] = phone
    rows.append(_incident(len(rows), "zhuge", "kongming", phones=phone))
    found = _cluster(rows)
    assert found.cluster[-1] == len(rows) - 1


PHONE = "+8619917402665"


def _with_phone(rows: list[dict], uid: int, phone: str = PHONE) -> list[dict]:
    rows[uid] = {**rows[uid], "phones": [phone]}
    return rows


def test_an_incident_away_with_the_phone_of_the_one_person_of_that_name_joins_however_common_the_name():
    """s0 + g1 is too common for the name alone (above); the resident's phone on the incident decides."""
    rows = _with_phone(_street([("s0", "g1", "1975-04-04")]), 600)
    rows.append(_incident(len(rows), "s0", "g1", phones=[PHONE]))
    found = _cluster(rows)
    assert found.cluster[-1] == found.cluster[600]
    assert found.matched_by[-1] == "reporter_phone"


def test_namesakes_who_share_the_phone_leave_the_incident_alone():
    """Two s0 + g1 who give one number (a household's): the phone cannot say which of them reported."""
    rows = _street([("s0", "g1", "1975-04-04"), ("s0", "g1", "2001-02-02")])
    rows = _with_phone(_with_phone(rows, 600), 602)
    rows.append(_incident(len(rows), "s0", "g1", phones=[PHONE]))
    found = _cluster(rows)
    assert found.cluster[-1] == len(rows) - 1


def test_a_phone_held_by_someone_of_another_name_is_not_enough():
    """A household's number, held by s7 + g7: a reporter s0 + g1 giving it is not shown to be anyone."""
    rows = _with_phone(_street([("s0", "g1", "1975-04-04")]), 14)
    rows.append(_incident(len(rows), "s0", "g1", phones=[PHONE]))
    found = _cluster(rows)
    assert found.cluster[-1] == len(rows) - 1


HOME = "XQ002|1|1|301"


def _resident(uid: int, name: str, sex: str, **fields) -> dict:
    """A registry row at ``HOME`` of a name with the pinyin s0 + g1 (synthetic homophones)."""
    return record(uid, **_name("s0", "g1"), name_key=name, house_key=HOME, scope=REGISTRY, sex=sex, **fields)


def _two_in_a_flat(holder: tuple[str, str, str], other: tuple[str, str, str], reporter: str):
    """The street, two residents of pinyin s0 + g1 at ``HOME`` ((name, sex, birth); the first holds the
    household's phone) and an incident of ``reporter`` away from home giving that phone."""
    rows = _street()
    first = len(rows)
    rows.append(_resident(first, holder[0], holder[1], birth=holder[2], phones=[PHONE]))
    rows.append(_resident(first + 1, *other[:2], birth=other[2]))
    rows.append(_incident(len(rows), "s0", "g1", name_key=reporter, phones=[PHONE]))
    return _cluster(rows), first


def test_a_sister_giving_the_households_phone_is_not_her_brother():
    """章子轩 (the household's phone on his registry row) and his sister 章梓萱 (no phone) share a flat and a
    pinyin; her incident gives the household's number. It is not his, and the name says so."""
    found, brother = _two_in_a_flat(("章子轩", "M", "1990-01-01"), ("章梓萱", "F", "1993-02-02"), "章梓萱")
    assert found.cluster[-1] not in (found.cluster[brother], found.cluster[brother + 1])


def test_a_son_named_after_his_father_giving_the_households_phone_is_not_shown_to_be_either():
    """Father and son, both 章子轩, one flat; the father's row gives the household's number."""
    found, _ = _two_in_a_flat(("章子轩", "M", "1960-01-01"), ("章子轩", "M", "1990-05-05"), "章子轩")
    assert found.cluster[-1] == len(found.cluster) - 1


def test_the_phone_joins_only_the_exact_name_when_both_sides_give_one():
    """章子轩 alone in his flat holds the number; an incident of 章梓萱 (his pinyin) gives it: the exact names
    differ. The same incident under his name joins him."""
    rows = _street()
    holder = len(rows)
    rows.append(_resident(holder, "章子轩", "M", birth="1990-01-01", phones=[PHONE]))
    rows.append(_incident(len(rows), "s0", "g1", name_key="章梓萱", phones=[PHONE]))
    assert _cluster(rows).cluster[-1] == len(rows) - 1
    rows[-1] = {**rows[-1], "name_key": "章子轩"}
    found = _cluster(rows)
    assert found.cluster[-1] == found.cluster[holder]
    assert found.matched_by[-1] == "reporter_phone"


def test_a_phone_join_of_yesterday_is_decided_again_when_a_second_holder_appears():
    """Day 1: the street's one s0 + g1 holds the number the incident gives, and it joins. Day 2 a second
    s0 + g1 giving the same number (a household's) appears: yesterday's link is not kept, and the
    incident is left alone as on a first run."""
    key = mac_key()
    rows = _with_phone(_street([("s0", "g1", "1975-04-04")]), 600)
    rows.append(_incident(len(rows), "s0", "g1", phones=[PHONE]))
    day1 = table(rows)
    found = _cluster(rows)
    assert found.cluster[-1] == found.cluster[600]
    previous = links_table(day1, found.links, fingerprints(key, day1)).to_pandas()
    previous = previous.assign(run_id="r1", ended_run=None)
    rows.append(
        record(
            len(rows),
            **_name("s0", "g1"),
            name_key="x",
            house_key="XQ005|1|1|101",
            scope=REGISTRY,
            birth="2001-02-02",
            phones=[PHONE],
        )
    )
    day2 = table(rows)
    kept = kept_links(previous, day2, fingerprints(key, day2), identity_evidence)
    again = build_clusters(day2, id_links(day2), pairs([]), kept=kept)
    assert again.cluster[602] == 602
