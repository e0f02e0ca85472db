/* tools/joule/cmd_run.c: `joule run MODEL --input NAME=FILE.npy ...`: runs a model once on .npy
 * inputs and writes each output to OUTPUT_DIR/NAME.npy (or prints a summary of it). Input shapes
 * come from the .npy files unless --input-shape says otherwise. Uses the public API only. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "joule/joule.h"
#include "joule/npy.h"

#define MAX_ARGS 256

static void usage(FILE *f)
{
    fprintf(f, "usage: joule run MODEL --input NAME=FILE.npy ... [--output-dir DIR] [--threads N]\n"
               "                 [--input-shape NAME=DIMS ...]\n"
               "  --input NAME=FILE.npy    feed graph input NAME from a .npy file (repeat per input)\n"
               "  --output-dir DIR         write each output to DIR/NAME.npy (else print a summary)\n"
               "  --threads N              worker threads (0 = all cores, default; 1 is deterministic)\n"
               "  --input-shape NAME=DIMS  plan for this shape, e.g. x=1x3x224x224 (default: the\n"
               "                           .npy file's shape)\n");
}

typedef struct run_input {
    char name[256];
    const char *path;
    joule_tensor *t;
} run_input;

typedef struct run_args {
    const char *model, *output_dir;
    int threads;
    size_t n_inputs, n_shapes;
    run_input inputs[MAX_ARGS];
    joule_input_shape shapes[MAX_ARGS];
    char shape_names[MAX_ARGS][256];
} run_args;

/* Value of option `opt` at argv[*i]: "--opt VALUE" or "--opt=VALUE"; NULL when argv[*i] is not it. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt, bool *missing)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != 0)
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_args(int argc, char **argv, run_args *a)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if ((v = opt_value(argc, argv, &i, "--input-shape", &missing))) {
            if (a->n_shapes == MAX_ARGS) {
                fprintf(stderr, "joule run: too many --input-shape options\n");
                return 2;
            }
            joule_error err = {{0}};
            joule_input_shape *is = &a->shapes[a->n_shapes];
            if (joule_parse_input_shape(v, a->shape_names[a->n_shapes], sizeof a->shape_names[0],
                                        is, &err)) {
                fprintf(stderr, "joule run: --input-shape %s: %s\n", v, err.msg);
                return 2;
            }
            is->name = a->shape_names[a->n_shapes++];
        } else if ((v = opt_value(argc, argv, &i, "--input", &missing))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1] || (size_t)(eq - v) >= sizeof a->inputs[0].name) {
                fprintf(stderr, "joule run: --input wants NAME=FILE.npy, got '%s'\n", v);
                return 2;
            }
            if (a->n_inputs == MAX_ARGS) {
                fprintf(stderr, "joule run: too many --input options\n");
                return 2;
            }
            run_input *in = &a->inputs[a->n_inputs++];
            memcpy(in->name, v, (size_t)(eq - v));
            in->name[eq - v] = 0;
            in->path = eq + 1;
        } else if ((v = opt_value(argc, argv, &i, "--output-dir", &missing))) {
            a->output_dir = v;
        } else if ((v = opt_value(argc, argv, &i, "--threads", &missing))) {
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || end == v || *end || n < 0 || n > 4096) {
                fprintf(stderr, "joule run: --threads wants a count >= 0, got '%s'\n", v);
                return 2;
            }
            a->threads = (int)n;
        } else if (missing) {
            fprintf(stderr, "joule run: %s needs a value\n", argv[i]);
            return 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "joule run: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (a->model) {
            fprintf(stderr, "joule run: one model only ('%s' and '%s')\n", a->model, argv[i]);
            return 2;
        } else {
            a->model = argv[i];
        }
    }
    if (!a->model) {
        usage(stderr);
        return 2;
    }
    return -1; /* go on */
}

/* A file name from a value name: characters other than [A-Za-z0-9._-] become '_'. */
static void file_name(const char *name, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < size; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        buf[n++] = ok ? c : '_';
    }
    buf[n] = 0;
    if (n == 0 || strcmp(buf, ".") == 0 || strcmp(buf, "..") == 0)
        snprintf(buf, size, "output");
}

static void format_dims(const joule_tensor *t, char *buf, size_t size)
{
    size_t off = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->rank && off < size; d++)
        off += (size_t)snprintf(buf + off, size - off, "%s%lld", d ? "," : "", (long long)t->dims[d]);
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

static void print_summary(const char *name, const joule_tensor *t)
{
    char dims[160];
    format_dims(t, dims, sizeof dims);
    const joule_dtype_traits *tr = joule_dtype_info(t->dtype);
    printf("%s %s %s", name, joule_dtype_name(t->dtype), dims);
    if (tr->to_f32 && t->count) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        size_t nan = 0;
        for (size_t i = 0; i < t->count; i++) {
            double x = tr->to_f32(t->data, i);
            if (isnan(x)) {
                nan++;
                continue;
            }
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
            sum += x;
        }
        if (nan < t->count)
            printf(" min %g max %g mean %g", lo, hi, sum / (double)(t->count - nan));
        if (nan)
            printf(" (%zu NaN)", nan);
        printf(" first");
        for (size_t i = 0; i < t->count && i < 6; i++)
            printf(" %g", (double)tr->to_f32(t->data, i));
        if (t->count > 6)
            printf(" ...");
    }
    printf("\n");
}

static int run(run_args *a)
{
    joule_error err = {{0}};
    joule_model *m = NULL;
    joule_session *s = NULL;
    const joule_tensor **feeds = NULL;
    int rc = 1;
    if (joule_model_load(a->model, &m, &err)) {
        fprintf(stderr, "joule run: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < a->n_inputs; i++) {
        run_input *in = &a->inputs[i];
        for (size_t k = 0; k < i; k++)
            if (strcmp(a->inputs[k].name, in->name) == 0) {
                fprintf(stderr, "joule run: --input %s given twice\n", in->name);
                goto done;
            }
        const joule_value *v = joule_graph_find_value(m->graph, in->name);
        bool is_input = false;
        for (size_t k = 0; v && k < m->graph->n_inputs; k++)
            is_input = is_input || (m->graph->inputs[k] == v && !v->data);
        if (!is_input) {
            fprintf(stderr, "joule run: the model has no input '%s'; it takes:", in->name);
            for (size_t k = 0; k < m->graph->n_inputs; k++)
                if (!m->graph->inputs[k]->data)
                    fprintf(stderr, " %s", m->graph->inputs[k]->name);
            fprintf(stderr, "\n");
            goto done;
        }
        if (joule_npy_read(in->path, &in->t, &err)) {
            fprintf(stderr, "joule run: %s\n", err.msg);
            goto done;
        }
        /* plan for the file's shape unless --input-shape names this input */
        bool given = false;
        for (size_t k = 0; k < a->n_shapes; k++)
            given = given || strcmp(a->shapes[k].name, in->name) == 0;
        if (!given && a->n_shapes < MAX_ARGS) {
            joule_input_shape *is = &a->shapes[a->n_shapes++];
            memset(is, 0, sizeof *is);
            is->name = in->name;
            is->shape.rank = in->t->rank;
            for (int d = 0; d < in->t->rank; d++)
                is->shape.dims[d].size = in->t->dims[d];
        }
    }
    bool missing = false;
    for (size_t k = 0; k < m->graph->n_inputs; k++) {
        const joule_value *v = m->graph->inputs[k];
        bool fed = v->data != NULL;
        for (size_t i = 0; i < a->n_inputs && !fed; i++)
            fed = strcmp(a->inputs[i].name, v->name) == 0;
        if (!fed) {
            char shape[160];
            joule_shape_format(&v->shape, shape, sizeof shape);
            fprintf(stderr, "joule run: missing --input %s=FILE.npy (%s %s)\n", v->name,
                    joule_dtype_name(v->dtype), shape);
            missing = true;
        }
    }
    if (missing)
        goto done;
    joule_session_options opt = {
        .backend = JOULE_BACKEND_CPU,
        .threads = a->threads,
        .input_shapes = a->shapes,
        .n_input_shapes = a->n_shapes,
    };
    if (joule_session_create(m, &opt, &s, &err)) {
        fprintf(stderr, "joule run: %s\n", err.msg);
        goto done;
    }
    size_t n = joule_session_n_inputs(s);
    feeds = calloc(n ? n : 1, sizeof *feeds);
    if (!feeds) {
        fprintf(stderr, "joule run: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const joule_value *v = joule_session_input(s, i);
        for (size_t k = 0; k < a->n_inputs && !feeds[i]; k++)
            if (strcmp(a->inputs[k].name, v->name) == 0)
                feeds[i] = a->inputs[k].t;
        if (!feeds[i]) { /* cannot happen: every input was checked above */
            fprintf(stderr, "joule run: missing --input %s\n", v->name);
            goto done;
        }
    }
    if (joule_session_run(s, feeds, n, &err)) {
        fprintf(stderr, "joule run: %s\n", err.msg);
        goto done;
    }
    if (a->output_dir && mkdir(a->output_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "joule run: %s: cannot create: %s\n", a->output_dir, strerror(errno));
        goto done;
    }
    rc = 0;
    for (size_t o = 0; o < joule_session_n_outputs(s); o++) {
        const joule_value *v = joule_session_output_value(s, o);
        const joule_tensor *t = joule_session_output(s, o);
        if (!a->output_dir) {
            print_summary(v->name, t);
            continue;
        }
        char fname[256], path[4096];
        file_name(v->name, fname, sizeof fname);
        snprintf(path, sizeof path, "%s/%s.npy", a->output_dir, fname);
        if (joule_npy_write(path, t, &err)) {
            fprintf(stderr, "joule run: %s\n", err.msg);
            rc = 1;
            continue;
        }
        char dims[160];
        format_dims(t, dims, sizeof dims);
        printf("%s %s %s -> %s\n", v->name, joule_dtype_name(t->dtype), dims, path);
    }
done:
    free(feeds);
    joule_session_free(s);
    for (size_t i = 0; i < a->n_inputs; i++) {
        joule_tensor_free(a->inputs[i].t);
        a->inputs[i].t = NULL;
    }
    joule_model_free(m);
    return rc;
}

int joule_cmd_run(int argc, char **argv)
{
    run_args *a = calloc(1, sizeof *a);
    if (!a) {
        fprintf(stderr, "joule run: out of memory\n");
        return 1;
    }
    int rc = parse_args(argc, argv, a);
    if (rc < 0)
        rc = run(a);
    free(a);
    return rc;
}
