#!/usr/bin/env python3
"""safetensors_check.py: an independent reader of safetensors files, written
from the format description with the Python standard library only, so the C
writer is checked against something other than its own reader.

Usage: safetensors_check.py FILE [N]

Prints "meta KEY=VALUE" for each metadata entry (sorted by key), then one
line per tensor in data order: "tensor NAME DTYPE [d0,d1] v0 v1 ..." with up
to N (default 4) leading values formatted like C's "%.9g" (integers as
"%d"). Exits 1 with a message on any violation of the format."""

import json
import struct
import sys

# dtype -> (element size, struct code); BF16 is decoded by hand.
DTYPES = {
    "F64": (8, "<d"),
    "F32": (4, "<f"),
    "F16": (2, "<e"),
    "BF16": (2, None),
    "I64": (8, "<q"),
    "I32": (4, "<i"),
    "U8": (1, "<B"),
}


def fail(msg):
    print("safetensors_check: " + msg, file=sys.stderr)
    sys.exit(1)


def value_text(dtype, raw):
    """Decode one element and format it the way the C test does."""
    if dtype == "BF16":
        (v,) = struct.unpack("<f", b"\0\0" + raw)
    else:
        (v,) = struct.unpack(DTYPES[dtype][1], raw)
    if isinstance(v, int):
        return "%d" % v
    return "%.9g" % v


def main():
    if len(sys.argv) not in (2, 3):
        fail("usage: safetensors_check.py FILE [N]")
    count = int(sys.argv[2]) if len(sys.argv) == 3 else 4
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    if len(data) < 8:
        fail("file shorter than 8 bytes")
    (hlen,) = struct.unpack("<Q", data[:8])
    if hlen > len(data) - 8:
        fail("header length %d beyond the file" % hlen)
    raw = data[8 : 8 + hlen]
    if not raw.startswith(b"{"):
        fail("header does not start with '{'")
    header = json.loads(raw.decode("utf-8"))
    buf = data[8 + hlen :]
    meta = header.pop("__metadata__", {})
    for key in sorted(meta):
        if not isinstance(meta[key], str):
            fail("metadata %r is not a string" % key)
        print("meta %s=%s" % (key, meta[key]))
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])
    pos = 0
    for name, info in entries:
        dtype, shape = info["dtype"], info["shape"]
        begin, end = info["data_offsets"]
        if dtype not in DTYPES:
            fail("%s: unknown dtype %s" % (name, dtype))
        size = DTYPES[dtype][0]
        numel = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                fail("%s: bad shape %r" % (name, shape))
            numel *= d
        if begin != pos:
            fail("%s: starts at %d, expected %d" % (name, begin, pos))
        if end - begin != numel * size:
            fail("%s: %d bytes for %d elements" % (name, end - begin, numel))
        pos = end
        values = [
            value_text(dtype, buf[begin + i * size : begin + (i + 1) * size])
            for i in range(min(count, numel))
        ]
        dims = ",".join(str(d) for d in shape)
        print(" ".join(["tensor", name, dtype, "[" + dims + "]"] + values))
    if pos != len(buf):
        fail("buffer is %d bytes but tensors cover %d" % (len(buf), pos))


if __name__ == "__main__":
    main()
