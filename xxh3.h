/*
 * XXH3, as every mailbox file hashes with it: libxxhash, and on x86 its own
 * run-time choice of SSE2, AVX2 or AVX-512, the same hashes at twice the
 * speed of its portable entry points on a recent CPU.
 */
#ifndef POP3_XXH3_H
#define POP3_XXH3_H

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xxh_x86dispatch.h>
#endif

#endif
