"""nbval starts each notebook's kernel with this process's environment: pin the CPU code paths first.

See ``pinned_cpu.py`` beside this file for why the stored outputs need them.
"""

import os

from pinned_cpu import pinned_environment

os.environ.update(pinned_environment({}))
