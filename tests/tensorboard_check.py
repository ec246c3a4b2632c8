#!/usr/bin/env python3
"""tensorboard_check.py: read a TensorBoard event file with the standard
library only, verify every TFRecord CRC, and print one line per scalar:
"step<TAB>tag<TAB>value" after a first line "file_version<TAB>..."."""
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, pos):
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def fields(buf):
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("wire type %d" % wire)
        yield num, value


def main(path):
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        head = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", head)
        (hcrc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if hcrc != masked(crc32c(head)):
            sys.exit("bad length crc at %d" % pos)
        event = data[pos + 12:pos + 12 + length]
        (dcrc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if dcrc != masked(crc32c(event)):
            sys.exit("bad data crc at %d" % pos)
        pos += 16 + length
        step = 0
        for num, value in fields(event):
            if num == 2:
                step = value
            elif num == 3:
                print("file_version\t%s" % value.decode())
            elif num == 5:
                for _, v in fields(value):
                    tag, val = None, None
                    for vn, vv in fields(v):
                        if vn == 1:
                            tag = vv.decode()
                        elif vn == 2:
                            (val,) = struct.unpack("<f", vv)
                    print("%d\t%s\t%.6g" % (step, tag, val))


if __name__ == "__main__":
    main(sys.argv[1])
