"""tests/interop/png_check.py PNG [R,G,B ...]: decodes an 8-bit RGB/RGBA PNG with zlib alone and
checks that it is not blank: at least 16 distinct colours, at least 3% of pixels not white, and
every colour given as R,G,B present (a solid fill of a chart bar proves the SVG was drawn).
Prints the numbers; exits 1 when a check fails."""
import struct
import sys
import zlib


def decode(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise SystemExit(f'{path}: not a PNG')
    pos, idat, width = 8, b'', None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b'IHDR':
            width, height, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise SystemExit(f'{path}: want 8-bit RGB/RGBA, not interlaced')
        elif kind == b'IDAT':
            idat += body
        pos += 12 + length
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main():
    path, want = sys.argv[1], [tuple(int(v) for v in c.split(',')) for c in sys.argv[2:]]
    width, height, bpp, rows = decode(path)
    colours, nonwhite = set(), 0
    for row in rows:
        for x in range(0, width * bpp, bpp):
            px = row[x:x + 3]
            colours.add(px)
            if px != b'\xff\xff\xff':
                nonwhite += 1
    frac = nonwhite / (width * height)
    missing = [c for c in want if bytes(c) not in colours]
    print(f'{path}: {width}x{height}, {len(colours)} colours, {100 * frac:.1f}% not white, '
          f'missing colours: {missing}')
    ok = len(colours) >= 16 and frac >= 0.03 and not missing
    sys.exit(0 if ok else 1)


main()
