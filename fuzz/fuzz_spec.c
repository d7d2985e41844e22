/* fuzz_spec.c — the command-line parsers for neuron, range and number
 * specifications (util.c): parse_neuron "L:N", parse_range "A-B" / "A",
 * parse_long, parse_float; and the token escaping every TSV writer uses
 * (escape_token over utf8_sequence_length), on the raw bytes.
 *
 * Input: one argument string (cut at the first NUL, as argv would be). Besides
 * "no crash", a parse that succeeds must honour its contract: bounds inside
 * [lo, hi], start <= end, neurons non-negative and printing back the same. */
#include <limits.h>
#include <math.h>

#include "fuzz.h"

static void check_range(const char *s, long lo, long hi) {
    long a = 0, b = 0;
    Error e = { 0 };
    if (parse_range(s, lo, hi, &a, &b, &e) == NM_OK) {
        FUZZ_ASSERT(lo <= a && a <= b && b <= hi, "'%s' gave %ld-%ld outside %ld-%ld", s, a, b, lo, hi);
    } else {
        FUZZ_ASSERT(e.code == NM_EINPUT && e.msg[0], "'%s' failed without a message", s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = xstrndup((const char *)data, size); /* stops at the first NUL */
    Error e = { 0 };

    int layer = -1, neuron = -1;
    if (parse_neuron(s, &layer, &neuron, &e) == NM_OK) {
        FUZZ_ASSERT(layer >= 0 && neuron >= 0, "'%s' gave %d:%d", s, layer, neuron);
        char back[64];
        snprintf(back, sizeof back, "%d:%d", layer, neuron);
        int l2 = -1, n2 = -1;
        FUZZ_ASSERT(parse_neuron(back, &l2, &n2, NULL) == NM_OK && l2 == layer && n2 == neuron, "'%s' does not round-trip", back);
    } else {
        FUZZ_ASSERT(e.code == NM_EINPUT && e.msg[0], "'%s' failed without a message", s);
    }

    check_range(s, 0, 1000);
    check_range(s, -5, 5);
    check_range(s, LONG_MIN, LONG_MAX);

    long v;
    if (parse_long(s, &v)) {
        char back[32];
        snprintf(back, sizeof back, "%ld", v);
        long w;
        FUZZ_ASSERT(parse_long(back, &w) && w == v, "'%s' does not round-trip", back);
    }
    double d;
    if (parse_float(s, &d)) FUZZ_ASSERT(isfinite(d), "'%s' parsed to %g", s, d);

    free(s);

    /* Escaping: whatever the bytes, the output fits cap, ends in NUL and holds
     * no raw tab, newline or other control byte. */
    char out[64];
    size_t n = escape_token((const char *)data, size, out, sizeof out);
    FUZZ_ASSERT(n < sizeof out && out[n] == 0 && strlen(out) == n, "escape_token wrote %zu bytes", n);
    for (size_t i = 0; i < n; i++) FUZZ_ASSERT((unsigned char)out[i] >= 0x20 && out[i] != 0x7f, "raw byte 0x%02x", out[i]);
    for (size_t i = 0; i < size && i < 16; i++) {
        int k = utf8_sequence_length(data + i, size - i);
        FUZZ_ASSERT(k >= 0 && k <= 4 && (size_t)k <= size - i, "utf8_sequence_length %d", k);
    }
    return 0;
}
