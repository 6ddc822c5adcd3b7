"""Read-side building blocks: attribution, commission states, ranking scores and search storage.

Pure functions and SQL helpers only; projections that feed them from events are wired elsewhere.
"""
