"""Operations: the named changes to data (verb_noun), called by views, the CLI and jobs.

They flush but do not commit: the caller commits once, at the boundary of its request or job.
"""
