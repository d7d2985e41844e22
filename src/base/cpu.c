/* cpu.c — CPU feature detection and the kernel set in use (see cpu.h).
 *
 * A feature is usable when two things hold. CPUID says the processor
 * implements the instructions. XGETBV (register XCR0) says the operating
 * system has enabled the register state they use, so that it saves and
 * restores it on a context switch: bits 1–2 for the SSE and AVX (YMM)
 * registers, bits 5–7 for AVX-512's mask registers and the upper halves and
 * upper sixteen ZMM registers, bits 17–18 for AMX's tile configuration and
 * tile data. A hypervisor or kernel may leave any of these off; running an
 * instruction whose state is off faults (SIGILL), whatever CPUID says.
 *
 * AMX's tile data (8 KiB per thread) is more: Linux (5.16 and later) keeps
 * it disabled for a process (XFD) until the process asks once, with
 * arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); the first tile
 * instruction without that permission is killed by SIGILL. So detection
 * asks, process-wide, before it ever reports the amx set, and where the
 * kernel refuses (too old, or a signal stack too small for the state) it
 * reports avx512bf16 with a note saying why (cpu_note).
 */
#include "base/cpu.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && !defined(NM_NO_X86)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && !defined(NM_NO_X86) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define ARCH_REQ_XCOMP_PERM 0x1023 /* <asm/prctl.h>, not in every libc's headers */
#define XFEATURE_XTILEDATA 18
#endif

static const char *const names[ISA_COUNT] = { "generic", "avx2", "avx512", "avx512bf16", "amx" };

const char *isa_name(Isa isa) { return isa >= 0 && isa < ISA_COUNT ? names[isa] : "?"; }

int isa_from_name(const char *s, Isa *out) {
    int i = name_index(names, ISA_COUNT, s);
    if (i >= 0) *out = (Isa)i;
    return i >= 0;
}

/* ----------------------------------------------------------------------------
 * Detection, once */

/* Why a CPU with AMX does not get the amx set: "" when it does. */
static char note[160];

#if defined(__x86_64__) && !defined(NM_NO_X86)
static unsigned long long xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

/* The tile data permission (above). NEUROMAP_TEST_AMX_REFUSED=1 plays a
 * refusal, so that the fallback can be tested on any AMX machine. */
static int amx_permitted(void) {
    const char *t = getenv("NEUROMAP_TEST_AMX_REFUSED");
    int err = 0;
#ifdef ARCH_REQ_XCOMP_PERM
    if (t && *t == '1') err = EPERM;
    else if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) err = errno;
#else
    (void)t; /* elsewhere the OS enabling the state in XCR0 is the permission */
#endif
    if (err) snprintf(note, sizeof note, "amx: the OS refused tile data (arch_prctl: %s; Linux >= 5.16 needed): avx512bf16 kernels", strerror(err));
    return !err;
}

static Isa detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return ISA_GENERIC;
    int fma = c >> 12 & 1, osxsave = c >> 27 & 1, avx = c >> 28 & 1, f16c = c >> 29 & 1;
    if (!(osxsave && avx && fma && f16c)) return ISA_GENERIC;
    unsigned long long xcr = xcr0();
    if ((xcr & 0x6) != 0x6) return ISA_GENERIC; /* SSE + YMM state */
    unsigned b7 = 0, d7 = 0, a7_1 = 0, x;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, x, b7, c, d7);
        __cpuid_count(7, 1, a7_1, x, c, d);
    }
    if (!(b7 >> 5 & 1)) return ISA_GENERIC; /* AVX2 */
    if (!(b7 >> 16 & 1) || (xcr & 0xe0) != 0xe0) return ISA_AVX2; /* AVX-512F; opmask + ZMM state */
    if (!(a7_1 >> 5 & 1)) return ISA_AVX512;                      /* AVX512_BF16 */
    int amx = (d7 >> 24 & 1) && (d7 >> 22 & 1);                     /* AMX-TILE, AMX-BF16 */
    if (!amx || (xcr & 0x60000) != 0x60000) return ISA_AVX512BF16;   /* tile config + data state */
    return amx_permitted() ? ISA_AMX : ISA_AVX512BF16;
}
#else
static Isa detect(void) { return ISA_GENERIC; }
#endif

/* -1 until first asked: cpu_best_isa() and cpu_isa() detect on demand. */
static _Atomic int best = -1, chosen = -1;

/* Test-only hook (tests/cli_isa.sh): NEUROMAP_TEST_CPU_ISA=SET makes a CPU
 * with more look like one whose best is SET, so that the error for a set
 * the CPU lacks can be tested on any machine. It can only take sets away. */
static Isa detect_capped(void) {
    Isa isa = detect(), cap;
    const char *s = getenv("NEUROMAP_TEST_CPU_ISA");
    return s && isa_from_name(s, &cap) && cap < isa ? cap : isa;
}

Isa cpu_best_isa(void) {
    int b = atomic_load(&best);
    if (b < 0) atomic_store(&best, b = (int)detect_capped()); /* a race detects twice, the same */
    return (Isa)b;
}

int cpu_has_isa(Isa isa) { return isa >= 0 && isa <= cpu_best_isa(); }

const char *cpu_isa_list(char *buf, size_t size) {
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i <= (int)cpu_best_isa() && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", names[i]);
    return buf;
}

/* ----------------------------------------------------------------------------
 * The set in use */

Isa cpu_isa(void) {
    int c = atomic_load(&chosen);
    return c < 0 ? cpu_best_isa() : (Isa)c;
}

Isa cpu_kernel_isa(void) { return cpu_isa(); }

const char *cpu_isa_label(void) { return names[cpu_isa()]; }

const char *cpu_note(void) {
    cpu_best_isa();
    return note[0] ? note : NULL;
}

int cpu_force_isa(Isa isa, Error *e) {
    char have[96];
    if (!cpu_has_isa(isa))
        return error_set(e, NM_EINPUT, "%s: this CPU has %s", isa_name(isa), cpu_isa_list(have, sizeof have));
    atomic_store(&chosen, (int)isa);
    return NM_OK;
}

int cpu_isa_from_env(Error *e) {
    const char *s = getenv("NEUROMAP_ISA");
    Isa isa;
    char have[96];
    if (!s || !*s) return NM_OK;
    if (!isa_from_name(s, &isa))
        return error_set(e, NM_EINPUT, "NEUROMAP_ISA=%s: not a kernel set (generic, avx2, avx512, avx512bf16, amx)", s);
    if (!cpu_has_isa(isa)) return error_set(e, NM_EINPUT, "NEUROMAP_ISA=%s: this CPU has %s", s, cpu_isa_list(have, sizeof have));
    atomic_store(&chosen, (int)isa);
    return NM_OK;
}
