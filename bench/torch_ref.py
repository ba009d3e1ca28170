#!/usr/bin/env python3
"""PyTorch eager reference of DualToken's shapes (model_config_siglip_384_rvq8), random weights.

Not the official code: the same computation written with torch.nn.functional so that the GPU
machine can time what PyTorch eager does for the same work as `dualtoken bench`: fp32 with TF32
off (the engine computes in f32), and bf16 (weights and activations cast), the figure a user of
PyTorch on a GPU would compare with. images/s from the median run. Prints a table, writes JSON.
usage: python3 bench/torch_ref.py [--batch 1,4] [--reps 5] [--dtype fp32,bf16] [--json OUT]
"""
import argparse, json, math, time
import torch
import torch.nn.functional as F

C, I, LAYERS, HEADS, P, S = 1152, 4304, 27, 16, 14, 384
G = S // P
L = G * G
E, N_EMBED, DEPTH = 32, 16384, 8
L_SHORT, L_RECON, L_SEM = 4, 6, 26
CH, CH_MULT, RES_BLOCKS, ATTN_RES, DEC_IN, LATENT = 128, [1, 1, 4, 4, 8], 2, [24], 1024, 24


def sdpa(q, k, v, is_causal=False):
    """F.scaled_dot_product_attention where torch has it (>= 2.0), else the same math."""
    if hasattr(F, 'scaled_dot_product_attention'):
        return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if is_causal:
        n = s.shape[-1]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=s.device).triu(1), float('-inf'))
    return s.softmax(-1) @ v


def lin(cin, cout, dev):
    return (torch.randn(cout, cin, device=dev) / math.sqrt(cin), torch.randn(cout, device=dev) * 0.05)


def ln(x, eps):
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def gelu(x):
    return F.gelu(x, approximate='tanh')


def vit_layer(x, w):
    h = ln(x, 1e-6)
    B = x.shape[0]
    q, k, v = (F.linear(h, *w[n]).view(B, -1, HEADS, C // HEADS).transpose(1, 2) for n in ('q', 'k', 'v'))
    a = sdpa(q, k, v).transpose(1, 2).reshape(B, -1, C)
    x = x + F.linear(a, *w['o'])
    return x + F.linear(gelu(F.linear(ln(x, 1e-6), *w['fc1'])), *w['fc2'])


def attn_projection(x, w, cin, cout):
    heads = C // E
    B, n, _ = x.shape
    qkv = F.linear(ln(x, 1e-5), w['qkv'][0], w['qkv'][1]).view(B, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
    causal = cin < cout
    a = sdpa(qkv[0], qkv[1], qkv[2], is_causal=causal)
    a = a.transpose(1, 2).reshape(B, n, -1) if causal else a.mean(dim=1)
    y = F.linear(ln(x, 1e-5), *w['proj']) + F.linear(a, *w['aproj'])
    z = ln(ln(y, 1e-5), 1e-6)
    return y + F.linear(gelu(F.linear(z, *w['w0'])) * F.linear(z, *w['w1']), *w['w2'])


def make_attn_projection(cin, cout, dev):
    aout = cout if cin > cout else C
    return {'qkv': (torch.randn(3 * C, cin, device=dev) / math.sqrt(cin), torch.randn(3 * C, device=dev) * 0.05),
            'proj': lin(cin, cout, dev), 'aproj': lin(aout, aout, dev),
            'w0': lin(cout, 2 * cout, dev), 'w1': lin(cout, 2 * cout, dev), 'w2': lin(2 * cout, cout, dev)}


def rq(x, cb, norms):
    r = x.reshape(-1, E)
    codes, total = [], torch.zeros_like(r)
    for _ in range(DEPTH):
        d = norms[None, :] - 2 * r @ cb.T  # |r|^2 is the same for every code
        c = d.argmin(dim=1)
        codes.append(c)
        q = cb[c]
        r = r - q
        total = total + q
    return torch.stack(codes, 1), total.view(x.shape)


def gn(x, silu=True):
    y = F.group_norm(x, 32, eps=1e-6)
    return F.silu(y) if silu else y


def conv(cin, cout, k, dev):
    return (torch.randn(cout, cin, k, k, device=dev) / math.sqrt(cin * k * k), torch.randn(cout, device=dev) * 0.05)


def make_block(cin, cout, dev, k1=3):
    b = {'c1': conv(cin, cout, k1, dev), 'c2': conv(cout, cout, 3, dev)}
    if cin != cout:
        b['nin'] = conv(cin, cout, 1, dev)
    return b


def block(x, b):
    k1 = b['c1'][0].shape[-1]
    h = F.conv2d(gn(x), *b['c1'], padding=k1 // 2)
    h = F.conv2d(gn(h), *b['c2'], padding=1)
    return (F.conv2d(x, *b['nin']) if 'nin' in b else x) + h


def make_attn(c, dev):
    return {n: conv(c, c, 1, dev) for n in ('q', 'k', 'v', 'o')}


def attn_block(x, a):
    B, c, h, w = x.shape
    n = gn(x, silu=False)
    q, k, v = (F.conv2d(n, *a[t]).flatten(2).transpose(1, 2) for t in ('q', 'k', 'v'))
    o = sdpa(q[:, None], k[:, None], v[:, None])[:, 0]
    return x + F.conv2d(o.transpose(1, 2).reshape(B, c, h, w), *a['o'])


def build(dev):
    m = {'patch': (torch.randn(C, 3, P, P, device=dev) / math.sqrt(3 * P * P), torch.randn(C, device=dev) * 0.05),
         'pos': torch.randn(L, C, device=dev) * 0.02,
         'layers': [{'q': lin(C, C, dev), 'k': lin(C, C, dev), 'v': lin(C, C, dev), 'o': lin(C, C, dev),
                     'fc1': lin(C, I, dev), 'fc2': lin(I, C, dev)} for _ in range(LAYERS)],
         'head_in': (torch.randn(3 * C, C, device=dev) / math.sqrt(C), torch.randn(3 * C, device=dev) * 0.05),
         'head_out': lin(C, C, dev), 'head_fc1': lin(C, I, dev), 'head_fc2': lin(I, C, dev),
         'probe': torch.randn(1, 1, C, device=dev),
         'pre_short': make_attn_projection(C, E, dev), 'pre_pix': make_attn_projection(C, E, dev),
         'pre_sem': make_attn_projection(C, E, dev), 'post_sem': make_attn_projection(E, C, dev),
         'post_pix': make_attn_projection(E, C, dev),
         'cb': torch.randn(N_EMBED, E, device=dev)}
    m['cb_norms'] = (m['cb'] ** 2).sum(1)
    m['pq'] = make_block(C, DEC_IN, dev, k1=1)
    c = CH * CH_MULT[-1]
    m['conv_in'] = conv(DEC_IN, c, 3, dev)
    m['mid'] = [make_block(c, c, dev), make_attn(c, dev), make_block(c, c, dev)]
    levels, res = [], S // 2 ** (len(CH_MULT) - 1)
    for i in reversed(range(len(CH_MULT))):
        out, lv = CH * CH_MULT[i], []
        for _ in range(RES_BLOCKS + 1):
            lv.append(('block', make_block(c, out, dev)))
            c = out
            if res in ATTN_RES:
                lv.append(('attn', make_attn(c, dev)))
        if i != 0:
            lv.append(('up', conv(c, c, 3, dev)))
            res *= 2
        levels.append(lv)
    m['levels'], m['conv_out'] = levels, conv(c, 3, 3, dev)
    return m


def encode(m, px):
    B = px.shape[0]
    x = F.conv2d(px, *m['patch'], stride=P).flatten(2).transpose(1, 2) + m['pos']
    for i, w in enumerate(m['layers']):
        x = vit_layer(x, w)
        n = i + 1
        if n == L_SHORT:
            s = attn_projection(x, m['pre_short'], C, E)
        if n == L_RECON:
            p = attn_projection(x, m['pre_pix'], C, E)
        if n == L_SEM:
            code_pix, _ = rq(p + 0.6 * s, m['cb'], m['cb_norms'])
            code_sem, zq = rq(attn_projection(x, m['pre_sem'], C, E), m['cb'], m['cb_norms'])
            x = attn_projection(zq, m['post_sem'], E, C)
    h = ln(x, 1e-6)
    q = F.linear(m['probe'].expand(B, 1, C), m['head_in'][0][:C], m['head_in'][1][:C])
    k = F.linear(h, m['head_in'][0][C:2 * C], m['head_in'][1][C:2 * C])
    v = F.linear(h, m['head_in'][0][2 * C:], m['head_in'][1][2 * C:])
    sh = lambda t: t.view(B, -1, HEADS, C // HEADS).transpose(1, 2)
    r = F.linear(sdpa(sh(q), sh(k), sh(v)).transpose(1, 2).reshape(B, 1, C), *m['head_out'])
    pooled = r + F.linear(gelu(F.linear(ln(r, 1e-6), *m['head_fc1'])), *m['head_fc2'])
    return code_pix, code_sem, x, pooled[:, 0]


def decode(m, codes):
    B = codes.shape[0]
    z = m['cb'][codes].sum(1).view(B, L, E)
    f = attn_projection(z, m['post_pix'], E, C).transpose(1, 2).reshape(B, C, G, G)
    x = F.interpolate(f, size=(LATENT, LATENT), mode='bilinear', align_corners=False)
    x = F.conv2d(block(x, m['pq']), *m['conv_in'], padding=1)
    x = attn_block(block(x, m['mid'][0]), m['mid'][1])
    x = block(x, m['mid'][2])
    for lv in m['levels']:
        for kind, w in lv:
            if kind == 'block':
                x = block(x, w)
            elif kind == 'attn':
                x = attn_block(x, w)
            else:
                x = F.conv2d(F.interpolate(x, scale_factor=2.0, mode='nearest'), *w, padding=1)
    return F.conv2d(gn(x), *m['conv_out'], padding=1)


def cast(m, dtype):
    """The model's weights (nested dicts, lists and tuples of tensors) with every float tensor in `dtype`."""
    if isinstance(m, dict):
        return {k: cast(v, dtype) for k, v in m.items()}
    if isinstance(m, (list, tuple)):
        return type(m)(cast(v, dtype) for v in m)
    if torch.is_tensor(m) and m.is_floating_point():
        return m.to(dtype)
    return m


def timed(fn, reps, sync):
    t = time.perf_counter(); fn(); sync(); first = (time.perf_counter() - t) * 1000
    ms = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); sync(); ms.append((time.perf_counter() - t) * 1000)
    return first, ms


def main():
    global LAYERS, L_SEM, L_RECON, L_SHORT
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', default='1,4')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--dtype', default='fp32,bf16', help='fp32 (TF32 off) and/or bf16: weights and activations in that type')
    ap.add_argument('--json')
    ap.add_argument('--layers', type=int, default=LAYERS, help='fewer ViT layers for a smoke run')
    a = ap.parse_args()
    if a.layers != LAYERS:
        LAYERS, L_SHORT, L_RECON, L_SEM = a.layers, 1, 1, a.layers
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize if dev == 'cuda' else (lambda: None)
    name = torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'
    torch.manual_seed(0)
    results = []
    dtypes = {'fp32': torch.float32, 'bf16': torch.bfloat16}
    with torch.no_grad():
        m32 = build(dev)
        for dt in a.dtype.split(','):
            m = cast(m32, dtypes[dt])
            for B in [int(b) for b in a.batch.split(',')]:
                px = (torch.rand(B, 3, S, S, device=dev) * 2 - 1).to(dtypes[dt])
                codes = torch.randint(0, N_EMBED, (B, DEPTH, L), device=dev)
                for stage, fn in (('encode', lambda: encode(m, px)), ('decode', lambda: decode(m, codes))):
                    first, ms = timed(fn, a.reps, sync)
                    med = sorted(ms)[len(ms) // 2]
                    # images/s from the median run, as `dualtoken bench` reports it
                    results.append({'stage': stage, 'dtype': dt, 'batch': B, 'firstMs': first, 'ms': ms, 'bestMs': min(ms), 'medianMs': med, 'imagesPerS': 1000 * B / med})
                    print(f'torch {dt} {stage} B={B}: first {first:.1f} ms, best {min(ms):.2f} ms, median {med:.2f} ms, {1000 * B / med:.1f} images/s')
            del m
    out = {'device': name, 'torch': torch.__version__, 'tf32': False, 'results': results,
           'peakMB': torch.cuda.max_memory_allocated() / 1e6 if dev == 'cuda' else None}
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
