"""The package version, in a module of its own so every layer can read it without
importing the package's top (which imports every layer); and when this process loaded
its code, which a forked process inherits with the code itself."""

import time

__version__ = "0.1.0"

#: When this process (or the one it forked from) first imported Conveyor: a source file
#: changed after it is code the process has not loaded (``worker/unknown.py``).
LOADED_AT = time.time()
