/* A 4-component JPEG from raw CMYK (Pillow's convention, 0 = no ink) on stdin, written as Adobe
 * files are: inverted samples, an Adobe APP14 marker, colour transform 0 (CMYK) or 2 (YCCK).
 * Pillow cannot write YCCK; scripts/jpeg-ref.py builds this with the system libjpeg.
 *   cc scripts/jpeg-ycck.c -ljpeg -o jpeg-ycck && ./jpeg-ycck W H cmyk|ycck QUALITY < in.cmyk > out.jpg */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  int w = atoi(argv[1]), h = atoi(argv[2]), q = atoi(argv[4]);
  int ycck = strcmp(argv[3], "ycck") == 0;
  unsigned char *px = malloc((size_t)w * h * 4);
  if (fread(px, 4, (size_t)w * h, stdin) != (size_t)w * h) return 3;
  for (size_t i = 0; i < (size_t)w * h * 4; i++) px[i] = 255 - px[i];
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, stdout);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, ycck ? JCS_YCCK : JCS_CMYK);
  jpeg_set_quality(&c, q, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = px + (size_t)c.next_scanline * w * 4;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  free(px);
  return 0;
}
