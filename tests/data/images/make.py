#!/usr/bin/python3
"""Makes the tiny images read by tests/unit/test_image.cpp.

Run with Debian's PIL (python3-pil 9.4): /usr/bin/python3 tests/data/images/make.py
The pixel formulas below are what the C++ tests check (x = column, y = row).
"""
import os

from PIL import Image

d = os.path.dirname(os.path.abspath(__file__))
W, H = 4, 3


def rgb(x, y):
    return (10 * x + 50 * y, 20 + x, 200 - 30 * y)


def grey(x, y):
    return 30 * x + 60 * y


def alpha(x, y):
    return 255 - 20 * x - 5 * y


im = Image.new("RGB", (W, H))
for y in range(H):
    for x in range(W):
        im.putpixel((x, y), rgb(x, y))
im.save(os.path.join(d, "rgb.png"))   # lossless: pixel (x, y) = rgb(x, y)
im.save(os.path.join(d, "rgb.bmp"))   # lossless: same pixels

g = Image.new("L", (W, H))
for y in range(H):
    for x in range(W):
        g.putpixel((x, y), grey(x, y))
g.save(os.path.join(d, "grey.png"))   # lossless: pixel (x, y) = grey(x, y)

a = Image.new("RGBA", (W, H))
for y in range(H):
    for x in range(W):
        a.putpixel((x, y), rgb(x, y) + (alpha(x, y),))
a.save(os.path.join(d, "rgba.png"))   # lossless: RGB = rgb(x, y), alpha = alpha(x, y)

# JPEG is lossy: a solid 16x8 colour at quality 100 decodes within a few levels of it.
j = Image.new("RGB", (16, 8), (200, 100, 50))
j.save(os.path.join(d, "solid.jpg"), quality=100, subsampling=0)  # ~ (200, 100, 50)
