"""Who covers which villages (clms.scope): the users whose scope reaches any of a set of villages
are the same, asked at once, as asking each user's villages one by one."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from clms.db import session_scope
from clms.models import User, Village
from clms.scope import users_covering, village_ids_in_scope


def test_users_covering_agrees_with_each_users_villages(app, places, make_user):
    make_user("m_country", "monitor", areas=["CI"])
    make_user("m_region", "monitor", areas=["CI-R1"])
    make_user("m_d1", "monitor", areas=["CI-D1"])
    make_user("m_v3", "monitor", areas=["V3"])
    make_user("m_d2_v1", "monitor", areas=["CI-D2", "V1"])
    make_user("o_d1", "officer", areas=["CI-D1"])
    make_user("s_v4", "supervisor", areas=["V4"])
    with session_scope(app) as s:
        villages = {v.code: v.id for v in s.scalars(select(Village))}
        people = list(s.scalars(select(User)))
        for size in range(len(villages) + 1):
            for chosen in itertools.combinations(sorted(villages), size):
                ids = {villages[c] for c in chosen}
                for roles in (("monitor",), ("officer", "supervisor")):
                    expected = {
                        u.id for u in people if u.role in roles and village_ids_in_scope(s, u) & ids
                    }
                    assert users_covering(s, ids, roles) == expected, (chosen, roles)
        # a village of one department: its monitors, those above it, and no one of the other
        covering = users_covering(s, {villages["V2"]}, ("monitor",))
        names = {u.username for u in people if u.id in covering}
        assert names == {"m_country", "m_region", "m_d1"}
