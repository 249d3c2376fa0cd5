"""tensorpager: page tensor blocks between GPU, RAM and NVMe through
tensorpagerd, from Python.

    import numpy as np
    import tensorpager

    with tensorpager.Client("127.0.0.1:50051") as tp:
        tp.put("layer0/k", np.zeros((16, 128), np.float16))
        k = tp.get("layer0/k")  # float16 array of shape (16, 128)

See :class:`Client`.
"""

from .client import Client, PressureWatch
from .errors import (Aborted, AlreadyExists, Cancelled, DataLoss,
                     DeadlineExceeded, Error, FailedPrecondition, Internal,
                     InvalidArgument, NotFound, OutOfRange, PermissionDenied,
                     ResourceExhausted, StatusCode, Unauthenticated,
                     Unavailable, Unimplemented, Unknown)
from .results import (BatchPath, DeleteResult, GetResult, LookupEntry,
                      LookupResult, PressureEvent, PutResult)
from .types import Compression, DType, RegionType, Tier

__version__ = "0.1.0"

__all__ = [
    "Aborted", "AlreadyExists", "BatchPath", "Cancelled", "Client",
    "Compression", "DType", "DataLoss", "DeadlineExceeded", "DeleteResult",
    "Error", "FailedPrecondition", "GetResult", "Internal",
    "InvalidArgument", "LookupEntry", "LookupResult", "NotFound",
    "OutOfRange", "PermissionDenied", "PressureEvent", "PressureWatch",
    "PutResult", "RegionType", "ResourceExhausted", "StatusCode", "Tier",
    "Unauthenticated", "Unavailable", "Unimplemented", "Unknown",
]
