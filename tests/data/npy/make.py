#!/usr/bin/python3
"""Makes the tiny .npy/.npz fixtures read by tests/unit/test_npy.cpp.

Run from anywhere with Debian's numpy (1.24): /usr/bin/python3 tests/data/npy/make.py
The comment on each line states the values the C++ tests expect (flat, C order).
"""
import io
import os
import zipfile

import numpy as np

d = os.path.dirname(os.path.abspath(__file__))


def save(name, a):
    np.save(os.path.join(d, name), a)


# Little endian, C order, written by np.save (v1 header, padded to 64 bytes).
save("f2.npy", (np.arange(6, dtype="<f2") * 0.5).reshape(2, 3))   # i * 0.5, shape (2, 3)
save("f4.npy", np.arange(6, dtype="<f4").reshape(2, 3) - 2.5)     # i - 2.5, shape (2, 3)
save("f8.npy", np.arange(5, dtype="<f8") / 4)                      # i / 4, shape (5,)
save("i1.npy", np.arange(-3, 3, dtype="i1"))                       # -3..2, shape (6,)
save("u1.npy", np.arange(250, 256, dtype="u1"))                    # 250..255, shape (6,)
save("i2.npy", (np.arange(6) * -1000).astype("<i2").reshape(3, 2)) # -1000 * i, shape (3, 2)
save("i4.npy", np.arange(6, dtype="<i4") * 100000 - 300000)        # 100000 * i - 300000, shape (6,)
save("i8.npy", np.array([-(2**62), -1, 0, 1, 2**62], dtype="<i8"))  # these 5, shape (5,)
save("b1.npy", np.array([[True, False], [True, True]]))            # 1 0 1 1, shape (2, 2)
save("scalar_f8.npy", np.array(3.5, dtype="<f8"))                  # 3.5, shape ()
save("scalar_i4.npy", np.array(-7, dtype="<i4"))                   # -7, shape ()
save("empty_f4.npy", np.zeros((0, 3), dtype="<f4"))                # no values, shape (0, 3)
save("rank4_f4.npy", np.arange(120, dtype="<f4").reshape(2, 3, 4, 5))  # i, shape (2, 3, 4, 5)

# Unsigned types anvil has no dtype for: read into the next wider signed type.
save("u2.npy", np.array([0, 1, 65535], dtype="<u2"))               # -> i32 0 1 65535
save("u4.npy", np.array([0, 4294967295], dtype="<u4"))             # -> i64 0 4294967295
save("u8.npy", np.array([0, 2**63 - 1], dtype="<u8"))              # -> i64 0 9223372036854775807
save("u8_big.npy", np.array([1, 2**64 - 1], dtype="<u8"))          # -> error: does not fit i64

# Big endian.
save("be_f4.npy", np.arange(6, dtype=">f4").reshape(2, 3) - 2.5)  # i - 2.5, shape (2, 3)
save("be_f2.npy", np.arange(4, dtype=">f2") * 0.25)                # i * 0.25, shape (4,)
save("be_f8.npy", np.arange(3, dtype=">f8") * -1.5)                # i * -1.5, shape (3,)
save("be_i2.npy", np.arange(4, dtype=">i2") * -300)                # i * -300, shape (4,)
save("be_i4.npy", np.arange(4, dtype=">i4") * 70000)               # i * 70000, shape (4,)
save("be_i8.npy", np.arange(4, dtype=">i8") * -(2**40))            # i * -2**40, shape (4,)
save("be_u2.npy", np.array([1, 65535], dtype=">u2"))               # -> i32 1 65535

# Fortran order: the logical values are the C-order arange; the bytes on disk are not.
save("fortran_f4.npy", np.asfortranarray(np.arange(24, dtype="<f4").reshape(2, 3, 4)))  # i
save("fortran_i2.npy", np.asfortranarray(np.arange(6, dtype="<i2").reshape(2, 3)))      # i
save("fortran_be_i4.npy", np.asfortranarray(np.arange(6, dtype=">i4").reshape(3, 2)))  # i

# Header versions 2.0 and 3.0 (4-byte header length).
with open(os.path.join(d, "v2_i4.npy"), "wb") as f:
    np.lib.format.write_array(f, np.arange(3, dtype="<i4") + 10, version=(2, 0))  # 10 11 12
with open(os.path.join(d, "v3_f4.npy"), "wb") as f:
    np.lib.format.write_array(f, np.arange(4, dtype="<f4").reshape(2, 2) * 2, version=(3, 0))  # 2i

# npz: stored and deflated. Keys may contain '/' and ':'.
arrays = {
    "a": np.arange(6, dtype="<f4").reshape(2, 3),   # i, shape (2, 3)
    "dir/b:c": np.array([1, -2, 3], dtype="<i8"),   # 1 -2 3, shape (3,)
    "s": np.array(True),                            # 1, shape ()
}
np.savez(os.path.join(d, "savez.npz"), **arrays)
np.savez_compressed(os.path.join(d, "savez_compressed.npz"), **arrays)

# Hostile npz: a good member and a member that is not a .npy file (read_npz must name it).
with zipfile.ZipFile(os.path.join(d, "bad_member.npz"), "w") as z:
    buf = io.BytesIO()
    np.save(buf, np.arange(3, dtype="<i4"))
    z.writestr("good.npy", buf.getvalue())
    z.writestr("broken.npy", b"this is not a npy file")
