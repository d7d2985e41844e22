#!/usr/bin/env python3
"""gguf_edit.py — test helper: finds the byte offsets of a GGUF file's parts,
patches bytes, and writes split files, so the tests can make corrupt and split
inputs from the fixtures at test time.

  gguf_edit.py offsets FILE              prints NAME=OFFSET lines: header fields, tensor infos, values
  gguf_edit.py put SRC DST OFFSET FMT V  copies SRC to DST with struct FMT value V at OFFSET
  gguf_edit.py split SRC PREFIX N        writes PREFIX-0000k-of-0000N.gguf, as llama.cpp's gguf-split
"""
import struct
import sys

SCALAR = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: 'B', 10: 'Q', 11: 'q', 12: 'd'}


class Cursor:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def get(self, fmt):
        v = struct.unpack_from('<' + fmt, self.data, self.pos)
        self.pos += struct.calcsize('<' + fmt)
        return v[0]

    def string(self):
        n = self.get('Q')
        s = self.data[self.pos:self.pos + n]
        self.pos += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.get('I'), self.get('Q')
            return [self.value(et) for _ in range(n)]
        return self.get(SCALAR[t])


def parse(data):
    c = Cursor(data)
    assert data[:4] == b'GGUF'
    c.pos = 4
    g = {'version': c.get('I'), 'n_tensors_at': c.pos}
    n_tensors = c.get('Q')
    g['n_kv_at'] = c.pos
    n_kv = c.get('Q')
    g['kv_start'] = c.pos
    kvs = []
    for _ in range(n_kv):
        start = c.pos
        key = c.string()
        t = c.get('I')
        value_at = c.pos
        val = c.value(t)
        kvs.append({'key': key, 'type': t, 'value_at': value_at, 'value': val, 'raw': data[start:c.pos]})
    g['kvs'], g['infos_start'] = kvs, c.pos
    align = next((kv['value'] for kv in kvs if kv['key'] == b'general.alignment'), 32)
    tensors = []
    for _ in range(n_tensors):
        t = {'at': c.pos, 'name': c.string()}
        nd = c.get('I')
        t['ne'] = [c.get('Q') for _ in range(nd)]
        t['type_at'] = c.pos
        t['type'] = c.get('I')
        t['offset_at'] = c.pos
        t['offset'] = c.get('Q')
        tensors.append(t)
    g['tensors'], g['align'] = tensors, align
    g['data_start'] = (c.pos + align - 1) // align * align
    starts = sorted(t['offset'] for t in tensors) + [len(data) - g['data_start']]
    for t in tensors:  # a tensor's bytes run to the next tensor (or the end): enough to copy it
        nxt = min(s for s in starts if s > t['offset'])
        t['data'] = data[g['data_start'] + t['offset']:g['data_start'] + nxt]
    return g


def kv_bytes(key, fmt_type, value):
    fmt = SCALAR[fmt_type]
    return struct.pack('<Q', len(key)) + key + struct.pack('<I', fmt_type) + struct.pack('<' + fmt, value)


def write_gguf(path, kv_raw, n_kv, tensors, align=32):
    infos, blob = b'', b''
    for t in tensors:
        infos += struct.pack('<Q', len(t['name'])) + t['name'] + struct.pack('<I', len(t['ne']))
        infos += b''.join(struct.pack('<Q', n) for n in t['ne'])
        infos += struct.pack('<IQ', t['type'], len(blob))
        blob += t['data'] + b'\0' * (-len(t['data']) % align)
    head = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), n_kv) + kv_raw + infos
    with open(path, 'wb') as f:
        f.write(head + b'\0' * (-len(head) % align) + blob)


def split(src, prefix, n):
    g = parse(open(src, 'rb').read())
    ts = g['tensors']
    chunk = (len(ts) + n - 1) // n
    for k in range(n):
        part = ts[k * chunk:(k + 1) * chunk]
        split_kvs = kv_bytes(b'split.no', 2, k) + kv_bytes(b'split.count', 2, n) + kv_bytes(b'split.tensors.count', 5, len(ts))
        kv_raw = (b''.join(kv['raw'] for kv in g['kvs']) if k == 0 else b'') + split_kvs
        n_kv = (len(g['kvs']) if k == 0 else 0) + 3
        write_gguf('%s-%05d-of-%05d.gguf' % (prefix, k + 1, n), kv_raw, n_kv, part)


def offsets(path):
    g = parse(open(path, 'rb').read())
    print('n_tensors=%d' % g['n_tensors_at'])
    print('n_kv=%d' % g['n_kv_at'])
    print('kv_start=%d' % g['kv_start'])
    print('infos_start=%d' % g['infos_start'])
    print('data_start=%d' % g['data_start'])
    for i, t in enumerate(g['tensors'][:2]):
        print('tensor%d_type=%d' % (i, t['type_at']))
        print('tensor%d_offset=%d' % (i, t['offset_at']))
        print('tensor%d_offset_value=%d' % (i, t['offset']))
    for i, kv in enumerate(g['kvs']):  # where each value starts (a string's length, an array's type)
        print('kv%d=%d' % (i, kv['value_at'] - 4 - 8 - len(kv['key'])))
        print('%s=%d' % (kv['key'].decode(), kv['value_at']))


def put(src, dst, offset, fmt, value):
    data = bytearray(open(src, 'rb').read())
    v = value.encode() if fmt.endswith('s') else float(value) if fmt[-1] in 'fd' else int(value, 0)
    struct.pack_into('<' + fmt, data, int(offset), v)
    open(dst, 'wb').write(data)


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'split':
        split(args[0], args[1], int(args[2]))
    elif cmd == 'offsets':
        offsets(args[0])
    elif cmd == 'put':
        put(*args)
    else:
        sys.exit(__doc__)
