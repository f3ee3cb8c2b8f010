"""oddoctor's compatibility knowledge: TensorFlow tested builds, NVIDIA driver floors, wheel compute
capabilities (packaged CSV tables with their sources), and pure functions over them.

>>> from oddoctor import compat
>>> str(compat.min_driver_for_cuda("12.2", "linux"))
'525.60.13'
>>> compat.newest_tf_for_driver("470.82", python="3.9").series
'2.14'
"""

from __future__ import annotations

from oddoctor.compat.data import (
    DATA_FILES,
    LINUX,
    OSES,
    WINDOWS,
    CapsRow,
    CompatDataError,
    DataSource,
    DriverRow,
    TfBuild,
    caps_rows,
    data_sources,
    driver_rows,
)
from oddoctor.compat.rules import (
    WINDOWS_LAST_GPU_SERIES,
    Arch,
    DriverNeed,
    builds,
    cc_coverage,
    describe,
    driver_need,
    fitting_builds,
    format_driver,
    major_minor,
    min_driver_for_cuda,
    newest_tf_for_cc,
    newest_tf_for_driver,
    newest_tf_for_python,
    normalize_cuda,
    normalize_cudnn,
    parse_archs,
    parse_cc,
    pip_install,
    pip_spec,
    tf_build_for,
    wheel_caps,
)

__all__ = [
    "DATA_FILES", "LINUX", "OSES", "WINDOWS", "WINDOWS_LAST_GPU_SERIES", "Arch", "CapsRow",
    "CompatDataError", "DataSource", "DriverNeed", "DriverRow", "TfBuild", "builds", "caps_rows",
    "cc_coverage", "data_sources", "describe", "driver_need", "driver_rows", "fitting_builds",
    "format_driver", "major_minor", "min_driver_for_cuda", "newest_tf_for_cc", "newest_tf_for_driver",
    "newest_tf_for_python", "normalize_cuda", "normalize_cudnn", "parse_archs", "parse_cc", "pip_install",
    "pip_spec", "tf_build_for", "wheel_caps",
]
