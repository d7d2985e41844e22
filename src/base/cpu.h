/* cpu.h — what this CPU can run, and which kernel set the program uses.
 *
 * One binary runs on any x86-64 (SSE4.2 and up) and on other architectures
 * through the portable C paths. The wider kernels are compiled for their
 * instruction set only (per function) and chosen at run time: a kernel set
 * is usable when the CPU has the instructions (CPUID) and the operating
 * system saves their registers across context switches (XGETBV): a CPU can
 * have AVX-512 that the kernel has not enabled.
 *
 * The sets are ordered: each one includes everything below it.
 */
#ifndef NEUROMAP_CPU_H
#define NEUROMAP_CPU_H

#include "base/util.h"

typedef enum {
    ISA_GENERIC,    /* portable C */
    ISA_AVX2,       /* AVX2 + FMA + F16C: 8 floats per vector */
    ISA_AVX512,     /* AVX-512F: 16 floats per vector */
    ISA_AVX512BF16, /* AVX-512 + BF16 dot products (the prefilter's pass) */
    ISA_AMX,        /* AVX-512 BF16 + AMX tiles (the BF16 pass on tiles; the rest avx512bf16's) */
    ISA_COUNT
} Isa;

/* "generic", "avx2", "avx512", "avx512bf16", "amx". */
const char *isa_name(Isa isa);
/* A name above → its Isa; 0 when none. */
int isa_from_name(const char *s, Isa *out);

/* 1 when this CPU (and its OS) can run the set. */
int cpu_has_isa(Isa isa);
/* The best set this CPU has. */
Isa cpu_best_isa(void);
/* "generic, avx2, avx512" — every set this CPU has, into buf. */
const char *cpu_isa_list(char *buf, size_t size);

/* The set in use: the best one, unless forced by cpu_force_isa (or by the
 * environment, cpu_isa_from_env). */
Isa cpu_isa(void);
/* The set whose kernels actually run: cpu_isa() (every set has kernels now;
 * amx runs avx512bf16's except the BF16 product). Kernels dispatch on this. */
Isa cpu_kernel_isa(void);
/* The set's name, for --version and reports. */
const char *cpu_isa_label(void);
/* A line on why the best set is lower than the CPU's (the OS refused AMX
 * tile data), or NULL. */
const char *cpu_note(void);

/* Forces a set (tests, bug reports): NM_EINPUT naming what the CPU has
 * when it lacks that one. Call before any thread starts using kernels. */
int cpu_force_isa(Isa isa, Error *e);
/* Reads NEUROMAP_ISA (unset or empty: the best set); a name that is no set,
 * or a set the CPU lacks, is an NM_EINPUT error naming the variable. */
int cpu_isa_from_env(Error *e);

/* NM_INTERNAL_BEGIN */
/* ----------------------------------------------------------------------------
 * For the kernel files (src/tensor): NM_X86 is 1 where they may hold x86
 * code — x86-64, and not the portable build (-DNM_NO_X86) — with the
 * intrinsics included; kernel_isa() is the set their entry points switch on,
 * always ISA_GENERIC where no x86 code is compiled. */
#if defined(__x86_64__) && !defined(NM_NO_X86)
#include <immintrin.h>
#define NM_X86 1
#else
#define NM_X86 0
#endif
static inline Isa kernel_isa(void) { return NM_X86 ? cpu_kernel_isa() : ISA_GENERIC; }
/* NM_INTERNAL_END */

#endif
