#!/usr/bin/env python3
"""gguf_read.py — an independent reader of GGUF files for the export tests: prints the metadata as
one JSON object ("meta": key -> value, arrays as their length and first items) and the tensors
("tensors": name -> [type, dims innermost first, offset]; "values": name -> the floats of f32
tensors of at most 64 elements). Checks the layout as it reads: magic,
version, alignment of every tensor, and that the data section holds every tensor's bytes."""
import json, struct, sys

TYPES = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
SIZE = {0: 4, 1: 2, 30: 2}


def main(path):
    data = open(path, "rb").read()
    at = 0

    def take(fmt):
        nonlocal at
        v = struct.unpack_from(fmt, data, at)[0]
        at += struct.calcsize(fmt)
        return v

    def string():
        nonlocal at
        n = take("<Q")
        s = data[at:at + n].decode("utf-8")
        at += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            items = [value(et) for _ in range(n)]
            return {"len": n, "head": items[:4]}
        return take(TYPES[t])

    assert data[:4] == b"GGUF", "bad magic"
    at = 4
    version, ntensors, nkv = take("<I"), take("<Q"), take("<Q")
    assert version == 3, version
    meta = {}
    for _ in range(nkv):
        k = string()
        meta[k] = value(take("<I"))
    align = meta.get("general.alignment", 32)
    tensors = {}
    for _ in range(ntensors):
        name = string()
        nd = take("<I")
        dims = [take("<Q") for _ in range(nd)]
        ty, off = take("<I"), take("<Q")
        assert off % align == 0, (name, off)
        tensors[name] = [ty, dims, off]
    start = (at + align - 1) // align * align
    for name, (ty, dims, off) in tensors.items():
        n = 1
        for d in dims:
            n *= d
        assert start + off + n * SIZE[ty] <= len(data), ("truncated", name)
    values = {name: list(struct.unpack_from("<%df" % dims[0], data, start + off))
              for name, (ty, dims, off) in tensors.items() if ty == 0 and len(dims) == 1 and dims[0] <= 64}
    print(json.dumps({"meta": meta, "tensors": tensors, "values": values}))


main(sys.argv[1])
