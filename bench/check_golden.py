#!/usr/bin/env python3
"""Compares CLI outputs with a golden case (numpy only): codes identical, floats within 1e-4 of
the tensor's max. usage: check_golden.py GOLDEN_DIR CODES.safetensors RECON.safetensors LABEL"""
import json, struct, sys
import numpy as np

DT = {'F32': np.float32, 'I32': np.int32}


def read(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return {k: np.frombuffer(data[v['data_offsets'][0]:v['data_offsets'][1]], DT[v['dtype']]).reshape(v['shape'])
            for k, v in header.items() if k != '__metadata__'}


golden_dir, codes, recon, label = sys.argv[1:5]
ref, got = read(f'{golden_dir}/expected.safetensors'), {**read(codes), **read(recon)}
ok = True
for name in ('code_pix', 'code_sem'):
    diff = int((got[name] != ref[name]).sum())
    ok &= diff == 0
    print(f'{label}: {name} {diff} of {ref[name].size} codes differ')
for name, ref_name in (('z_q_sem', 'z_q_sem'), ('pooler_output', 'pooler_output'), ('recon', 'recon_from_codes')):
    rel = float(np.abs(got[name] - ref[ref_name]).max() / np.abs(ref[ref_name]).max())
    ok &= rel <= 1e-4
    print(f'{label}: {name} worst rel_to_max {rel:.2e}')
print(f'{label}: {"PASS" if ok else "FAIL"}')
