#!/usr/bin/python3
"""Pillow reference for large photos: a deterministic photo-like RGB image of any size (integer
arithmetic, re-implemented in test/large-image.test.ts) and the official pixel_values of it, which
the test compares the engine with.

The official preprocessing (open_clip image_transform_v2, eval) at crop size S: torchvision 0.14
Resize(S, BICUBIC) on the PIL image -- the shorter side becomes S, the longer int(S * long / short),
through F_pil.resize, i.e. Pillow's img.resize((w, h), Image.BICUBIC) -- CenterCrop(S) with offsets
int(round((size - S) / 2)), ToTensor (/255 in float32), Normalize(0.5, 0.5) in float32. It is
written here with Pillow and numpy alone (torchvision's calls, inlined), as the golden cases'
pixel_values were made (test/fixtures/golden/*/README.md); Debian 12's python3-pil is Pillow 9.4,
the version of the official environment.

  apt-get install -y python3-pil python3-numpy
  python3 scripts/pillow-ref.py        # the committed fixtures, test/fixtures/large-image/:
                                       # photo-8000x6000.png (48 MP) and .safetensors, photo-10000x10000.safetensors
  python3 scripts/pillow-ref.py --width 10000 --height 10000 --png /tmp/photo.png --out /tmp/photo.safetensors

Each .safetensors holds f32 pixel_values [1, 3, S, S] (S = 64, the tiny model's image size).
"""
import argparse
import json
import struct

import numpy as np
import PIL
from PIL import Image

Image.MAX_IMAGE_PIXELS = None  # up to the engine's 100 MP limit, without Pillow's bomb warning


def photo(width: int, height: int, strip: int = 256) -> np.ndarray:
    """A photo-like uint8 [H, W, 3] image, made in strips of rows to bound memory."""
    out = np.empty((height, width, 3), np.uint8)
    x = np.arange(width, dtype=np.int64)[None, :]
    for y0 in range(0, height, strip):
        y = np.arange(y0, min(y0 + strip, height), dtype=np.int64)[:, None]
        out[y0:y0 + y.shape[0]] = photo_rows(x, y, width, height)
    return out


def photo_rows(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    """Rows y (a column vector) of the photo, in integer arithmetic: sky and ground gradients, a
    sun with concentric rings, a tiled facade with sharp edges, dark lines, a patch of fine noise.
    Mostly smooth (under 1 MB of PNG at 48 MP), with detail at every scale the resize averages."""
    # Sky above the horizon (2/3 of the height), ground below: smooth gradients.
    horizon = 2 * height // 3
    sky = y < horizon
    r = np.where(sky, 60 + 120 * y // horizon + 40 * x // width, 90 + 60 * (y - horizon) // (height - horizon))
    g = np.where(sky, 110 + 100 * y // horizon, 120 - 50 * (y - horizon) // (height - horizon) + 30 * x // width)
    b = np.where(sky, 230 - 90 * y // horizon, 50 + 20 * x // width)
    # The sun: rings whose spacing shrinks away from its centre.
    d2 = (x - 3 * width // 5) ** 2 + (y - height // 3) ** 2
    rings = ((d2 >> 15) & 1) * 40
    sun = d2 < (height // 3) ** 2
    r = np.where(sun, r + rings, r)
    g = np.where(sun, g + rings // 2, g)
    # A facade of 160-pixel tiles with sharp edges on the ground's left half.
    facade = (y >= horizon - height // 6) & (x < width // 2) & (x >= width // 8)
    tile = ((x // 160) + (y // 160)) & 1
    r = np.where(facade, 140 + 70 * tile, r)
    g = np.where(facade, 100 + 50 * tile, g)
    b = np.where(facade, 90 + 30 * tile, b)
    # Dark 3-pixel lines every 211 columns and 173 rows.
    lines = (x % 211 < 3) | (y % 173 < 3)
    r, g, b = (np.where(lines, c // 3, c) for c in (r, g, b))
    # Fine noise (a multiplicative hash) in a 600 x 600 patch near the centre.
    patch = (abs(x - width // 2) < 300) & (abs(y - height // 2) < 300)
    noise = ((x * 2654435761 + y * 40503) >> 7) % 41 - 20
    r, g, b = (np.where(patch, c + noise, c) for c in (r, g, b))
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def official_preprocess(img: Image.Image, S: int) -> np.ndarray:
    """torchvision Resize(S, BICUBIC) + CenterCrop(S) + ToTensor + Normalize(0.5, 0.5): pixel_values f32 [1, 3, S, S]."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = S, int(S * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.BICUBIC)
    top = int(round((new_h - S) / 2.0))
    left = int(round((new_w - S) / 2.0))
    crop = np.asarray(img.crop((left, top, left + S, top + S)), dtype=np.uint8)
    x = crop.astype(np.float32) / np.float32(255)
    pv = (x - np.float32(0.5)) / np.float32(0.5)
    return np.ascontiguousarray(pv.transpose(2, 0, 1)[None])


def write_safetensors(path: str, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    dtypes = {np.dtype(np.float32): 'F32', np.dtype(np.int32): 'I32'}
    header: dict = {'__metadata__': metadata}
    offset = 0
    for name, t in tensors.items():
        header[name] = {'dtype': dtypes[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + t.nbytes]}
        offset += t.nbytes
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text)
        for t in tensors.values():
            f.write(t.astype(t.dtype.newbyteorder('<')).tobytes())


def reference(width: int, height: int, S: int, out: str, png: str | None) -> None:
    img = Image.fromarray(photo(width, height), 'RGB')
    if png:
        img.save(png, optimize=True)
    pv = official_preprocess(img, S)
    write_safetensors(out, {'pixel_values': pv}, {
        'source': f'scripts/pillow-ref.py --width {width} --height {height} --size {S}',
        'pillow': PIL.__version__,
        'numpy': np.__version__,
    })
    print(f'{width}x{height}: {out}' + (f', {png}' if png else ''))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--width', type=int, help='without --width / --height: the committed fixtures')
    ap.add_argument('--height', type=int)
    ap.add_argument('--size', type=int, default=64, help='crop size S (the tiny model: 64)')
    ap.add_argument('--png', help='also write the image as this PNG')
    ap.add_argument('--out', help='the pixel_values .safetensors')
    args = ap.parse_args()
    if args.width is None:
        fixtures = 'test/fixtures/large-image'
        reference(8000, 6000, args.size, f'{fixtures}/photo-8000x6000.safetensors', f'{fixtures}/photo-8000x6000.png')
        reference(10000, 10000, args.size, f'{fixtures}/photo-10000x10000.safetensors', None)
    else:
        reference(args.width, args.height, args.size, args.out, args.png)


if __name__ == '__main__':
    main()
