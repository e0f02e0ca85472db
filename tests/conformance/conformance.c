/* tests/conformance/conformance.c: runs the ONNX backend tests (model.onnx plus
 * test_data_set_N/{input,output}_K.pb folders, as Debian's libonnx-testdata ships them) through
 * joule's engine with one thread (--threads to change it) and compares every output with |a-e| <= 1e-5 + 1e-3*|e| (exact
 * for integers and bool; NaN equals NaN). Each test ends as pass, fail, unsupported (joule said
 * JOULE_ERR_UNSUPPORTED: an op, dtype or feature it does not have) or error.
 *
 * The statuses go to a results file and are compared with the checked-in expectations
 * (tests/conformance/expected.txt): a test expected to pass that no longer does is a regression
 * and makes the program exit 1. Newly passing tests are listed; --update rewrites the file. Tests
 * whose every op is in joule's op table but that do not pass are listed as gaps. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "formats/onnx_internal.h"
#include "formats/ops/ops.h"
#include "joule/joule.h"

static const char *const groups[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};

typedef enum tstatus { T_PASS, T_FAIL, T_UNSUPPORTED, T_ERROR, T_NONE } tstatus;
static const char *const status_names[] = {"pass", "fail", "unsupported", "error", "none"};

typedef struct test_result {
    char *name;     /* "node/test_abs" */
    tstatus status;
    char msg[512];
    bool ops_known; /* every node's op is in joule's op table */
    tstatus expected;
    double seconds;
} test_result;

/* snprintf that may cut the text short (messages and paths are bounded on purpose). */
static void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t size, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, size, f, ap);
    va_end(ap);
}

typedef struct str_list {
    char **v;
    size_t n, cap;
} str_list;

static int str_push(str_list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static void str_free(str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of subdirectories of dir starting with prefix. */
static int list_dirs(const char *dir, const char *prefix, str_list *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && str_push(out, e->d_name)) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return 0;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* One line: newlines and tabs in a message become spaces. */
static void flatten(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

/* ---- comparing ---- */

static bool close_enough(double a, double e)
{
    if (isnan(a) || isnan(e))
        return isnan(a) && isnan(e);
    if (a == e)
        return true;
    return fabs(a - e) <= 1e-5 + 1e-3 * fabs(e);
}

static void dims_str(const joule_tensor *t, char *buf, size_t size)
{
    size_t off = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->rank && off < size; d++)
        off += (size_t)snprintf(buf + off, size - off, "%s%lld", d ? "," : "", (long long)t->dims[d]);
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

/* Compares output `name`; writes why it differs into msg. */
static bool compare(const char *name, const joule_tensor *a, const joule_tensor *e, char *msg,
                    size_t size)
{
    if (!a) {
        snprintf(msg, size, "output '%s': no tensor", name);
        return false;
    }
    char da[160], de[160];
    dims_str(a, da, sizeof da);
    dims_str(e, de, sizeof de);
    if (a->dtype != e->dtype || a->rank != e->rank || a->count != e->count ||
        (a->rank && memcmp(a->dims, e->dims, (size_t)a->rank * sizeof *a->dims) != 0)) {
        snprintf(msg, size, "output '%s': got %s %s, expected %s %s", name,
                 joule_dtype_name(a->dtype), da, joule_dtype_name(e->dtype), de);
        return false;
    }
    const joule_dtype_traits *tr = joule_dtype_info(a->dtype);
    if (a->dtype == JOULE_STRING) {
        const joule_string *x = a->data, *y = e->data;
        for (size_t i = 0; i < a->count; i++)
            if (x[i].len != y[i].len || (x[i].len && memcmp(x[i].ptr, y[i].ptr, x[i].len) != 0)) {
                snprintf(msg, size, "output '%s': string %zu differs", name, i);
                return false;
            }
        return true;
    }
    if (a->dtype == JOULE_F64 || (tr->is_float && tr->to_f32)) {
        for (size_t i = 0; i < a->count; i++) {
            double x = a->dtype == JOULE_F64 ? ((const double *)a->data)[i] : tr->to_f32(a->data, i);
            double y = a->dtype == JOULE_F64 ? ((const double *)e->data)[i] : tr->to_f32(e->data, i);
            if (!close_enough(x, y)) {
                snprintf(msg, size, "output '%s' %s: element %zu is %.9g, expected %.9g", name, da,
                         i, x, y);
                return false;
            }
        }
        return true;
    }
    if (a->nbytes != e->nbytes || (a->nbytes && memcmp(a->data, e->data, a->nbytes) != 0)) {
        size_t i = 0;
        if (tr->to_f32)
            while (i < a->count && tr->to_f32(a->data, i) == tr->to_f32(e->data, i))
                i++;
        if (tr->to_f32 && i < a->count)
            snprintf(msg, size, "output '%s' %s: element %zu is %.9g, expected %.9g", name, da, i,
                     (double)tr->to_f32(a->data, i), (double)tr->to_f32(e->data, i));
        else
            snprintf(msg, size, "output '%s' %s: bytes differ", name, da);
        return false;
    }
    return true;
}

/* ---- running one test ---- */

typedef struct pb_set {
    size_t n;
    joule_tensor **t;
    char **names;
} pb_set;

static void pb_free(pb_set *p)
{
    for (size_t i = 0; i < p->n; i++) {
        joule_tensor_free(p->t[i]);
        free(p->names[i]);
    }
    free(p->t);
    free(p->names);
    memset(p, 0, sizeof *p);
}

/* Reads dir/prefix_0.pb, prefix_1.pb, ... until one is missing. */
static joule_status read_pbs(const char *dir, const char *prefix, pb_set *out, joule_error *err)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    for (size_t k = 0;; k++) {
        snprintf(path, sizeof path, "%s/%s_%zu.pb", dir, prefix, k);
        if (!file_exists(path))
            return JOULE_OK;
        joule_tensor **t = realloc(out->t, (k + 1) * sizeof *t);
        if (!t)
            return joule_fail(err, JOULE_ERR_NOMEM, "out of memory");
        out->t = t;
        char **names = realloc(out->names, (k + 1) * sizeof *names);
        if (!names)
            return joule_fail(err, JOULE_ERR_NOMEM, "out of memory");
        out->names = names;
        out->t[k] = NULL;
        out->names[k] = NULL;
        out->n = k + 1;
        joule_status st = joule_tensor_from_pb_file(path, &out->t[k], &out->names[k], err);
        if (st)
            return st;
    }
}

/* Index into pbs for graph value v at position pos: by the tensor's name when it has one that
 * matches, else by position. SIZE_MAX when there is none. */
static size_t match_pb(const pb_set *pbs, const joule_value *v, size_t pos)
{
    for (size_t k = 0; k < pbs->n; k++)
        if (pbs->names[k] && v->name && strcmp(pbs->names[k], v->name) == 0)
            return k;
    return pos < pbs->n ? pos : SIZE_MAX;
}

static tstatus status_of(joule_status st)
{
    return st == JOULE_ERR_UNSUPPORTED ? T_UNSUPPORTED : T_ERROR;
}

static tstatus run_test(const char *dir, int threads, test_result *r)
{
    char path[4096];
    joule_error err = {{0}};
    joule_model *m = NULL;
    joule_session *s = NULL;
    pb_set in = {0}, out = {0};
    str_list sets = {0};
    joule_input_shape *shapes = NULL;
    const joule_tensor **feeds = NULL;
    tstatus ts = T_ERROR;
    joule_status st;

    fmt(path, sizeof path, "%s/model.onnx", dir);
    if ((st = joule_model_load(path, &m, &err))) {
        fmt(r->msg, sizeof r->msg, "load: %s", err.msg);
        ts = status_of(st);
        goto done;
    }
    r->ops_known = true;
    for (size_t i = 0; i < m->graph->n_nodes; i++) {
        const joule_node *n = m->graph->nodes[i];
        if (!joule_op_find(n->domain ? n->domain : "", n->op_type))
            r->ops_known = false;
    }
    for (size_t i = 0; i < m->graph->n_inputs; i++) {
        const joule_value *v = m->graph->inputs[i];
        if (!v->data && v->dtype == JOULE_UNDEFINED) {
            fmt(r->msg, sizeof r->msg, "input '%s' is not a tensor (sequence, map or optional)",
                     v->name);
            ts = T_UNSUPPORTED;
            goto done;
        }
    }
    for (size_t i = 0; i < m->graph->n_outputs; i++) {
        const joule_value *v = m->graph->outputs[i];
        if (v->dtype == JOULE_UNDEFINED) {
            fmt(r->msg, sizeof r->msg, "output '%s' is not a tensor (sequence, map or optional)",
                     v->name);
            ts = T_UNSUPPORTED;
            goto done;
        }
    }
    if (list_dirs(dir, "test_data_set_", &sets) || sets.n == 0) {
        fmt(r->msg, sizeof r->msg, "no test_data_set_* folders");
        goto done;
    }

    /* fed inputs of the graph in declared order, their shapes from the first data set */
    size_t n_fed = 0;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        if (!m->graph->inputs[i]->data)
            n_fed++;
    shapes = calloc(n_fed ? n_fed : 1, sizeof *shapes);
    feeds = calloc(n_fed ? n_fed : 1, sizeof *feeds);
    if (!shapes || !feeds) {
        fmt(r->msg, sizeof r->msg, "out of memory");
        goto done;
    }
    for (size_t d = 0; d < sets.n; d++) {
        char sdir[4096];
        fmt(sdir, sizeof sdir, "%s/%s", dir, sets.v[d]);
        pb_free(&in);
        pb_free(&out);
        if ((st = read_pbs(sdir, "input", &in, &err)) || (st = read_pbs(sdir, "output", &out, &err))) {
            fmt(r->msg, sizeof r->msg, "%s: %s", sets.v[d], err.msg);
            ts = status_of(st);
            goto done;
        }
        if (!s) {
            size_t k = 0;
            for (size_t i = 0; i < m->graph->n_inputs; i++) {
                const joule_value *v = m->graph->inputs[i];
                if (v->data)
                    continue;
                size_t p = match_pb(&in, v, k);
                if (p == SIZE_MAX) {
                    fmt(r->msg, sizeof r->msg, "%s: no data for input '%s'", sets.v[d],
                             v->name);
                    goto done;
                }
                shapes[k].name = v->name;
                shapes[k].shape.rank = in.t[p]->rank;
                for (int j = 0; j < in.t[p]->rank; j++)
                    shapes[k].shape.dims[j].size = in.t[p]->dims[j];
                k++;
            }
            joule_session_options opt = {
                .backend = JOULE_BACKEND_CPU,
                .threads = threads,
                .input_shapes = shapes,
                .n_input_shapes = n_fed,
            };
            if ((st = joule_session_create(m, &opt, &s, &err))) {
                fmt(r->msg, sizeof r->msg, "create: %s", err.msg);
                ts = status_of(st);
                goto done;
            }
        }
        size_t n = joule_session_n_inputs(s);
        for (size_t i = 0; i < n; i++) {
            size_t p = match_pb(&in, joule_session_input(s, i), i);
            if (p == SIZE_MAX) {
                fmt(r->msg, sizeof r->msg, "%s: no data for input '%s'", sets.v[d],
                         joule_session_input(s, i)->name);
                goto done;
            }
            feeds[i] = in.t[p];
            /* numpy has no bfloat16: the ONNX test data stores such tensors as uint16 bits */
            if (in.t[p]->dtype == JOULE_U16 && joule_session_input(s, i)->dtype == JOULE_BF16)
                in.t[p]->dtype = JOULE_BF16;
        }
        if ((st = joule_session_run(s, feeds, n, &err))) {
            fmt(r->msg, sizeof r->msg, "%s: run: %s", sets.v[d], err.msg);
            ts = status_of(st);
            goto done;
        }
        size_t n_out = joule_session_n_outputs(s);
        for (size_t o = 0; o < n_out; o++) {
            const joule_value *v = joule_session_output_value(s, o);
            size_t p = match_pb(&out, v, o);
            if (p == SIZE_MAX)
                continue; /* an optional output the test does not check */
            const joule_tensor *got = joule_session_output(s, o);
            if (got && got->dtype == JOULE_BF16 && out.t[p]->dtype == JOULE_U16)
                out.t[p]->dtype = JOULE_BF16;
            char why[400];
            if (!compare(v->name, got, out.t[p], why, sizeof why)) {
                fmt(r->msg, sizeof r->msg, "%s: %s", sets.v[d], why);
                ts = T_FAIL;
                goto done;
            }
        }
    }
    ts = T_PASS;
done:
    pb_free(&in);
    pb_free(&out);
    str_free(&sets);
    free(shapes);
    free(feeds);
    joule_session_free(s);
    joule_model_free(m);
    flatten(r->msg);
    return ts;
}

/* ---- expectations ---- */

static tstatus parse_status(const char *s)
{
    for (int i = 0; i < T_NONE; i++)
        if (strcmp(s, status_names[i]) == 0)
            return (tstatus)i;
    return T_NONE;
}

static int cmp_result(const void *a, const void *b)
{
    return strcmp(((const test_result *)a)->name, ((const test_result *)b)->name);
}

/* Fills r[i].expected from path ("name status" lines, '#' comments). Missing file: all T_NONE. */
static int read_expected(const char *path, test_result *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        r[i].expected = T_NONE;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char name[512], st[64];
        if (sscanf(line, "%511s %63s", name, st) != 2)
            continue;
        test_result key = {.name = name};
        test_result *hit = bsearch(&key, r, n, sizeof *r, cmp_result);
        if (hit)
            hit->expected = parse_status(st);
    }
    fclose(f);
    return 0;
}

static int write_lines(const char *path, const test_result *r, size_t n, bool with_msg,
                       const char *header)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    if (header)
        fputs(header, f);
    for (size_t i = 0; i < n; i++) {
        if (with_msg && r[i].msg[0])
            fprintf(f, "%s %s %s\n", r[i].name, status_names[r[i].status], r[i].msg);
        else
            fprintf(f, "%s %s\n", r[i].name, status_names[r[i].status]);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: conformance [--data DIR] [--expected FILE] [--results FILE] [--update]\n"
               "                   [--filter SUBSTRING] [--threads N (default 1; 0 = all cores)]\n"
               "                   [--verbose]\n");
}

int main(int argc, char **argv)
{
    const char *data = getenv("JOULE_TESTDATA_DIR");
    const char *expected = NULL, *results = "conformance-results.txt", *filter = NULL;
    bool update = false, verbose = false;
    int threads = 1;
    if (!data)
        data = "/usr/share/libonnx-testdata/data";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--update") == 0) {
            update = true;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose = true;
        } else if (i + 1 < argc && strcmp(a, "--data") == 0) {
            data = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--expected") == 0) {
            expected = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--results") == 0) {
            results = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--threads") == 0) {
            threads = atoi(argv[++i]);
            if (threads < 0) {
                usage(stderr);
                return 2;
            }
        } else if (i + 1 < argc && strcmp(a, "--filter") == 0) {
            filter = argv[++i];
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    str_list names = {0};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", data, groups[g]);
        str_list tests = {0};
        if (list_dirs(dir, "", &tests)) {
            fprintf(stderr, "conformance: %s: cannot list: %s\n", dir, strerror(errno));
            str_free(&tests);
            str_free(&names);
            return 1;
        }
        for (size_t t = 0; t < tests.n; t++) {
            char name[1024];
            snprintf(name, sizeof name, "%s/%s", groups[g], tests.v[t]);
            if ((!filter || strstr(name, filter)) && str_push(&names, name)) {
                fprintf(stderr, "conformance: out of memory\n");
                return 1;
            }
        }
        str_free(&tests);
    }
    qsort(names.v, names.n, sizeof *names.v, cmp_str);
    test_result *r = calloc(names.n ? names.n : 1, sizeof *r);
    if (!r) {
        fprintf(stderr, "conformance: out of memory\n");
        return 1;
    }
    size_t count[T_NONE] = {0};
    double t0 = now();
    for (size_t i = 0; i < names.n; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", data, names.v[i]);
        r[i].name = names.v[i];
        double t = now();
        r[i].status = run_test(dir, threads, &r[i]);
        r[i].seconds = now() - t;
        count[r[i].status]++;
        if (verbose)
            printf("%-60s %-11s %6.3fs %s\n", r[i].name, status_names[r[i].status], r[i].seconds,
                   r[i].msg);
    }
    double total = now() - t0;

    int rc = 0;
    if (results && write_lines(results, r, names.n, true, NULL) != 0) {
        fprintf(stderr, "conformance: %s: cannot write: %s\n", results, strerror(errno));
        rc = 1;
    }
    size_t regressions = 0, newly = 0, gaps = 0;
    if (expected) {
        if (read_expected(expected, r, names.n) != 0) {
            fprintf(stderr, "conformance: %s: cannot read: %s\n", expected, strerror(errno));
            rc = 1;
        }
        for (size_t i = 0; i < names.n; i++) {
            if (r[i].expected == T_PASS && r[i].status != T_PASS) {
                printf("REGRESSION %s: %s (%s)\n", r[i].name, status_names[r[i].status], r[i].msg);
                regressions++;
            } else if (r[i].expected != T_PASS && r[i].status == T_PASS) {
                printf("newly passing: %s\n", r[i].name);
                newly++;
            }
        }
    }
    for (size_t i = 0; i < names.n; i++)
        if (r[i].ops_known && r[i].status != T_PASS) {
            if (!gaps)
                printf("tests whose ops are all in joule's op table but do not pass:\n");
            printf("  %s %s: %s\n", r[i].name, status_names[r[i].status], r[i].msg);
            gaps++;
        }
    if (update && expected && !filter) {
        if (write_lines(expected, r, names.n, false,
                        "# tests/conformance/expected.txt: status of each ONNX backend test "
                        "(conformance --update rewrites it)\n") != 0) {
            fprintf(stderr, "conformance: %s: cannot write: %s\n", expected, strerror(errno));
            rc = 1;
        } else {
            printf("wrote %s\n", expected);
        }
    } else if (update) {
        fprintf(stderr, "conformance: --update needs --expected and no --filter\n");
        rc = 1;
    }
    printf("details: %zu pass, %zu fail, %zu error, %zu unsupported; %zu newly passing, "
           "%zu regressions, %zu op-table gaps; %.1fs\n",
           count[T_PASS], count[T_FAIL], count[T_ERROR], count[T_UNSUPPORTED], newly, regressions,
           gaps, total);
    printf("conformance: %zu passed, %zu failed, %zu skipped\n", count[T_PASS],
           count[T_FAIL] + count[T_ERROR], count[T_UNSUPPORTED]);
    if (regressions && !update)
        rc = 1;
    free(r);
    str_free(&names);
    return rc;
}
