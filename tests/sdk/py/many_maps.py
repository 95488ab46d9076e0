"""A handler whose init leaves 4000 separate mappings (shared anonymous ones never merge): its
/proc/self/maps is some 400 KB, a hundred times the snapshot handler's stack buffer
(tests/sdk/test_snap_sdk.c)."""

import mmap

MAPS = [mmap.mmap(-1, mmap.PAGESIZE) for _ in range(4000)]
for m in MAPS:
    m[0] = 1  # present, as a template's memory is


def handler(event, context):
    return str(len(MAPS))
