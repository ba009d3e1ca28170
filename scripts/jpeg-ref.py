#!/usr/bin/python3
"""JPEG fixtures and Pillow's decoding of them, for test/jpeg.test.ts.

The official preprocessing opens images with Pillow 9.4 (`Image.open(path).convert('RGB')`), whose
JPEG decoder is the system libjpeg-turbo (Debian 12: libjpeg62-turbo 2.1.5; islow IDCT, fancy
upsampling). This script writes small JPEGs of every kind people bring (each chroma subsampling,
grey, progressive, restart markers, arithmetic coding, Adobe CMYK and YCCK, odd sizes, an EXIF
orientation) into test/fixtures/jpeg/, with Pillow's RGB of each as a PNG, and the official
pixel_values of one photo (scripts/pillow-ref.py's preprocessing) as safetensors.

  apt-get install -y python3-pil python3-numpy libjpeg-turbo-progs gcc libjpeg62-turbo-dev
  /usr/bin/python3 scripts/jpeg-ref.py      # rewrites test/fixtures/jpeg/

Encoders: Pillow's own (subsampling 4:4:4 / 4:2:2 / 4:2:0, grey, progressive, CMYK, EXIF),
cjpeg (4:4:0, 4:1:1, restart markers, arithmetic coding), and scripts/jpeg-ycck.c (YCCK, which
Pillow and cjpeg cannot write), built here with the system libjpeg.
"""
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import PIL
from PIL import Image, ImageOps, features

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'jpeg')

spec = importlib.util.spec_from_file_location('pillow_ref', os.path.join(HERE, 'pillow-ref.py'))
pillow_ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pillow_ref)


def pattern(w: int, h: int, seed: int = 1) -> np.ndarray:
    """uint8 [h, w, 3]: gradients, saturated colour cells with sharp edges at odd offsets (what
    chroma subsampling and its upsampling change most), one-pixel lines, hashed noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    r = 255 * x // max(w - 1, 1)
    g = 255 * y // max(h - 1, 1)
    b = 128 + ((x * 2654435761 + y * 40503) >> 9) % 61 - 30
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (64, 3))
    palette[::3] = [[255, 0, 0], [0, 0, 255], [0, 255, 0], [255, 255, 0], [255, 0, 255], [0, 0, 0], [255, 255, 255], [0, 255, 255],
                    [200, 20, 60], [10, 200, 90], [90, 10, 200], [250, 128, 0], [0, 128, 250], [128, 0, 250], [40, 40, 40], [220, 220, 220],
                    [255, 0, 0], [0, 0, 255], [0, 255, 0], [255, 255, 0], [255, 0, 255], [0, 0, 0]][: len(palette[::3])]
    cell = ((x + 3) // 7 + 5 * ((y + 2) // 5)) % 64
    inside = (x > w // 5) & (x < 4 * w // 5) & (y > h // 6) & (y < 5 * h // 6)
    r = np.where(inside, palette[cell, 0], r)
    g = np.where(inside, palette[cell, 1], g)
    b = np.where(inside, palette[cell, 2], b)
    line = (x % 11 == 5) | (y % 9 == 4)
    r = np.where(line & ~inside, 255, r)
    g = np.where(line & ~inside, 0, g)
    b = np.where(line & ~inside, 40, b)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def pillow_save(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, 'JPEG', **kw)
    return buf.getvalue()


def cjpeg(img: Image.Image, *args: str) -> bytes:
    with tempfile.NamedTemporaryFile(suffix='.ppm') as f:
        img.save(f.name, 'PPM')
        return subprocess.run(['cjpeg', *args, f.name], check=True, capture_output=True).stdout


def adobe4(img: Image.Image, transform: str, quality: int) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, 'jpeg-ycck')
        subprocess.run(['cc', os.path.join(HERE, 'jpeg-ycck.c'), '-ljpeg', '-o', exe], check=True)
        cmyk = np.asarray(img.convert('CMYK')).copy()
        # Some black ink where the image is dark, so that K is not all zero.
        k = (255 - np.asarray(img.convert('L')).astype(np.int64)) // 2
        cmyk[..., 3] = k
        w, h = img.size
        return subprocess.run([exe, str(w), str(h), transform, str(quality)], input=cmyk.tobytes(), check=True, capture_output=True).stdout


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rgb = lambda w, h, seed=1: Image.fromarray(pattern(w, h, seed), 'RGB')
    cases: list[tuple[str, str, bytes]] = [
        ('s444', '4:4:4, baseline, q90 (Pillow)', pillow_save(rgb(48, 40), quality=90, subsampling=0)),
        ('s422', '4:2:2, baseline, q90 (Pillow)', pillow_save(rgb(48, 40), quality=90, subsampling=1)),
        ('s420', '4:2:0, baseline, q90 (Pillow)', pillow_save(rgb(48, 40), quality=90, subsampling=2)),
        ('s420-q50', '4:2:0, baseline, q50, 96x80 (Pillow)', pillow_save(rgb(96, 80, 2), quality=50, subsampling=2)),
        ('s440', '4:4:0, baseline, q90 (cjpeg -sample 1x2)', cjpeg(rgb(48, 40), '-quality', '90', '-sample', '1x2')),
        ('s411', '4:1:1, baseline, q90 (cjpeg -sample 4x1)', cjpeg(rgb(48, 40), '-quality', '90', '-sample', '4x1')),
        ('grey', 'greyscale, q90 (Pillow, mode L)', pillow_save(rgb(48, 40).convert('L'), quality=90)),
        ('progressive', '4:2:0, progressive, q85 (Pillow)', pillow_save(rgb(48, 40, 3), quality=85, subsampling=2, progressive=True)),
        ('progressive-444', '4:4:4, progressive, q95 (Pillow)', pillow_save(rgb(40, 24, 4), quality=95, subsampling=0, progressive=True)),
        ('restart', '4:2:0, restart marker every MCU row (cjpeg -restart 1)', cjpeg(rgb(48, 40, 5), '-quality', '85', '-restart', '1')),
        ('restart-blocks', '4:2:2, restart marker every 3 MCUs, progressive (cjpeg)', cjpeg(rgb(50, 30, 6), '-quality', '80', '-sample', '2x1', '-restart', '3B', '-progressive')),
        ('arithmetic', '4:2:0, arithmetic coding (cjpeg -arithmetic)', cjpeg(rgb(48, 40, 7), '-quality', '85', '-arithmetic')),
        ('cmyk', 'Adobe CMYK, q90 (Pillow, mode CMYK)', pillow_save(rgb(48, 40, 8).convert('CMYK'), quality=90)),
        ('cmyk-k', 'Adobe CMYK with black ink, q90 (libjpeg, transform 0)', adobe4(rgb(48, 40, 9), 'cmyk', 90)),
        ('ycck', 'Adobe YCCK, q90 (libjpeg, transform 2)', adobe4(rgb(48, 40, 10), 'ycck', 90)),
        ('odd-17x9', '17x9, 4:2:0 (Pillow)', pillow_save(rgb(17, 9, 11), quality=90, subsampling=2)),
        ('odd-1x1', '1x1, 4:2:0 (Pillow)', pillow_save(rgb(1, 1, 12), quality=90, subsampling=2)),
        ('odd-33x65', '33x65, 4:2:0 (Pillow)', pillow_save(rgb(33, 65, 13), quality=90, subsampling=2)),
        ('odd-33x65-422p', '33x65, 4:2:2, progressive (Pillow)', pillow_save(rgb(33, 65, 14), quality=90, subsampling=1, progressive=True)),
        ('odd-65x33-440', '65x33, 4:4:0 (cjpeg)', cjpeg(rgb(65, 33, 15), '-quality', '90', '-sample', '1x2')),
        ('exif6', '4:2:0 with EXIF orientation 6 (rotate 90 clockwise when honoured)', pillow_save(rgb(24, 16, 16), quality=90, subsampling=2, exif=exif_bytes(6))),
    ]
    photo_img = Image.fromarray(pillow_ref.photo(160, 120), 'RGB')
    cases.append(('photo', "scripts/pillow-ref.py's photo at 160x120, 4:2:0, q85: also pixel_values", pillow_save(photo_img, quality=85, subsampling=2)))

    manifest = []
    for name, what, data in cases:
        path = os.path.join(OUT, name + '.jpg')
        with open(path, 'wb') as f:
            f.write(data)
        with Image.open(path) as im:
            mode = im.mode
            out = im.convert('RGB')
        out.save(os.path.join(OUT, name + '.png'))
        entry = {'name': name, 'what': what, 'mode': mode, 'width': out.width, 'height': out.height, 'bytes': len(data)}
        if name == 'exif6':
            with Image.open(path) as im:
                ImageOps.exif_transpose(im).convert('RGB').save(os.path.join(OUT, name + '.transposed.png'))
        if name == 'photo':
            with Image.open(path) as im:
                pv = pillow_ref.official_preprocess(im.convert('RGB'), 64)
            pillow_ref.write_safetensors(os.path.join(OUT, 'photo.safetensors'), {'pixel_values': pv}, {
                'source': 'scripts/jpeg-ref.py: official pixel_values (size 64) of photo.jpg',
                'pillow': PIL.__version__,
                'numpy': np.__version__,
            })
        manifest.append(entry)
        print(f'{name:16s} {mode:5s} {out.width}x{out.height} {len(data)} bytes  {what}')
    with open(os.path.join(OUT, 'cases.json'), 'w') as f:
        json.dump({'pillow': PIL.__version__, 'libjpeg': features.version('jpg'), 'cases': manifest}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    sys.exit(main())
