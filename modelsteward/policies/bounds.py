"""The policies' thresholds and hard bounds: defined in ``modelsteward/bounds.py`` (a base module
the domain packages read too, so it sits below them); re-exported here for rules."""

from modelsteward.bounds import *  # noqa: F401,F403
from modelsteward.bounds import __all__  # noqa: F401
