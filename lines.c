/*
 * Lines of a mailbox, fast: where a body ends, and the wire form of a
 * message. The plain versions go a line at a time with memchr. The vector
 * versions (AVX2; AVX-512 too for lines_body, where it paid) look at 64
 * (lines_body) or 32 (lines_wire) bytes at a time and spend work on a line
 * only where it matters: lines_body only on a line that starts with 'F',
 * lines_wire once per line end or dot to stuff. Profiled on 178 MB (bench/):
 * a memchr call per line cost more than the rest of the scan, and more than
 * the copying in RETR.
 */
#include <stdint.h>
#include <string.h>

#include "lines.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LINES_AVX2 1
#endif

static const char *body_plain(const char *q, const char *e, off_t *size)
{
	const char *line = q, *nl;
	off_t n = 0;

	while ((nl = memchr(line, '\n', e - line))) {
		size_t len = nl - line;

		/* An empty line: it ends the body if a From_ line follows, and
		 * we cannot tell yet when fewer than five bytes do. */
		if ((len == 0 || (len == 1 && *line == '\r')) &&
		    (e - (nl + 1) < 5 || !memcmp(nl + 1, "From ", 5)))
			break;
		n += len - (len && nl[-1] == '\r') + 2;
		line = nl + 1;
	}
	*size += n;
	return line;
}

static const char *wire_plain(const char *p, const char *e, char **op,
    const char *oe, int *bol)
{
	char *o = *op;
	const char *nl;

	if (!*bol)
		return p;	/* mid-line: the caller's own loop goes on */
	while ((nl = memchr(p, '\n', e - p))) {
		size_t len = nl - p;

		if (len + 3 > (size_t)(oe - o))
			break;
		if (*p == '.')
			*o++ = '.';
		len -= len && nl[-1] == '\r';
		memcpy(o, p, len);
		o += len;
		*o++ = '\r';
		*o++ = '\n';
		p = nl + 1;
	}
	*op = o;
	return p;
}

#ifdef LINES_AVX2
#define AVX2 __attribute__((target("avx2,bmi,popcnt")))
#define AVX512 __attribute__((target("avx512f,avx512bw,bmi,popcnt")))
#define INLINE inline __attribute__((always_inline))

/* Of 64 bytes, which are LF, CR and 'F', as bits. */
struct masks {
	uint64_t lf, cr, f;
};

AVX2 static INLINE uint64_t match64(const char *p, __m256i c)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)p);
	__m256i b = _mm256_loadu_si256((const __m256i *)(p + 32));

	return (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, c)) |
	    (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, c)) <<
	    32;
}

AVX2 static INLINE struct masks classify_avx2(const char *p)
{
	struct masks m;

	m.lf = match64(p, _mm256_set1_epi8('\n'));
	m.cr = match64(p, _mm256_set1_epi8('\r'));
	m.f = match64(p, _mm256_set1_epi8('F'));
	return m;
}

/* With AVX-512 a comparison gives the bits at once: a third fewer
 * instructions a block than AVX2's two halves and their masks. */
AVX512 static INLINE struct masks classify_avx512(const char *p)
{
	__m512i v = _mm512_loadu_si512(p);
	struct masks m;

	m.lf = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
	m.cr = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
	m.f = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('F'));
	return m;
}

/*
 * Counts line ends and CR LF pairs by popcount, 64 bytes at a time, and
 * looks only at an 'F' after an LF: the empty line before a From_ line ends
 * in LF LF F or LF CR LF F. The byte before q ended a line, so it counts as
 * an LF; the line it ended was not empty, so q is no From_ line. Inlined
 * into each vector version with its classify.
 */
static INLINE const char *body_blocks(const char *q, const char *e,
    off_t *size, struct masks (*classify)(const char *))
{
	uint64_t lf_in = 1, cr_in = 0, lfs = 0, crlfs = 0;
	const char *b, *s, *t;

	for (b = q; e - b >= 64 + 8; b += 64) {
		struct masks m = classify(b);
		uint64_t crlf = m.lf & (m.cr << 1 | cr_in);
		uint64_t cand = m.f & (m.lf << 1 | lf_in);

		for (; cand; cand &= cand - 1) {
			const char *p = b + __builtin_ctzll(cand);

			if (p == q)
				continue;
			if (p == q + 1 || p[-2] == '\n')
				s = p - 1;
			else if (p[-2] == '\r' && (p == q + 2 || p[-3] == '\n'))
				s = p - 2;
			else
				continue;
			if (memcmp(p, "From ", 5))
				continue;
			/* the separator at s: count [q, s) only */
			if (s >= b) {
				uint64_t below = ((uint64_t)1 << (s - b)) - 1;

				lfs += __builtin_popcountll(m.lf & below);
				crlfs += __builtin_popcountll(crlf & below);
			}
			for (t = s; t < b; t++)
				if (*t == '\n') {
					lfs--;
					crlfs -= t > q && t[-1] == '\r';
				}
			*size += (s - q) + lfs - crlfs;
			return s;
		}
		lfs += __builtin_popcountll(m.lf);
		crlfs += __builtin_popcountll(crlf);
		lf_in = m.lf >> 63;
		cr_in = m.cr >> 63;
	}
	/*
	 * No separator starts before b - 2 (one at b - 2 or b - 1 would have its
	 * 'F' at b or later). Stop after the last LF before that: only b - 2 and
	 * b - 1 can hold line ends that were counted past it.
	 */
	if (b - q < 3 || !(s = memrchr(q, '\n', (b - 2) - q)))
		return q;
	s++;
	for (t = s > b - 2 ? s : b - 2; t < b; t++)
		if (*t == '\n') {
			lfs--;
			crlfs -= t[-1] == '\r';
		}
	*size += (s - q) + lfs - crlfs;
	return s;
}

AVX2 static const char *body_avx2(const char *q, const char *e, off_t *size)
{
	return body_blocks(q, e, size, classify_avx2);
}

AVX512 static const char *body_avx512(const char *q, const char *e,
    off_t *size)
{
	return body_blocks(q, e, size, classify_avx512);
}

/*
 * 32 bytes at a time go out as they are, and then for each byte among them
 * that needs one before it (a CR before an LF that has none, a '.' before a
 * '.' that starts a line), that byte goes in and the rest of the block is
 * stored again one further on. The blocks are taken at a fixed stride, so
 * that loads never wait for the line ends found: taking the next block from
 * after each line end instead cost twice the time.
 */
AVX2 static const char *wire_avx2(const char *p, const char *e, char **op,
    const char *oe, int *bol)
{
	const __m256i lf = _mm256_set1_epi8('\n'), cr = _mm256_set1_epi8('\r');
	const __m256i dot = _mm256_set1_epi8('.');
	const char *start = p;
	char *o = *op;
	unsigned lf_in = *bol, cr_in = 0, m, i;

	/* a block, and a second one for the stores that shift it */
	while (e - p >= 64 && oe - o >= LINES_ROOM) {
		__m256i v = _mm256_loadu_si256((const __m256i *)p);
		unsigned l = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, lf));
		unsigned c = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, cr));
		unsigned d = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, dot));

		m = (l & ~(c << 1 | cr_in)) | (d & (l << 1 | lf_in));
		_mm256_storeu_si256((__m256i *)o, v);
		/* The first insertion unconditionally (with none, it stores
		 * past the block, where the next one goes): most blocks have
		 * one or none, and a branch there would mispredict. */
		i = _tzcnt_u32(m);
		_mm256_storeu_si256((__m256i *)(o + i + 1),
		    _mm256_loadu_si256((const __m256i *)(p + i)));
		o[i] = p[i] == '\n' ? '\r' : '.';
		o += m != 0;
		for (m &= m - 1; m; m &= m - 1) {
			i = _tzcnt_u32(m);
			_mm256_storeu_si256((__m256i *)(o + i + 1),
			    _mm256_loadu_si256((const __m256i *)(p + i)));
			o[i] = p[i] == '\n' ? '\r' : '.';
			o++;
		}
		lf_in = l >> 31;
		cr_in = c >> 31;
		p += 32;
		o += 32;
	}
	if (p > start) {
		if (cr_in) {	/* the byte after that CR decides it: the caller's */
			p--;
			o--;
		}
		*bol = p[-1] == '\n';
	}
	*op = o;
	return p;
}

/* What the CPU has: 0 nothing we use, 1 AVX2, 2 AVX-512 (BW) too. */
static int cpu_level(void)
{
	__builtin_cpu_init();
	return !__builtin_cpu_supports("avx2") ||
	    !__builtin_cpu_supports("popcnt") ||
	    !__builtin_cpu_supports("bmi") ? 0 :
	    __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512bw") ? 2 : 1;
}
#endif

/* The versions in use: the CPU's best, or what lines_use asked for. */
static int in_use = -1;
static const char *const names[] = { "plain", "avx2", "avx512" };

static int vector_level(void)
{
	if (in_use < 0)
#ifdef LINES_AVX2
		in_use = cpu_level();
#else
		in_use = 0;
#endif
	return in_use;
}

int lines_use(const char *name)
{
	int k, have = 0;

#ifdef LINES_AVX2
	have = cpu_level();
#endif
	for (k = 0; k <= have; k++)
		if (!strcmp(name, names[k])) {
			in_use = k;
			return 0;
		}
	return -1;
}

const char *lines_version(void)
{
	return names[vector_level()];
}

const char *lines_body(const char *q, const char *e, off_t *size)
{
	switch (vector_level()) {
#ifdef LINES_AVX2
	case 2:
		return body_avx512(q, e, size);
	case 1:
		return body_avx2(q, e, size);
#endif
	}
	return body_plain(q, e, size);
}

const char *lines_wire(const char *p, const char *e, char **o, const char *oe,
    int *bol)
{
	if (vector_level()) {
#ifdef LINES_AVX2
		return wire_avx2(p, e, o, oe, bol);
#endif
	}
	return wire_plain(p, e, o, oe, bol);
}
