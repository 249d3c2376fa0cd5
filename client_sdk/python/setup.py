"""Builds tensorpager._native with the project's CMake (see pyproject.toml).

The module is the CMake target tensorpager_python of the repository this
directory belongs to (client_sdk/python). Environment:
  TENSORPAGER_BUILD_DIR    an existing (or new) CMake build dir to build
                           in; reused as is when it is configured already
  TENSORPAGER_SOURCE_DIR   the repository root (default: ../.. from here)
  CMAKE_BUILD_PARALLEL_LEVEL  compile jobs (default 2)
"""

import os
import pathlib
import shutil
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str):
        # No sources: CMake compiles the module.
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def run(self) -> None:
        for ext in self.extensions:
            self.build_cmake(ext)

    def build_cmake(self, ext: Extension) -> None:
        source = pathlib.Path(
            os.environ.get("TENSORPAGER_SOURCE_DIR", HERE.parent.parent))
        if not (source / "client_sdk" / "python" / "native").is_dir():
            raise RuntimeError(
                f"{source} is not the tensorpager repository; build from a "
                "checkout (pip install ./client_sdk/python) or set "
                "TENSORPAGER_SOURCE_DIR")
        build = pathlib.Path(os.environ.get("TENSORPAGER_BUILD_DIR") or
                             pathlib.Path(self.build_temp).resolve() /
                             "cmake").resolve()
        build.mkdir(parents=True, exist_ok=True)
        if not (build / "CMakeCache.txt").exists():
            # The module only: no tests, no benchmarks.
            self.spawn(["cmake", "-S", str(source), "-B", str(build),
                        "-DCMAKE_BUILD_TYPE=Release",
                        "-DTP_BUILD_TESTS=OFF",
                        "-DTP_BUILD_BENCHMARKS=OFF",
                        f"-DPython3_EXECUTABLE={sys.executable}"])
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        self.spawn(["cmake", "--build", str(build), "--target",
                    "tensorpager_python", "-j", jobs])
        built = build / "client_sdk" / "python" / "tensorpager"
        module = built / ("_native" + sysconfig.get_config_var("EXT_SUFFIX"))
        if not module.exists():
            found = ", ".join(p.name for p in built.glob("_native*")) or \
                "nothing"
            raise RuntimeError(
                f"{module} was not built (found {found}): the build dir "
                "must be configured for this Python "
                f"(-DPython3_EXECUTABLE={sys.executable}) and find "
                "python3-dev and python3-pybind11")
        destination = pathlib.Path(self.get_ext_fullpath(ext.name))
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module, destination)


setup(ext_modules=[CMakeExtension("tensorpager._native")],
      cmdclass={"build_ext": CMakeBuild})
