"""The campaign loop: contacts, holdouts, matchback, the incremental effect of each edition.

``campaign.effects`` holds the statistics of a mailed-against-holdout comparison
(Wilson and Newcombe intervals for rates, bootstrap and Welch intervals for money,
the sample-ratio-mismatch check, ``arm_effect``); ``campaign.simulate`` a club that
responds to a mailing with a known true effect, to check those intervals against.
Both are pure numpy/scipy and know nothing of the database.
"""
