"""A person's review of a recorded event, fed back to the watchlist through its own methods: a wrong name
corrected (feedback.py), a captured face enrolled (capture_enrol.py)."""
