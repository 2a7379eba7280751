"""``clms demo``: a working system with realistic data, in one command.

What it does, in order:

a. brings the database schema up to date (``CLMS_DATABASE_URL`` or the instance SQLite file);
b. if the database already holds the demo's data (its brands), builds nothing and serves it;
c. loads places from the shared Who's On First localities: four regions of the cocoa belt of
   Côte d'Ivoire, about 240 villages spread over their departments (:mod:`clms.places.localities`);
d. adds three brands and suppliers in tiers: exporters and grinders (tier 1), a cooperative per
   department (tier 2) and farmer groups (tier 3); cooperatives and groups buy in villages
   (``SupplierVillage``), which decides which suppliers a monitor's form lists;
e. adds users with random passwords: an admin, a monitor per ten villages (scoped to those
   villages), an officer per department, a supervisor per region, a service provider and a user
   per brand;
f. publishes our three forms (``forms.publish.ensure_builtin_forms``);
g. starts the server and sends household visits (and ~50 concern reports) as the monitors
   would from ODK Collect: HTTP Digest, ``POST /submission``, four at a time. Each submission is
   built from the published form's own primary instance, so it has the form's real structure;
h. prints the address and a username and password for each role, then serves until Ctrl+C
   (or stops, with ``--no-serve``).

The data are generated from a seeded :class:`random.Random`: the same ``--seed`` gives the same
households, children and answers (dates are relative to the day of the run). Passwords come
from :mod:`secrets` and are shown once. About 15% of the children are in child labour by the ILO
statistical rules (domain.md section 3), mostly hazardous tasks of cocoa farming; a very few show
signs of worst forms. One monitor works carelessly (very short visits, a GPS point now and then
far from the village) so that the monitor-quality indicators have something to find.

Follow-ups: :func:`clms.demo.answers.followup_values` makes a ``clms_followup`` answer for an
open case, and :func:`clms.demo.sending.followup_jobs` sends some for the open cases it finds,
once cases exist (they are opened by :mod:`clms.demo.cases`: a season of remediation work).

The modules, by what they build: :mod:`~clms.demo.places` (c), :mod:`~clms.demo.supply_chain`
(d), :mod:`~clms.demo.people` (e, and :func:`~clms.demo.people.build_places_and_people` for c-e),
:mod:`~clms.demo.answers` (the generated answers), :mod:`~clms.demo.submissions` (built from the
form's primary instance), :mod:`~clms.demo.sending` (g), :mod:`~clms.demo.cases` (the officers'
work), :mod:`~clms.demo.command` (the command: serving, and h); :mod:`~clms.demo.plan` and
:mod:`~clms.demo.progress` are what they share.
"""
