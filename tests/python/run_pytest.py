#!/usr/bin/python3
"""ctest's entry to the tensorpager package tests (test_*.py here):
exit code 77 (skipped, with the reason on stdout) when something they need
is missing, else pytest's own exit code.

Environment (set by CMakeLists.txt): PYTHONPATH with the built package,
TENSORPAGERD (the server binary), TP_PYTHON_SKIP_REASON when the build
could not make the package.
"""

import os
import sys

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))


def missing() -> str:
    """Why the tests cannot run here, or ""."""
    reason = os.environ.get("TP_PYTHON_SKIP_REASON")
    if reason:
        return reason
    for module, package in (("pytest", "python3-pytest"),
                            ("numpy", "python3-numpy")):
        try:
            __import__(module)
        except ImportError as e:
            return f"{module} missing ({e}): apt-get install {package}"
    try:
        import tensorpager._native  # noqa: F401
    except ImportError as e:
        return (f"tensorpager._native not importable ({e}): build the "
                "tensorpager_python target (needs python3-dev and "
                "python3-pybind11)")
    server = os.environ.get("TENSORPAGERD", "")
    if server and not os.access(server, os.X_OK):
        return f"{server} not built"
    return ""


def main() -> int:
    reason = missing()
    if reason:
        print(f"SKIPPED: {reason}")
        return SKIP
    import pytest
    # Only test_*.py: client_test.py here is the grpcio test ctest runs
    # on its own.
    args = ["-p", "no:cacheprovider", "-ra", "-o", "python_files=test_*.py",
            HERE] + sys.argv[1:]
    return pytest.main(args)


if __name__ == "__main__":
    sys.exit(main())
