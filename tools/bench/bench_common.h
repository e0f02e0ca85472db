/* tools/bench/bench_common.h: what the benchmark programs share: a monotonic clock, the peak
 * resident set, and the generated 100M-parameter model that the codec and compression benchmarks
 * time (tools/bench-formats, tools/bench-compress). */
#ifndef JOULE_BENCH_COMMON_H
#define JOULE_BENCH_COMMON_H

/* Seconds on the monotonic clock. */
double bench_now(void);
/* Peak resident set of this process in bytes (-1 when unknown). */
long long bench_peak_rss(void);
/* Writes DIR/big.onnx (+ big.onnx.data, external data): a chain of MatMuls over 4096x4096 float32
 * weights, PARAMS weights in all (at least one layer), every layer different; prints
 * "gen seconds=... params=... path=...". Messages start with PROG. Returns 0, or 1 after
 * printing the error. */
int bench_gen_matmul_chain(const char *prog, const char *dir, long long params);

#endif
