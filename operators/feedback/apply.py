"""What a shard does with the suppression index: hide suppressed threats (counted, not dropped)
and re-learn the baselines a benign verdict asked for. Called by ShardEngine (operators/twin)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from twinguard.operators.detect.policy import output_id
from twinguard.operators.feedback.table import SuppressionIndex
from twinguard.operators.twin import kernels as K
from twinguard.operators.twin.store import TwinStore
from twinguard.schemas.device_types import DeviceTypeTable
from twinguard.schemas.features import THREAT_CLASSES

I64 = npt.NDArray[np.int64]
# (threat class, scope) of each hidden threat: the process's metrics count them
HiddenCounter = Callable[[str, str], None]


def hide_suppressed(st: TwinStore, types: DeviceTypeTable, index: SuppressionIndex, meta: I64,
                    cls: I64, rows: I64, version: str, now_ms: int,
                    counted: HiddenCounter | None = None) -> I64:
    """`rows` (threat rows of closed windows) without the suppressed ones. Each hidden threat is
    counted in its twin (`suppressed_threats`, `last_suppressed`) and in `counted`; it gets no
    threat event and therefore no response action."""
    if not index.by_key or rows.size == 0:
        return rows
    keep = np.ones(rows.size, dtype=bool)
    istate = st.arrays["istate"]
    for j, r in enumerate(rows.tolist()):
        s, c, we = int(meta[r, 0]), int(cls[r]), int(meta[r, 2])
        device, threat = st.device_ids[s], THREAT_CLASSES[c]
        dtype = types.types[istate[s, K.I_TYPE]].name
        hit = index.match(device, dtype, st.fws[s], threat, now_ms)
        if hit is None:
            continue
        keep[j] = False
        count = st.suppressed.get(s, (0, "", 0, 0))[0]
        st.suppressed[s] = (count + 1, output_id(device, threat, version, str(we)), c, we)
        istate[s, K.I_DIRTY] = 1
        if counted is not None:
            counted(threat, hit.scope)
    return rows[keep]


def relearn_baselines(st: TwinStore, index: SuppressionIndex) -> int:
    """Reset the baseline of every device of this shard a newer benign verdict names: the next
    clean window re-seeds it (kernels._learn with n = 0) and the device is `learning` again for
    [detection] warmup_windows. Applied once per verdict (the store remembers its ts, so a
    restored snapshot does not re-learn again); devices not seen yet are skipped."""
    done = 0
    for device, ts in index.relearn.items():
        s = st.index.get(device)
        if s is None or st.relearned.get(s, -1) >= ts:
            continue
        st.arrays["istate"][s, K.I_BASE_N] = 0
        st.arrays["istate"][s, K.I_DIRTY] = 1
        st.relearned[s] = ts
        done += 1
    return done
