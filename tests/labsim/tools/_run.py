"""Runs one simulated tool: `python _run.py TOOL ARGS...` (called by the wrappers beside it).

Loads tests/labsim under the name `labsim` straight from its folder, so the tools work whatever
the current directory is and whatever else is called `tests` on sys.path.
"""

import importlib
import importlib.util
import sys
from pathlib import Path

package_dir = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "labsim", package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
)
package = importlib.util.module_from_spec(spec)
sys.modules["labsim"] = package
spec.loader.exec_module(package)
sys.exit(importlib.import_module("labsim.tool").main(sys.argv[1:]))
