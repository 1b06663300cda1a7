"""nbval runs the lessons in test mode: fewer seconds of watching, the same cells and outputs.

Set before any kernel starts (kernels inherit this process's environment);
an explicit ORDERLAB_TEST_MODE=0 in the environment still wins.
"""

import os

os.environ.setdefault("ORDERLAB_TEST_MODE", "1")
