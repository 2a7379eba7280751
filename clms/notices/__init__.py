"""Notices: what happened that concerns a person, in the application (a count in the header, a
list, marked read when opened) and, for the kinds the person chose, by email.

- :mod:`clms.notices.kinds` the kinds of notice, their default (by email or not), their titles;
- :mod:`clms.notices.tell` what an operation calls, in its own transaction, to tell people
  (never the person who acted) and queue the mail they chose;
- :mod:`clms.notices.outbox` the outgoing mail table's queue (shared with the alerts' mail);
- :mod:`clms.notices.words` the sentence of a notice, written when it is read;
- :mod:`clms.notices.reading` a person's own notices: the count, the list, opening one, marking
  all read; the notes addressed to them (their home page);
- :mod:`clms.notices.preferences` which kinds also come by email, changed by the person
  (audited).

A notice stores codes only (kind, case number, pseudonymous child id, referral number); the
words come when the page is read, in the reader's language. Whoever is told must be able to open
the item: the operations choose recipients among the people whose scope covers it.
"""
