"""nbval starts each notebook's kernel with this process's environment: pin the CPU code paths first.

See ``pinned_cpu.py`` beside this file for why. ``MTL_LAB_CPU_PINS=0`` leaves the environment as it is:
``check_any_machine.py`` sets it to run the notebooks on other CPU code paths.
"""

import os

from pinned_cpu import pinned_environment

if os.environ.get("MTL_LAB_CPU_PINS", "1") != "0":
    os.environ.update(pinned_environment({}))
