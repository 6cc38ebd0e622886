"""The campaign loop: contacts, holdouts, matchback, the incremental effect of each edition.

``campaign.effects`` holds the statistics of a mailed-against-holdout comparison
(Wilson and Newcombe intervals for rates, bootstrap and Welch intervals for money,
the sample-ratio-mismatch check, ``arm_effect``); ``campaign.simulate`` a club that
responds to a mailing with a known true effect, to check those intervals against.
Both are pure numpy/scipy and know nothing of the database.

Around them, one concept a module: ``holdouts`` (the seeded hash of member id and
campaign, shares per segment × tier, the universal holdout), ``contacts`` (a quarter's
campaign, its editions and key codes, a contact per member written before rendering),
``matchback`` (direct / inferred / unattributed, credit rules), ``report`` (the effect of
each arm with intervals, the sample-ratio check first), ``reconcile`` (contacts against
the PDFs written). Their SQL is in ``recsys/storage/``: ``campaigns.py`` (campaigns,
editions, treatments, key codes), ``contacts.py`` (audience and contacts), ``matches.py``
(matchback and the report's outcomes).
"""
