"""`python -m autograder.sandbox`: which fences work on this machine, as JSON and in words."""

import json
import logging

from .probe import describe_fences, fences

logging.basicConfig()
print(json.dumps(fences(), indent=2))
print(describe_fences())
