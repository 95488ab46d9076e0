"""A handler whose init leaves 4000 separate mappings (shared anonymous ones never merge): its
/proc/self/maps is over 256 KB, more than the snapshot handler's first scratch holds
(tests/sdk/test_snap_sdk.c)."""

import mmap

MAPS = [mmap.mmap(-1, mmap.PAGESIZE) for _ in range(4000)]
for m in MAPS:
    m[0] = 1  # present, as a template's memory is


def handler(event, context):
    return str(len(MAPS))
