"""The blind arena: pairwise votes and the ratings they make."""
