"""The intake of submissions: one pipeline (:mod:`clms.intake.pipeline`: parse, place, save,
classify, cases, alerts), run by the processing job (:mod:`clms.intake.process`), by
reclassification (:mod:`clms.intake.reclassify`) and after decryption (:mod:`clms.intake.decrypt`);
pulls (:mod:`clms.intake.pull`) store what they fetch for the processing job. Each of these is
the transaction boundary of what it runs: the features' steps flush, never commit.
"""
