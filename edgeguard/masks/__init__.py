"""The mask stage behind edgeguard.mask: the classifier and the search for masked faces HOG misses."""
