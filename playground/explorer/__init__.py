"""Why did the model say that: per-token probabilities, candidates, branches, adapter vs base."""
