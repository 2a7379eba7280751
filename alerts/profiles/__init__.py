"""Country profiles: the ages, hours and hazardous list each country's law sets, which the
classifier applies.

:mod:`alerts.profiles.model` (pure) holds the codes, names and labels and reads an
administrator's changes; :mod:`alerts.profiles.seeds` builds version 1 of each profile from the US
DOL ILAB file and domain.md's table; :mod:`alerts.profiles.store` keeps the versions in the
database; :mod:`alerts.profiles.cli` is the ``clms profiles`` commands.
"""
