#!/usr/bin/env python3
"""hf_fixture.py — builds Hugging Face checkpoint folders for the checkpoint tests, written
independently of ds (python3's standard library only) from an F32 folder that ds exported.

  fp8 SRC FP8 F32 BF16   DeepSeek-V3 FP8 storage as released: every 2-D linear weight of the
                         layers (router and MTP projections aside) as F8_E4M3 with an F32
                         weight_scale_inv per 128x128 block (scale = amax / 448), and
                         quantization_config in config.json; F32 and BF16 twins hold the
                         dequantised weights (fp8 * scale_inv).
  edit SRC OUT [--head same|different] [--nan NAME] [--inf-f16 NAME] [--dtype NAME F64|F8_E4M3]
                         [--drop NAME] [--shards N]
                         a copy with one change: a stored lm_head.weight (equal to the embedding or
                         not), a NaN or an F16 infinity in one tensor, one tensor in another dtype,
                         one tensor removed, or the tensors split into N shards with index.json.
"""
import json
import math
import os
import shutil
import struct
import sys
from array import array


def read_st(path):
    with open(path, "rb") as f:
        buf = f.read()
    (hlen,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + hlen])
    data = buf[8 + hlen:]
    meta = header.pop("__metadata__", None)
    tensors = []
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = t["data_offsets"]
        tensors.append([name, t["dtype"], t["shape"], data[b:e]])
    return tensors, meta


def write_st(path, tensors, meta=None):
    header, at = {}, 0
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(raw)]}
        at += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for t in tensors:
            f.write(t[3])


def f32_values(raw):
    a = array("f")
    a.frombytes(raw)
    return a


def to_bf16(values):
    out = bytearray()
    for v in values:
        (u,) = struct.unpack("<I", struct.pack("<f", v))
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # nearest, ties to even (finite inputs)
        out += struct.pack("<H", u & 0xFFFF)
    return bytes(out)


def e4m3(code):
    s = -1.0 if code & 0x80 else 1.0
    e, m = (code >> 3) & 15, code & 7
    if e == 15 and m == 7:
        return math.nan
    return s * (math.ldexp(m / 8, -6) if e == 0 else math.ldexp(1 + m / 8, e - 7))


POS = sorted((e4m3(c), c) for c in range(0x7F))  # finite non-negative codes


def to_e4m3(x):
    """nearest E4M3 code of x (|x| <= 448), ties to the even code"""
    ax = abs(x)
    lo, hi = 0, len(POS) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if POS[mid][0] < ax:
            lo = mid + 1
        else:
            hi = mid
    best = POS[lo]
    if lo > 0:
        prev = POS[lo - 1]
        if ax - prev[0] < best[0] - ax or (ax - prev[0] == best[0] - ax and prev[1] % 2 == 0):
            best = prev
    return best[1] | (0x80 if x < 0 or (x == 0 and math.copysign(1, x) < 0) else 0)


def quantise(values, rows, cols, block=128):
    """codes, scale_inv grid and dequantised values (rounded to f32) of a rows x cols matrix"""
    sr, sc = -(-rows // block), -(-cols // block)
    scales = [0.0] * (sr * sc)
    for bi in range(sr):
        for bj in range(sc):
            amax = 0.0
            for i in range(bi * block, min(rows, (bi + 1) * block)):
                row = values[i * cols + bj * block:i * cols + min(cols, (bj + 1) * block)]
                amax = max(amax, max(abs(v) for v in row))
            s = struct.unpack("<f", struct.pack("<f", max(amax, 1e-4) / 448.0))[0]
            scales[bi * sc + bj] = s
    codes, deq = bytearray(rows * cols), array("f", bytes(4 * rows * cols))
    for i in range(rows):
        for j in range(cols):
            s = scales[(i // block) * sc + j // block]
            c = to_e4m3(values[i * cols + j] / s)
            codes[i * cols + j] = c
            deq[i * cols + j] = e4m3(c) * s  # exact product, one rounding to f32 on store
    return bytes(codes), array("f", scales).tobytes(), [sr, sc], deq


def fp8_linear(name):
    if not name.startswith("model.layers.") or not name.endswith(".weight"):
        return False
    skip = ("layernorm", "_norm", "norm.weight", "mlp.gate.weight", "eh_proj", "embed_tokens", "shared_head")
    return not any(k in name for k in skip)


def copy_side_files(src, out):
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(src):
        if not f.endswith(".safetensors") and f != "model.safetensors.index.json":
            shutil.copy(os.path.join(src, f), os.path.join(out, f))


def bf16_floats(bf):
    h = array("H")
    h.frombytes(bf)
    return array("f", struct.pack("<%dI" % len(h), *[x << 16 for x in h]))


def cmd_fp8(src, o8, o32, o16):
    tensors, meta = read_st(os.path.join(src, "model.safetensors"))
    t8, t32, t16 = [], [], []
    for name, dtype, shape, raw in tensors:
        assert dtype == "F32", name
        v = f32_values(raw)
        if fp8_linear(name) and len(shape) == 2:
            codes, scales, sshape, deq = quantise(v, shape[0], shape[1])
            t8 += [[name, "F8_E4M3", shape, codes], [name + "_scale_inv", "F32", sshape, scales]]
            t32.append([name, "F32", shape, deq.tobytes()])
            t16.append([name, "BF16", shape, to_bf16(deq)])
        elif "e_score_correction_bias" in name:  # F32 in released V3
            for ts in (t8, t32, t16):
                ts.append([name, "F32", shape, raw])
        else:  # BF16 in released V3: all three hold the same BF16 values
            bf = to_bf16(v)
            t8.append([name, "BF16", shape, bf])
            t32.append([name, "F32", shape, bf16_floats(bf).tobytes()])
            t16.append([name, "BF16", shape, bf])
    for out, ts, dt in ((o8, t8, None), (o32, t32, "float32"), (o16, t16, "bfloat16")):
        copy_side_files(src, out)
        write_st(os.path.join(out, "model.safetensors"), ts, meta)
        with open(os.path.join(src, "config.json")) as f:
            cfg = json.load(f)
        if dt:
            cfg["torch_dtype"] = dt
        else:
            cfg["torch_dtype"] = "bfloat16"
            cfg["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3",
                                          "quant_method": "fp8", "weight_block_size": [128, 128]}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)


def cmd_edit(src, out, args):
    tensors, meta = read_st(os.path.join(src, "model.safetensors"))
    copy_side_files(src, out)
    shards = 1
    while args:
        op, name = args.pop(0), args.pop(0)
        t = {x[0]: x for x in tensors}
        if op == "--head":
            emb = t["model.embed_tokens.weight"]
            raw = emb[3]
            if name == "different":
                v = f32_values(raw)
                v[0] += 0.25
                raw = v.tobytes()
            tensors.append(["lm_head.weight", emb[1], emb[2], raw])
        elif op == "--nan":
            v = f32_values(t[name][3])
            v[len(v) // 2] = math.nan
            t[name][3] = v.tobytes()
        elif op == "--inf-f16":
            v = f32_values(t[name][3])
            t[name][1] = "F16"
            t[name][3] = b"".join(struct.pack("<e", x) for x in v[:-1]) + struct.pack("<H", 0x7C00)
        elif op == "--dtype":
            dt = args.pop(0)
            v = f32_values(t[name][3])
            t[name][1] = dt
            t[name][3] = struct.pack("<%dd" % len(v), *v) if dt == "F64" else bytes(to_e4m3(x) for x in v)
        elif op == "--drop":
            tensors = [x for x in tensors if x[0] != name]
        elif op == "--shards":
            shards = int(name)
        else:
            sys.exit("hf_fixture.py: unknown edit " + op)
    if shards == 1:
        write_st(os.path.join(out, "model.safetensors"), tensors, meta)
        return
    per = -(-len(tensors) // shards)
    wm, total = {}, 0
    for s in range(shards):
        f = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = tensors[s * per:(s + 1) * per]
        write_st(os.path.join(out, f), part, meta)
        for x in part:
            wm[x[0]] = f
            total += len(x[3])
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 5 and a[0] == "fp8":
        cmd_fp8(*a[1:])
    elif len(a) >= 3 and a[0] == "edit":
        cmd_edit(a[1], a[2], a[3:])
    else:
        sys.exit(__doc__)
