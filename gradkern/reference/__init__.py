"""High-precision reference implementations (mpmath) used as ground truth by the tests and bench/.

mpmath is imported lazily by each module; it is a test/bench dependency, not a runtime one.
"""
